"""LogPurge (a deleted job's log folder) and LogDeletion (a pruned run's log file) become one queue, LogDeletion, a
folder being a path that ends with "/". Queued purges move over with their attempts, error and next attempt.

A purge message already queued names a LogPurge id, which may now be an unrelated LogDeletion row's: that row is
then deleted early, which is harmless (every queued row may be deleted at any time); the moved row keeps its next
attempt, and the sweeper sends it then. Workers of the previous release fail on the dropped table until they are
replaced, and the sweeper sends their rows again."""

from django.db import migrations, models
from django.db.models.functions import Length, Substr


def purges_to_deletions(apps, schema_editor):
    LogPurge = apps.get_model("jobs", "LogPurge")
    LogDeletion = apps.get_model("jobs", "LogDeletion")
    LogDeletion.objects.bulk_create(
        LogDeletion(
            path=purge.folder if purge.folder.endswith("/") else purge.folder + "/",
            created_at=purge.created_at,
            attempts=purge.attempts,
            next_attempt_at=purge.next_attempt_at,
            last_error=purge.last_error or "",
        )
        for purge in LogPurge.objects.iterator()
    )


def deletions_to_purges(apps, schema_editor):
    LogPurge = apps.get_model("jobs", "LogPurge")
    LogDeletion = apps.get_model("jobs", "LogDeletion")
    folders = LogDeletion.objects.filter(path__endswith="/")
    LogPurge.objects.bulk_create(
        LogPurge(
            folder=row.path,
            created_at=row.created_at,
            attempts=row.attempts,
            next_attempt_at=row.next_attempt_at,
            last_error=row.last_error or None,
        )
        for row in folders.iterator()
    )
    folders.delete()
    # LogDeletion.last_error goes back to 200 characters next.
    LogDeletion.objects.annotate(length=Length("last_error")).filter(length__gt=200).update(
        last_error=Substr("last_error", 1, 200)
    )


class Migration(migrations.Migration):
    dependencies = [
        ("jobs", "0014_job_name_trigram_index"),
    ]

    operations = [
        migrations.AlterField(
            model_name="logdeletion",
            name="last_error",
            field=models.CharField(blank=True, default="", max_length=500),
        ),
        migrations.RunPython(purges_to_deletions, deletions_to_purges),
        migrations.DeleteModel(name="LogPurge"),
    ]
