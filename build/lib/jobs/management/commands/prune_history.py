from jobs import retention
from pointscene.core.commands import JsonCommand


class Command(JsonCommand):
    help = (
        "Deletes runs past their instance's retention (never a job's last JOBS_HISTORY_KEEP_RUNS) with their logs, "
        "as beat does every JOBS_PRUNE_SECONDS. Prints what it deleted (or, with --dry-run, would delete) as JSON."
    )

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="count what would be deleted; change nothing")

    def run(self, dry_run=False, **options):
        return retention.prune(dry_run=dry_run).as_dict()
