"""scheduledJobs(filter: {nameContains}): a trigram index on the upper-cased name (what Django's icontains compares
on PostgreSQL), so that a name few jobs match is found by the index, not by reading every job of the instance.
pg_trgm is a trusted extension (PostgreSQL 13+): the database owner may create it. PostgreSQL only; where the
extension cannot be had, the filter still works, reading the jobs (jobs.job_list)."""

from django.db import migrations

CREATE = (
    "CREATE INDEX IF NOT EXISTS job_name_trigram ON jobs_scheduledjob "
    "USING gin ((UPPER((name)::text)) gin_trgm_ops)"
)


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    schema_editor.execute(CREATE)


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP INDEX IF EXISTS job_name_trigram")


class Migration(migrations.Migration):
    dependencies = [("jobs", "0013_job_task_types_index")]

    operations = [migrations.RunPython(create, drop)]
