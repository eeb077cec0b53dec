import json
import subprocess

from django.core.management.base import BaseCommand, CommandError

from configs import allowlist, rclone


class Command(BaseCommand):
    help = (
        "Compares the installed rclone's backends and options with the reviewed allowlist (configs/"
        "rclone_options.toml). Prints the options nobody classified yet and exits 1 if there are any. With --write, "
        "adds them to the file as 'unreviewed' (still refused) with a suggested class for the reviewer."
    )

    def add_arguments(self, parser):
        parser.add_argument("--write", action="store_true", help="Add new backends and options to the file.")

    def handle(self, *args, write: bool = False, **options):
        try:
            out = subprocess.run(
                [rclone.binary(), "config", "providers", "--config", "/dev/null"],
                capture_output=True,
                check=True,
                timeout=60,
            ).stdout
        except (rclone.RcloneMissing, subprocess.SubprocessError, OSError) as exc:
            raise CommandError(f"could not ask rclone for its backends: {exc}") from None
        text, new = allowlist.draft(json.loads(out), allowlist.rules())
        if write:
            allowlist.DATA_FILE.write_text(text)
        self.stdout.write(json.dumps({"unreviewed": new, "written": write}))
        if new:
            raise CommandError(f"{len(new)} options need a reviewer's class in {allowlist.DATA_FILE.name}")
