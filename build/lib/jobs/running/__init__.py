"""Running a job: admission and the run's row (runner), the step engine (engine), the thread beside a run (watch),
what an ended run means for its job (outcome), slots nobody fired (missed), the run lock (locks), the run log
(logs), and the periodic sweep for lost runs and unfired slots (sweeper)."""
