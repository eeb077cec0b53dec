import gc
import os

from django.core.wsgi import get_wsgi_application

from pointscene.logconfig import scrub_server_logs

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pointscene.settings")
application = get_wsgi_application()
# Everything loaded so far lives as long as the process: keep the collector from walking it again and again
# (a large answer, e.g. getScheduledJobs of 1,000 jobs, allocates enough to trigger several full collections).
gc.freeze()
# gunicorn's access log is its own, not settings.LOGGING's: scrub it too (signed log links in request lines).
scrub_server_logs()
