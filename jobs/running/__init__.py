"""Running a job: claiming a slot and its overlap rules (runner), the step engine and the run's watcher (runner),
what a run's end means for its job (outcome), the run lock (locks), the run log (logs), and the periodic sweep
for lost runs and unfired slots (sweeper)."""
