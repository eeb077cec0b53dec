"""The job form's live schedule preview: as the operator types a schedule, the next runs and the schedule in words,
or what is wrong with it, from jobs.preview (the code behind previewSchedule and every saved job's nextRuns)."""

from zoneinfo import ZoneInfo

from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, JsonResponse

from jobs.preview import preview_schedule

RUNS = 5
# The API's argument names, as problems name them, to the form's field names.
FORM_FIELDS = {
    "frequencyType": "frequency_type",
    "cronExpression": "cron_expression",
    "intervalMinutes": "interval_minutes",
    "timezone": "timezone",
}


def _given(request: HttpRequest, name: str) -> str | None:
    value = request.GET.get(name, "").strip()
    return value or None


def _minutes(value: str | None) -> object:
    # A form sends text; a whole number becomes one, anything else goes to the rules as it is, to be refused there.
    return int(value) if value is not None and value.isdigit() else value


def preview_response(request: HttpRequest, may_view: bool) -> JsonResponse:
    """{"description", "runs": [{"utc", "local"}]} or {"problems": [{"field", "message"}]} for the schedule in the
    query string (the form's field names)."""
    if not may_view:
        raise PermissionDenied
    tz = _given(request, "timezone")
    try:
        preview = preview_schedule(
            _given(request, "frequency_type"),
            _given(request, "cron_expression"),
            _minutes(_given(request, "interval_minutes")),
            tz,
            RUNS,
        )
    except ValidationError as exc:
        problems = [
            {"field": FORM_FIELDS.get(field, field), "message": message}
            for field, messages in exc.message_dict.items()
            for message in messages
        ]
        return JsonResponse({"problems": problems})
    zone = ZoneInfo(preview.timezone)
    runs = [
        {"utc": at.strftime("%Y-%m-%d %H:%M UTC"), "local": at.astimezone(zone).strftime("%a %Y-%m-%d %H:%M %Z")}
        for at in preview.next_runs
    ]
    return JsonResponse({"description": preview.description, "runs": runs})
