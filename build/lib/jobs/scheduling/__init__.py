"""When jobs fire: a job's schedule and its slots (slots, on jobs.timing's cron and interval maths), its RedBeat
entry (entries), keeping Redis in step with the database (reconcile) and the beat that publishes runs (beat).
Nothing here runs a job."""
