from django.core.files.storage import default_storage
from django.http import FileResponse, HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST

from jobs import health
from jobs.ops import metrics
from jobs.running.logs import run_for_link


def _error(status: int, code: str, message: str) -> JsonResponse:
    return JsonResponse({"error": {"code": code, "message": message}}, status=status)


@require_GET
def run_log(request: HttpRequest, token: str):
    """Downloads a run's log through a signed, expiring link issued to one holder (jobs.running.logs).

    Every refusal (bad, forged or expired link, run or job deleted, holder without access now, no log) is the same
    404: the answer must not tell a link-guesser which part failed.
    """
    run = run_for_link(token, request)
    if run is None or not run.log_path or not default_storage.exists(run.log_path):
        return _error(404, "NOT_FOUND", "No log here; ask the API for a fresh signedLogUrl.")
    response = FileResponse(default_storage.open(run.log_path, "rb"), content_type="text/plain; charset=utf-8")
    response["Content-Disposition"] = f'inline; filename="run-{run.pk}.log"'
    response["Cache-Control"] = "private, no-store"
    return response


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """The process is alive and serving requests; nothing else is checked (that is /readyz)."""
    return JsonResponse({"status": "ok"})


@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    """Ready to run jobs: database, Redis, a recently reconciled schedule and a worker that answers. Anyone (load
    balancers) gets the status; the per-check details, which name the deployment's parts, need METRICS_TOKEN."""
    checks = health.readiness()
    ready = all(c.ok for c in checks)
    body = {"status": "ok" if ready else "unavailable"}
    if health.has_operator_token(request):
        body["checks"] = {c.name: c.as_dict() for c in checks}
    response = JsonResponse(body, status=200 if ready else 503)
    # A cache in front must not hand one caller's answer (details included) to another.
    response["Cache-Control"] = "no-store"
    return response


@require_GET
def prometheus_metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus text format; for scrapers with METRICS_TOKEN, or from METRICS_ALLOWED_NETWORKS through no proxy."""
    if not health.may_scrape(request):
        response = _error(401, "UNAUTHENTICATED", "Metrics need the operator's token (Authorization: Bearer ...).")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    response = HttpResponse(metrics.exposition(), content_type=CONTENT_TYPE_LATEST)
    response["Cache-Control"] = "no-store"
    return response
