"""bench/api.py's cases for issue 17: scheduledJobs pages at depth in `bench-list` (100,000 jobs), with each filter,
and getInstanceJobHistory with each filter combination on `bench-deep` (977,800 of the 1,100,000 history rows).

Imported after django.setup(). The cases are measured like the others (api_run.measure, in-process and HTTP) and
reported in their own table (section "Job list and history filters").
"""

from datetime import timedelta

from jobs.job_list import encode_job_cursor
from jobs.models import JobHistory, ScheduledJob

P95_TARGET_MS = 50.0
LIST = """query ($instanceId: ID!, $first: Int, $after: String, $filter: ScheduledJobFilter) {
  scheduledJobs(instanceId: $instanceId, first: $first, after: $after, filter: $filter) {
    items { id name active lastRun history { id status createdAt } }
    cursor
    hasNextPage
  }
}"""
HISTORY = """query ($instanceId: ID!, $page: PageInput, $filter: JobHistoryFilter) {
  getInstanceJobHistory(instanceId: $instanceId, page: $page, filter: $filter) {
    items { id jobId success logPath createdAt status trigger }
    cursor
    hasNextPage
  }
}"""
# Filters of the job list: common, rare (the whole instance is walked to fill the page) and none at all.
LIST_FILTERS = {
    "no filter": None,
    "active": {"active": True},
    "inactive": {"active": False},
    "nameContains common": {"nameContains": "JOB 1"},
    "nameContains rare": {"nameContains": "job 99999"},
    "lastRunStatus FAILED": {"lastRunStatus": "FAILED"},
    "taskType rclone.sync": {"taskType": "rclone.sync"},
    "taskType none matches": {"taskType": "http.request"},
    "active + lastRunStatus SUCCEEDED": {"active": True, "lastRunStatus": "SUCCEEDED"},
}


def list_cases(case_type, body, instance, jobs: int, requests: int, warmup: int) -> list:
    """A page of 100 at depths 0 .. the last page, unfiltered; each filter at the first page and half-way."""
    ids = list(ScheduledJob.objects.filter(instance_id=instance.pk).order_by("id").values_list("id", flat=True))
    depths = sorted({0, 1_000 if jobs > 2_000 else jobs // 10, jobs // 2, jobs - 100})
    cases = []

    def add(label: str, depth: int, given: dict | None) -> None:
        variables = {"instanceId": str(instance.pk), "first": 100, "filter": given}
        if depth:
            variables["after"] = encode_job_cursor(ids[depth - 1])

        def check(data: dict) -> None:
            if "errors" in data:
                raise SystemExit(f"{label}: {data['errors']}")
            items = data["data"]["scheduledJobs"]["items"]
            if given is None and len(items) != 100:
                raise SystemExit(f"{label}: {len(items)} jobs, expected 100")

        cases.append(case_type(label, body(LIST, variables), check, requests, 8, warmup, depth, 100))

    for depth in depths:
        add(f"scheduledJobs first 100, after {depth:,} jobs", depth, None)
    for name, given in list(LIST_FILTERS.items())[1:]:
        for depth in (0, jobs // 2):
            add(f"scheduledJobs first 100, {name}, after {depth:,} jobs", depth, given)
    return cases


def history_cases(case_type, body, instance, requests: int, warmup: int) -> list:
    """Each filter combination of getInstanceJobHistory, first page of 100 (a time window half-way back)."""
    newest = JobHistory.objects.filter(instance_id=instance.pk).order_by("-created_at", "-id")
    rows = newest.count()
    middle = newest.values_list("created_at", flat=True)[rows // 2]
    job_id = str(newest.values_list("job_id", flat=True)[0])
    window = {"from": (middle - timedelta(days=3)).isoformat(), "to": middle.isoformat()}
    combos = {
        "jobId": {"jobId": job_id},
        "status FAILED": {"status": "FAILED"},
        "status SKIPPED (rare)": {"status": "SKIPPED"},
        "trigger MANUAL": {"trigger": "MANUAL"},
        "status + trigger (rarest)": {"status": "FAILED", "trigger": "MANUAL"},
        "from/to (half-way back)": window,
        "from only (half-way back)": {"from": window["from"]},
        "to only (half-way back)": {"to": window["to"]},
        "status + from/to": {"status": "FAILED", **window},
        "trigger + from/to": {"trigger": "MANUAL", **window},
        "jobId + status": {"jobId": job_id, "status": "FAILED"},
        "jobId + trigger + from/to": {"jobId": job_id, "trigger": "SCHEDULE", **window},
        "all five": {"jobId": job_id, "status": "SUCCEEDED", "trigger": "SCHEDULE", **window},
    }
    cases = []
    for name, given in combos.items():
        variables = {"instanceId": str(instance.pk), "page": {"first": 100}, "filter": given}

        def check(data: dict, name: str = name) -> None:
            if "errors" in data:
                raise SystemExit(f"history {name}: {data['errors']}")

        label = f"getInstanceJobHistory first 100, {name}"
        cases.append(case_type(label, body(HISTORY, variables), check, requests, 8, warmup, 0, 100))
    return cases


def render(cases: list) -> str:
    lines = [
        "### Job list and history filters (issue 17)",
        "",
        "`scheduledJobs` pages of 100 in `bench-list` (100,000 jobs, one run each; the cursor for a depth is "
        "`jobs.job_list.encode_job_cursor` of the job found in setup), each filter at the first page and half-way; "
        "`getInstanceJobHistory` pages of 100 on `bench-deep` with each filter combination. Milliseconds, as above.",
        "",
        "| request | n | in-process p50 | in-process p95 | HTTP p50 | HTTP p95 | p95 < 50 ms |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for case in cases:
        a, b = case.results["in-process"], case.results["HTTP"]
        verdict = "yes" if max(a.p(95), b.p(95)) < P95_TARGET_MS else "**no**"
        n = f"{a.n}" if a.n == b.n else f"{a.n}/{b.n}"
        lines.append(
            f"| {case.label} | {n} | {a.p(50):.1f} | {a.p(95):.1f} | {b.p(50):.1f} | {b.p(95):.1f} | {verdict} |"
        )
    met = sum(max(c.results["in-process"].p(95), c.results["HTTP"].p(95)) < P95_TARGET_MS for c in cases)
    lines += ["", f"p95 under 50 ms (both modes): {met} of {len(cases)} cases."]
    return "\n".join(lines)
