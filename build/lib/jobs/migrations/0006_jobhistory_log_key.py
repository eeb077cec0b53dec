"""Each run gets its own random log-link key (jobs.logs); existing runs get one each, in one statement.

The fill runs in SQL with each database's cryptographic random source (PostgreSQL's gen_random_uuid(), SQLite's
randomblob()): history tables hold millions of rows, too many to update one by one from Python.
"""

from django.db import migrations, models

import jobs.models

FILL = {
    "postgresql": "UPDATE jobs_jobhistory SET log_key = replace(gen_random_uuid()::text, '-', '') "
    "WHERE log_key IS NULL",
    "sqlite": "UPDATE jobs_jobhistory SET log_key = lower(hex(randomblob(16))) WHERE log_key IS NULL",
}


def fill_log_keys(apps, schema_editor) -> None:
    sql = FILL.get(schema_editor.connection.vendor)
    if sql is not None:
        schema_editor.execute(sql)
        return
    JobHistory = apps.get_model("jobs", "JobHistory")
    for pk in JobHistory.objects.filter(log_key__isnull=True).values_list("pk", flat=True).iterator():
        JobHistory.objects.filter(pk=pk).update(log_key=jobs.models.new_log_key())


class Migration(migrations.Migration):
    dependencies = [
        ("jobs", "0005_reliability_policies"),
    ]

    operations = [
        migrations.AddField(
            model_name="jobhistory",
            name="log_key",
            field=models.CharField(max_length=32, null=True, editable=False),
        ),
        migrations.RunPython(fill_log_keys, migrations.RunPython.noop, elidable=True),
        migrations.AlterField(
            model_name="jobhistory",
            name="log_key",
            field=models.CharField(max_length=32, default=jobs.models.new_log_key, editable=False),
        ),
    ]
