"""scheduledJobs(filter: {taskType}): a GIN index on the workflow's task list (jsonb_path_ops), so that a task type
few jobs have is found by the index, not by reading every job of the instance. PostgreSQL only: elsewhere the filter
reads the jobs (jobs.job_list)."""

from django.db import migrations

CREATE = (
    "CREATE INDEX IF NOT EXISTS job_workflow_tasks ON jobs_scheduledjob "
    "USING gin ((workflow -> 'tasks') jsonb_path_ops)"
)
DROP = "DROP INDEX IF EXISTS job_workflow_tasks"


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE)


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)


class Migration(migrations.Migration):
    dependencies = [("jobs", "0012_job_list_index")]

    operations = [migrations.RunPython(create, drop)]
