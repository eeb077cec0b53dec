"""What happens to runs when things go wrong around them: the worker running one is killed, the previous run of a job
is still going when its next slot comes (overlap policies), a job keeps failing (pause and signed webhooks), the
database drops a worker's connections mid-run, a step fails in a retryable way. Real processes; assertions read the
database (and what the loopback receiver got) afterwards.

Run with `pytest -m faults`; about four minutes in all.
"""

import json
import time
from datetime import datetime, timedelta

import pytest
from django.db import connection

from jobs.models import JobHistory, RunStatus, ScheduledJob
from tests.faults.cluster import (
    IN_FLIGHT,
    LEASE,
    SWEEP,
    assert_nothing_in_flight,
    assert_one_row_per_slot,
    clear_of_boundary,
    create_job,
    describe_rows,
    next_boundary,
    now,
    run_now,
    signature_ok,
    sleep_until,
)
from tests.fixtures.leaks import register_secret
from tests.fixtures.redbeat import entry_job_ids

pytestmark = [pytest.mark.faults, pytest.mark.django_db(transaction=True)]

HOOK_SECRET = register_secret("faults-webhook-secret-4f1d7c2a9b")
# A job that never fires on its own in the test's lifetime: its runs are the ones the test starts.
NEVER = "0 0 1 1 *"
# How long a slot may take to show up finished: on time it is seconds; a re-sent one is GRACE + a sweep late.
GRACE_WAIT = 90


def row(pk: int) -> JobHistory:
    return JobHistory.objects.get(pk=pk)


def rows_of(job_id: int) -> str:
    return describe_rows(JobHistory.objects.filter(job_id=job_id).order_by("scheduled_for", "pk"))


def first_slot(not_before: datetime) -> datetime:
    """The first minute boundary at or after `not_before`."""
    boundary = next_boundary(not_before - timedelta(microseconds=1))
    return boundary if boundary >= not_before else boundary + timedelta(minutes=1)


def get_job(api, token: str, job_id: int) -> dict:
    status, body = api.gql(
        "query($id: ID!) { getScheduledJob(jobId: $id) { active pausedReason consecutiveFailures } }",
        {"id": str(job_id)},
        token=token,
    )
    assert "errors" not in body, body
    return body["data"]["getScheduledJob"]


def test_it_recovers_a_killed_workers_run_applies_overlap_policies_and_pauses_a_failing_job(
    cluster, endpoints, api, acme_token, instance
):
    """Three scenarios on the same minutes (they take minutes each): a worker killed mid-run, then the overlap
    policies and a failing job pausing itself with signed webhooks on the cluster that is left."""
    # Five processes per worker: at most four runs hold at once (SKIP's, BUFFER_ONE's and ALLOW's two), so however
    # the runs spread, a worker that reserved a slot's message (workers reserve ETA messages ahead, beyond their
    # prefetch) has a free process for it when it comes due.
    cluster.start(workers=2, beats=1, concurrency=5)

    # --- A worker is SIGKILLed while its run waits on a slow step.
    # The job's one scheduled slot comes after the killed run's lock lease has surely run out, so whether it runs
    # says whether the lock was let go; no other slot of the job fires in between (a slot in between would be
    # SKIPPED, rightly, while the lease still runs).
    target = first_slot(now() + timedelta(seconds=LEASE + 30))
    killed_job = create_job(
        api, acme_token, instance, endpoints.url("/hold/k3"), cron=f"{target.minute} * * * *", name="killed"
    )
    run_id = run_now(api, acme_token, killed_job)
    running = cluster.wait_until(
        lambda: JobHistory.objects.filter(pk=run_id, status=RunStatus.RUNNING).first(), 30, "the run to start"
    )
    cluster.wait_until(lambda: endpoints.hits_for("/hold/k3"), 10, "the step's request to arrive")
    name, pids = cluster.kill_worker_running(running)
    killed_at = now()
    endpoints.release("k3")  # the job's next run answers at once
    cluster.restart(name)

    # --- Overlap policies (each job's step holds until the test lets it go) and a job failing every minute.
    clear_of_boundary()
    skip = create_job(api, acme_token, instance, endpoints.url("/hold/skip"), name="skip", overlap="SKIP")
    buffer = create_job(api, acme_token, instance, endpoints.url("/hold/buffer"), name="buffer", overlap="BUFFER_ONE")
    allow = create_job(api, acme_token, instance, endpoints.url("/hold/allow"), name="allow", overlap="ALLOW")
    failing = create_job(
        api,
        acme_token,
        instance,
        endpoints.url("/fail"),
        name="failing",
        pause=2,
        hook=endpoints.url("/hook"),
        hookSecret=HOOK_SECRET,
    )
    b1 = next_boundary(now())  # their first slot
    b2, b3 = b1 + timedelta(minutes=1), b1 + timedelta(minutes=2)
    cluster.note(f"jobs skip={skip} buffer={buffer} allow={allow} failing={failing}; slots {b1.isoformat()} ..")

    def at(job_id, slot):
        return JobHistory.objects.filter(job_id=job_id, scheduled_for=slot).first()

    # B1: the three slow jobs start and hold; the failing job fails once.
    cluster.wait_until(
        lambda: all(getattr(at(j, b1), "status", None) == RunStatus.RUNNING for j in (skip, buffer, allow)),
        GRACE_WAIT,
        "the slow jobs' first runs to be going",
    )

    # Meanwhile the sweeper has ended the killed worker's run: its heartbeat stopped, a sweep after the lease saw it.
    bound = LEASE + 3 * SWEEP + 30
    lost = cluster.wait_until(
        lambda: JobHistory.objects.filter(pk=run_id).exclude(status=RunStatus.RUNNING).first(),
        max(1.0, bound - (now() - killed_at).total_seconds()),
        f"the killed worker's run to end (within lease {LEASE} s + 3 sweeps of {SWEEP} s + 30 s)",
    )
    took = ((lost.finished_at or now()) - killed_at).total_seconds()
    cluster.note(f"run {run_id} of the killed worker ended {lost.status} {took:.1f} s after the kill")
    assert lost.status == RunStatus.FAILED, rows_of(killed_job)
    assert lost.error.startswith("worker lost"), rows_of(killed_job)
    assert int(lost.worker.rsplit(":", 1)[1]) in pids
    assert (lost.finished_at - killed_at).total_seconds() < bound, rows_of(killed_job)

    # B2: SKIP records the slot SKIPPED, BUFFER_ONE parks it, ALLOW runs it beside the first.
    sleep_until(b2 + timedelta(seconds=3))
    cluster.wait_until(
        lambda: getattr(at(skip, b2), "status", None) == RunStatus.SKIPPED, 30, "the SKIP job's slot to be skipped"
    )
    cluster.wait_until(
        lambda: JobHistory.objects.filter(job_id=allow, status=RunStatus.RUNNING).count() == 2,
        30,
        "two runs of the ALLOW job at once",
    )
    cluster.wait_until(lambda: at(buffer, b2) is not None, 30, "the BUFFER_ONE job's second slot to be recorded")
    parked = at(buffer, b2)
    assert parked.status == RunStatus.QUEUED, rows_of(buffer)
    assert parked.buffered_at is not None, rows_of(buffer)
    assert at(buffer, b1).status == RunStatus.RUNNING, rows_of(buffer)
    allow_runs = list(JobHistory.objects.filter(job_id=allow).order_by("scheduled_for"))
    assert [r.scheduled_for for r in allow_runs] == [b1, b2], rows_of(allow)
    assert allow_runs[1].started_at < (allow_runs[0].finished_at or now()), rows_of(allow)
    endpoints.release("skip")
    endpoints.release("allow")

    # The failing job: two failed runs in a row, and it pauses itself.
    paused = cluster.wait_until(
        lambda: ScheduledJob.objects.filter(pk=failing, active=False).first(), 60, "the failing job to pause"
    )
    cluster.note(f"failing job paused: {paused.paused_reason!r}")

    # B3: BUFFER_ONE's first run still holds and a slot already waits: this one is skipped.
    sleep_until(b3 + timedelta(seconds=3))
    cluster.wait_until(lambda: at(buffer, b3) is not None, 30, "the BUFFER_ONE job's third slot to be recorded")
    third = at(buffer, b3)
    assert third.status == RunStatus.SKIPPED, rows_of(buffer)
    assert at(buffer, b2).status == RunStatus.QUEUED, rows_of(buffer)
    endpoints.release("buffer")

    slow = [skip, buffer, allow]
    cluster.wait_until(
        lambda: (
            not JobHistory.objects.filter(job_id__in=slow, status__in=[RunStatus.QUEUED, RunStatus.RUNNING])
            .filter(scheduled_for__lte=b3)
            .exists()
        ),
        60,
        "every slow run up to B3 to end",
    )
    everything = "\n".join(rows_of(j) for j in [*slow, failing, killed_job])
    print("\n" + everything)
    assert_one_row_per_slot(slow, b1, b3)

    # SKIP: B1 ran to the end, B2 skipped (saying why), B3 ran.
    assert [at(skip, s).status for s in (b1, b2, b3)] == [RunStatus.SUCCEEDED, RunStatus.SKIPPED, RunStatus.SUCCEEDED]
    assert "skipped" in at(skip, b2).error.lower()
    # BUFFER_ONE: B2 waited and ran right after B1 ended; B3 found B2 waiting and was skipped.
    first, waited = at(buffer, b1), at(buffer, b2)
    assert (first.status, waited.status, at(buffer, b3).status) == (
        RunStatus.SUCCEEDED,
        RunStatus.SUCCEEDED,
        RunStatus.SKIPPED,
    ), everything
    assert waited.started_at >= first.finished_at, everything
    assert (waited.started_at - first.finished_at).total_seconds() < 30, everything
    # ALLOW: both ran side by side and succeeded.
    assert [at(allow, s).status for s in (b1, b2)] == [RunStatus.SUCCEEDED, RunStatus.SUCCEEDED], everything

    # The failing job: FAILED twice, then inactive with a reason, its schedule entry gone, no run at B3.
    failed = list(JobHistory.objects.filter(job_id=failing).order_by("scheduled_for"))
    assert [(r.scheduled_for, r.status) for r in failed] == [(b1, RunStatus.FAILED), (b2, RunStatus.FAILED)], everything
    shown = get_job(api, acme_token, failing)
    assert shown["active"] is False, shown
    assert shown["pausedReason"], shown
    assert failing not in entry_job_ids()["hashes"] | entry_job_ids()["members"]

    # The receiver: one run.failed per failed run and one job.paused, each signed with the job's secret.
    cluster.wait_until(lambda: len(endpoints.hits_for("/hook")) >= 3, 60, "three webhook deliveries")
    time.sleep(3)  # nothing more arrives
    hooks = endpoints.hits_for("/hook")
    events = sorted(h.headers.get("X-Pointscene-Event") for h in hooks)
    assert events == ["job.paused", "run.failed", "run.failed"], [(h.headers, h.body) for h in hooks]
    for hit in hooks:
        assert hit.method == "POST"
        assert hit.headers.get("Content-Type", "").startswith("application/json")
        assert signature_ok(HOOK_SECRET, hit), hit.headers
        assert abs(time.time() - int(hit.headers["X-Pointscene-Timestamp"])) < 600
        body = json.loads(hit.body)
        assert HOOK_SECRET not in hit.body.decode()
        event = hit.headers["X-Pointscene-Event"]
        delivery = hit.headers["X-Pointscene-Delivery"]
        assert delivery.startswith(f"{event}:{failing}:"), delivery
        if event == "run.failed":
            assert int(delivery.rsplit(":", 1)[1]) in {r.pk for r in failed}, delivery
        assert body.get("event", event) == event, body
    assert len({h.headers["X-Pointscene-Delivery"] for h in hooks}) == 3
    # A signature made with another secret does not verify (the check above is not vacuous).
    assert not signature_ok("not-" + HOOK_SECRET, hooks[0])

    # The killed job's next slot ran: the dead run's lock did not outlive it.
    sleep_until(target)
    after = cluster.wait_until(
        lambda: (
            JobHistory.objects.filter(job_id=killed_job, scheduled_for=target)
            .exclude(status__in=[RunStatus.QUEUED, RunStatus.RUNNING])
            .first()
        ),
        GRACE_WAIT,
        "the killed job's next slot to run",
    )
    assert after.status == RunStatus.SUCCEEDED, rows_of(killed_job)
    assert JobHistory.objects.filter(job_id=killed_job).count() == 2, rows_of(killed_job)
    assert_nothing_in_flight([*slow, failing, killed_job])


def test_it_survives_terminated_database_connections_and_retries_retryable_steps(
    cluster, endpoints, api, acme_token, instance
):
    cluster.start(workers=2, beats=1)
    held = create_job(api, acme_token, instance, endpoints.url("/hold/k6"), cron=NEVER, name="db-outage")
    flaky = create_job(
        api, acme_token, instance, endpoints.url("/flaky/k7/2/503"), cron=NEVER, name="flaky", retries=2, backoff=1
    )
    missing = create_job(
        api, acme_token, instance, endpoints.url("/status/404"), cron=NEVER, name="404", retries=2, backoff=1
    )

    # A worker loses PostgreSQL mid-run: every backend of the test database but this test's own is terminated
    # (twice, a heartbeat apart, so the watcher's connection is cut too; it reconnects through Django's health
    # check, while the run's own thread meets the dead connection at its next progress save or final write).
    run_id = run_now(api, acme_token, held)
    cluster.wait_until(lambda: row(run_id).status == RunStatus.RUNNING, 30, "the held run to start")
    cluster.wait_until(lambda: endpoints.hits_for("/hold/k6"), 10, "the held run's request")
    terminated = []
    for _ in range(2):
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pid, pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()",
                [connection.settings_dict["NAME"]],
            )
            terminated += [pid for pid, ok in cursor.fetchall() if ok]
        cluster.note(f"terminated backends of {connection.settings_dict['NAME']}: {terminated}")
        time.sleep(LEASE / 3 + 1)
    assert terminated, "no backend of the test database to terminate: the worker was not connected"
    endpoints.release("k6")
    done = cluster.wait_until(
        lambda: JobHistory.objects.filter(pk=run_id).exclude(status=RunStatus.RUNNING).first(),
        60,
        "the held run to end after its connections were terminated",
    )
    assert done.status == RunStatus.SUCCEEDED, rows_of(held)
    assert done.log_path, rows_of(held)
    # Not vacuous: the run's worker did meet the dead connection (and carried on): "could not save progress to the
    # database" or "database unavailable (record the outcome)".
    met = cluster.grep(
        rf'(run {run_id}\b|"run_id": {run_id}\b).*(database|heartbeat)|(database|heartbeat).*"run_id": {run_id}\b'
    )
    print("\n".join(line[:200] for line in met))
    assert met, cluster.logs(pattern=r"WARNING|ERROR")
    status, body = api.gql(
        "query($id: ID!) { getScheduledJob(jobId: $id) { history { id signedLogUrl } } }",
        {"id": str(held)},
        token=acme_token,
    )
    assert "errors" not in body, body
    url = body["data"]["getScheduledJob"]["history"][0]["signedLogUrl"]
    log = api.http.get(url.split("testserver", 1)[-1])
    assert log.status_code == 200
    assert "/hold/k6" in b"".join(log.streaming_content).decode()

    # Retries: 503 twice, then 200 -> three attempts, SUCCEEDED. A 404 is final: one attempt, FAILED.
    flaky_run, missing_run = run_now(api, acme_token, flaky), run_now(api, acme_token, missing)

    def both_ended():
        found = list(JobHistory.objects.filter(pk__in=[flaky_run, missing_run]).exclude(status__in=IN_FLIGHT))
        return found if len(found) == 2 else None

    ended = cluster.wait_until(both_ended, 60, "both retry runs to end")
    by_id = {r.pk: r for r in ended}
    ok, bad = by_id[flaky_run], by_id[missing_run]
    assert ok.status == RunStatus.SUCCEEDED, (ok.error, ok.steps)
    assert ok.steps[0]["attempts"] == 3, ok.steps
    assert len(ok.steps[0]["retries"]) == 2, ok.steps
    assert all("503" in r["error"] for r in ok.steps[0]["retries"]), ok.steps
    assert len(endpoints.hits_for("/flaky/k7/")) == 3
    assert bad.status == RunStatus.FAILED, (bad.error, bad.steps)
    assert bad.steps[0]["attempts"] == 1, bad.steps
    assert "404" in bad.error, bad.error
    assert len(endpoints.hits_for("/status/404")) == 1
