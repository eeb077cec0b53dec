from django.core import signing
from django.core.files.storage import default_storage
from django.http import FileResponse, HttpRequest, JsonResponse
from django.views.decorators.http import require_GET

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
