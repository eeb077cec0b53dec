from jobs.scheduling import reconcile
from pointscene.core.commands import JsonCommand


class Command(JsonCommand):
    help = (
        "Rebuilds every job's RedBeat entry from the database: adds missing, removes orphans, fixes drifted. "
        'Prints {"added": [...], "removed": [...], "fixed": [...]} (job ids).'
    )

    def run(self, **options):
        return reconcile.reconcile()
