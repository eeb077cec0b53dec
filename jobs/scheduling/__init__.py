"""When jobs fire: slot maths (timing), a job's schedule (slots), its RedBeat entry (entries), keeping Redis in
step with the database (reconcile) and the beat that publishes runs (beat). Nothing here runs a job."""
