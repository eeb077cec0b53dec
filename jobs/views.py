from django.core import signing
from django.core.files.storage import default_storage
from django.http import FileResponse, HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST

from jobs import health, metrics
from jobs.logs import unsign_run
from jobs.models import JobHistory


def _error(status: int, code: str, message: str) -> JsonResponse:
    return JsonResponse({"error": {"code": code, "message": message}}, status=status)


@require_GET
def run_log(request: HttpRequest, token: str):
    """Downloads a run's log; the signed, expiring token is the only credential."""
    try:
        run_id = unsign_run(token)
    except signing.SignatureExpired:
        return _error(403, "LINK_EXPIRED", "This log link has expired; ask the API for a fresh signedLogUrl.")
    except (signing.BadSignature, ValueError, KeyError, TypeError):
        return _error(403, "BAD_SIGNATURE", "This log link is not valid.")
    run = JobHistory.objects.filter(pk=run_id).only("log_path").first()
    if run is None or not run.log_path or not default_storage.exists(run.log_path):
        return _error(404, "NOT_FOUND", "This run has no log.")
    response = FileResponse(default_storage.open(run.log_path, "rb"), content_type="text/plain; charset=utf-8")
    response["Content-Disposition"] = f'inline; filename="run-{run_id}.log"'
    response["Cache-Control"] = "private, no-store"
    return response


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """The process is alive and serving requests; nothing else is checked (that is /readyz)."""
    return JsonResponse({"status": "ok"})


@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    """Ready to run jobs: database, Redis, a recently reconciled schedule and a worker that answers."""
    checks = health.readiness()
    ready = all(c.ok for c in checks)
    body = {"status": "ok" if ready else "unavailable", "checks": {c.name: c.as_dict() for c in checks}}
    return JsonResponse(body, status=200 if ready else 503)


@require_GET
def prometheus_metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus text format; for scrapers with METRICS_TOKEN or from METRICS_ALLOWED_NETWORKS only."""
    if not metrics.allowed(request):
        return _error(403, "FORBIDDEN", "Metrics are for the operator's scraper (METRICS_TOKEN or an allowed network).")
    return HttpResponse(metrics.exposition(), content_type=CONTENT_TYPE_LATEST)
