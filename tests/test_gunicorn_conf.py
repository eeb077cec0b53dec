"""gunicorn.conf.py's worker hook, run as gunicorn runs it once a worker has loaded the application: the URLconf
(views, the GraphQL schema) is imported and what is alive is frozen out of the collector's scans. In a child
process, so that this test process's own collector is left as it is."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHILD = """
import gc, runpy, sys
import django
django.setup()
hooks = runpy.run_path("gunicorn.conf.py")
before = "pointscene.graphql.schema" in sys.modules
hooks["post_worker_init"](None)
print(before, "pointscene.graphql.schema" in sys.modules, gc.get_freeze_count())
"""


def test_the_worker_hook_imports_the_urlconf_and_freezes_what_is_alive():
    done = subprocess.run([sys.executable, "-c", CHILD], cwd=ROOT, capture_output=True, text=True, timeout=120)

    assert done.returncode == 0, done.stderr[-3000:]
    before, after, frozen = done.stdout.split()
    assert (before, after) == ("False", "True")
    assert int(frozen) > 50_000
