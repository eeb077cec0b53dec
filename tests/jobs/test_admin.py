import json
import re
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.utils import timezone

from configs.services import add_job_config
from jobs import services
from jobs.admin import jobs as jobs_admin
from jobs.models import BisyncListings, JobHistory, RunStatus, ScheduledJob
from jobs.running import sweeper
from jobs.running.locks import cancel_requested
from jobs.scheduling import reconcile
from pointscene.core.connections import redis_client
from tests.fixtures.api import row_snapshot
from tests.fixtures.redbeat import assert_entry_matches, assert_no_entry, queued_messages

ADMIN_PAGES = [
    "/admin/",
    "/admin/core/instance/",
    "/admin/core/resource/",
    "/admin/core/apiclient/",
    "/admin/jobs/scheduledjob/",
    "/admin/jobs/jobhistory/",
    "/admin/jobs/logdeletion/",
    "/admin/jobs/bisynclistings/",
    "/admin/django_celery_results/taskresult/",
    "/admin/configs/remoteconfig/",
]


@pytest.fixture
def operator(db):
    return get_user_model().objects.create_superuser("operator", "op@example.com", "operator-password-1")


@pytest.fixture
def admin_client(client, operator):
    client.force_login(operator)
    return client


@pytest.mark.parametrize("url", ADMIN_PAGES)
def test_it_shows_every_admin_list(admin_client, job, url):
    JobHistory.objects.create(job=job, instance=job.instance)

    assert admin_client.get(url).status_code == 200


def test_it_lists_bisync_listings_by_size_without_their_content(admin_client, job):
    BisyncListings.objects.create(job=job, task="0123456789abcdef", archive=b"x" * 1234, stored_by_run=7)

    page = admin_client.get("/admin/jobs/bisynclistings/").content.decode()

    assert "0123456789abcdef" in page
    assert ">1234<" in page
    assert "xxxx" not in page


def test_it_shows_a_job_page(admin_client, job):
    assert admin_client.get(f"/admin/jobs/scheduledjob/{job.pk}/change/").status_code == 200


def test_it_never_shows_remote_settings(admin_client, resource):
    bucket = {"type": "s3", "access_key_id": "AKIA1", "secret_access_key": "very-secret-value-123"}
    add_job_config(resource, {"bucket": bucket})
    remote = resource.remotes.get()

    listing = admin_client.get("/admin/configs/remoteconfig/")
    page = admin_client.get(f"/admin/configs/remoteconfig/{remote.pk}/change/")

    for response in (listing, page):
        assert response.status_code == 200
        assert b"very-secret-value-123" not in response.content
        assert remote.settings_encrypted.encode() not in response.content


def test_it_validates_a_job_edited_in_the_admin_like_the_api(admin_client, job):
    form = {
        "instance": job.instance_id,
        "name": job.name,
        "workflow": '{"tasks": []}',
        "frequency_type": "CRON_BASED",
        "cron_expression": "61 * * * *",
        "timezone": "UTC",
        "active": "on",
    }

    response = admin_client.post(f"/admin/jobs/scheduledjob/{job.pk}/change/", form)

    assert response.status_code == 200
    assert b"cronExpression" in response.content
    job.refresh_from_db()
    assert job.cron_expression == "30 2 * * *"


def test_it_saves_a_valid_admin_edit_through_the_service(admin_client, job):
    form = {
        "instance": job.instance_id,
        "name": "renamed",
        "workflow": __import__("json").dumps(job.workflow),
        "frequency_type": "INTERVAL_BASED",
        "interval_minutes": "30",
        "cron_expression": "",
        "timezone": "UTC",
        "active": "on",
        # The reliability fieldset, as the form renders it.
        "overlap_policy": "BUFFER_ONE",
        "catchup_window_minutes": "15",
        "jitter_seconds": "0",
        "max_retries": "2",
        "retry_backoff_seconds": "30",
        "pause_after_failures": "",
        "webhook_url": "",
    }

    response = admin_client.post(f"/admin/jobs/scheduledjob/{job.pk}/change/", form)

    assert response.status_code == 302, response.content[:2000]
    job = ScheduledJob.objects.get(pk=job.pk)
    assert (job.name, job.frequency_type, job.interval_minutes, job.cron_expression) == (
        "renamed",
        "INTERVAL_BASED",
        30,
        None,
    )
    assert (job.overlap_policy, job.catchup_window_minutes, job.max_retries, job.webhook_url) == (
        "BUFFER_ONE",
        15,
        2,
        None,
    )


def test_it_refuses_an_admin_edit_with_a_policy_out_of_bounds(admin_client, job):
    form = {
        "instance": job.instance_id,
        "workflow": __import__("json").dumps(job.workflow),
        "frequency_type": job.frequency_type,
        "cron_expression": job.cron_expression or "",
        "interval_minutes": job.interval_minutes or "",
        "timezone": "UTC",
        "active": "on",
        "overlap_policy": "SKIP",
        "catchup_window_minutes": "999999",
        "jitter_seconds": "0",
        "max_retries": "0",
        "retry_backoff_seconds": "30",
        "webhook_url": "",
    }

    response = admin_client.post(f"/admin/jobs/scheduledjob/{job.pk}/change/", form)

    assert response.status_code == 200
    assert b"must be a whole number from 0 to 2880" in response.content
    assert ScheduledJob.objects.get(pk=job.pk).catchup_window_minutes == 0


def job_form(job: ScheduledJob, **changes: object) -> dict:
    """The change form of `job` as the admin renders it, with `changes` typed over it."""
    form = {
        "instance": job.instance_id,
        "name": job.name or "",
        "workflow": json.dumps(job.workflow),
        "frequency_type": job.frequency_type,
        "cron_expression": job.cron_expression or "",
        "interval_minutes": job.interval_minutes or "",
        "timezone": job.timezone,
        "time_limit_seconds": job.time_limit_seconds or "",
        "active": "on",
        "overlap_policy": job.overlap_policy,
        "catchup_window_minutes": job.catchup_window_minutes,
        "jitter_seconds": job.jitter_seconds,
        "max_retries": job.max_retries,
        "retry_backoff_seconds": job.retry_backoff_seconds,
        "pause_after_failures": job.pause_after_failures or "",
        "webhook_url": job.webhook_url or "",
    }
    return {**form, **changes}


def test_an_admin_cron_edit_records_no_missed_run_for_a_slot_only_the_new_schedule_has(admin_client, job, clean_redis):
    # The nightly job has been on its schedule for a day; the operator makes it run every minute.
    ScheduledJob.objects.filter(pk=job.pk).update(schedule_anchor=timezone.now() - timedelta(days=1))
    job.refresh_from_db()

    form = job_form(job, cron_expression="* * * * *")
    response = admin_client.post(f"/admin/jobs/scheduledjob/{job.pk}/change/", form)

    assert response.status_code == 302, response.content[:2000]
    # The minutes before the edit were never this job's slots: the sweep must not call them missed.
    assert sweeper.audit_slots(datetime.now(UTC)) == {"missed": 0, "resent": 0}
    assert not JobHistory.objects.filter(job=job).exists()


@pytest.mark.parametrize("limit", ["0", "over"])
def test_it_refuses_an_admin_time_limit_out_of_bounds_with_an_error_not_a_500(admin_client, job, settings, limit):
    value = settings.JOBS_RUN_TIME_LIMIT + 1 if limit == "over" else 0
    before = row_snapshot()

    response = admin_client.post(f"/admin/jobs/scheduledjob/{job.pk}/change/", job_form(job, time_limit_seconds=value))

    assert response.status_code == 200
    assert f"must be from 1 to {settings.JOBS_RUN_TIME_LIMIT} seconds".encode() in response.content
    assert row_snapshot() == before


# --------------------------------------------------------------------------- the operator console (issue: admin)


def results(response) -> list:
    assert response.status_code == 200, response.content[:2000]
    return list(response.context["cl"].result_list)


def ids(response) -> set[int]:
    return {row.pk for row in results(response)}


def run(job: ScheduledJob, status: str = RunStatus.SUCCEEDED, minutes_ago: int = 5, **fields) -> JobHistory:
    at = timezone.now() - timedelta(minutes=minutes_ago)
    finished = at + timedelta(seconds=42) if status not in (RunStatus.QUEUED, RunStatus.RUNNING) else None
    started = at if status != RunStatus.QUEUED else None
    values = {"started_at": started, "finished_at": finished, "created_at": at, "status": status, **fields}
    return JobHistory.objects.create(job=job, instance_id=job.instance_id, **values)


def action(admin_client, model: str, name: str, objects) -> list[str]:
    response = admin_client.post(
        f"/admin/jobs/{model}/", {"action": name, "_selected_action": [o.pk for o in objects]}, follow=True
    )
    assert response.status_code == 200
    return [str(m) for m in response.context["messages"]]


@pytest.fixture
def interval_job(other_job) -> ScheduledJob:
    return other_job


def test_it_lists_jobs_with_schedule_in_words_timezone_next_run_and_last_outcome(admin_client, job):
    job.timezone = "Europe/Helsinki"
    job.save()
    run(job, RunStatus.FAILED, minutes_ago=60)
    latest = run(job, RunStatus.SUCCEEDED, minutes_ago=5)

    response = admin_client.get("/admin/jobs/scheduledjob/")

    [row] = results(response)
    assert (row.last_status, row.last_run_id) == ("SUCCEEDED", latest.pk)
    html = response.content.decode()
    assert "At 02:30 (Europe/Helsinki)" in html
    assert "Europe/Helsinki" in html
    assert job.next_run().strftime("%Y-%m-%d %H:%M UTC") in html
    assert f'href="/admin/jobs/jobhistory/{latest.pk}/change/"' in html
    assert "Acme" in html


def test_it_says_paused_and_never_for_a_paused_job_that_never_ran(admin_client, job):
    job.active = False
    job.save()

    html = admin_client.get("/admin/jobs/scheduledjob/").content.decode()

    assert "paused" in html
    assert "never" in html


def test_it_filters_jobs_by_last_outcome_active_frequency_and_instance(admin_client, job, interval_job):
    run(job, RunStatus.FAILED)
    run(interval_job, RunStatus.FAILED, minutes_ago=30)
    run(interval_job, RunStatus.SUCCEEDED, minutes_ago=1)
    paused = services.create_job(
        instance=job.instance, workflow=job.workflow, frequency_type="INTERVAL_BASED", interval_minutes=5, active=False
    )
    base = "/admin/jobs/scheduledjob/"

    assert ids(admin_client.get(base + "?last_outcome=FAILED")) == {job.pk}
    assert ids(admin_client.get(base + "?last_outcome=SUCCEEDED")) == {interval_job.pk}
    assert ids(admin_client.get(base + "?last_outcome=NEVER")) == {paused.pk}
    assert ids(admin_client.get(base + "?active__exact=0")) == {paused.pk}
    assert ids(admin_client.get(base + "?frequency_type__exact=INTERVAL_BASED")) == {interval_job.pk, paused.pk}
    assert ids(admin_client.get(base + f"?instance={job.instance_id}")) == {job.pk, paused.pk}
    assert ids(admin_client.get(base + f"?instance={job.instance_id}&active__exact=1")) == {job.pk}


def test_it_keeps_the_other_filters_in_the_instance_id_box(admin_client, job):
    html = admin_client.get("/admin/jobs/scheduledjob/?active__exact=1&q=nightly").content.decode()

    assert '<input type="hidden" name="active__exact" value="1">' in html
    assert '<input type="hidden" name="q" value="nightly">' in html
    assert 'name="instance"' in html


def test_it_sends_a_non_numeric_instance_filter_back_with_an_error_not_a_500(admin_client, job):
    response = admin_client.get("/admin/jobs/scheduledjob/?instance=abc")

    assert response.status_code == 302
    assert "e=1" in response["Location"]


def test_it_searches_jobs_by_name_and_by_id(admin_client, job, interval_job):
    base = "/admin/jobs/scheduledjob/?q="

    assert ids(admin_client.get(base + "nightly")) == {job.pk}
    assert ids(admin_client.get(base + str(interval_job.pk))) == {interval_job.pk}
    assert ids(admin_client.get(base + f"%23{job.pk}")) == {job.pk}
    assert ids(admin_client.get(base + "no-such-job")) == set()


def test_the_pause_and_resume_actions_change_the_job_and_its_schedule_entry(
    admin_client, job, interval_job, clean_redis, django_capture_on_commit_callbacks
):
    reconcile.sync_job(job.pk)
    reconcile.sync_job(interval_job.pk)

    with django_capture_on_commit_callbacks(execute=True):
        said = action(admin_client, "scheduledjob", "pause", [job, interval_job])

    assert said == ["2 jobs paused."]
    assert not ScheduledJob.objects.filter(active=True).exists()
    assert_no_entry(job.pk)
    assert_no_entry(interval_job.pk)

    with django_capture_on_commit_callbacks(execute=True):
        said = action(admin_client, "scheduledjob", "resume", [job])
    assert said == ["1 job resumed."]
    assert ScheduledJob.objects.get(pk=job.pk).active
    assert_entry_matches(job)
    assert_no_entry(interval_job.pk)

    with django_capture_on_commit_callbacks(execute=True):
        said = action(admin_client, "scheduledjob", "resume", [job, interval_job])
    assert said == ["1 job resumed; 1 job already resumed."]
    assert_entry_matches(interval_job)


def test_the_run_now_action_queues_manual_runs_and_publishes_them(
    admin_client, job, interval_job, clean_redis, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        said = action(admin_client, "scheduledjob", "run_now", [job, interval_job])

    runs = list(JobHistory.objects.order_by("pk"))
    assert sorted((r.job_id, r.status, r.trigger) for r in runs) == [
        (job.pk, "QUEUED", "MANUAL"),
        (interval_job.pk, "QUEUED", "MANUAL"),
    ]
    assert said == [f"Queued 2 runs: #{runs[0].pk}, #{runs[1].pk}."]
    published = queued_messages()
    assert sorted(m.args[0] for m in published if m.task == "jobs.run_queued") == [r.pk for r in runs]


def test_the_run_now_action_refuses_a_select_all_slip(admin_client, job, monkeypatch):
    monkeypatch.setattr(jobs_admin, "MAX_RUN_NOW", 1)
    other = services.create_job(
        instance=job.instance, workflow=job.workflow, frequency_type="INTERVAL_BASED", interval_minutes=5
    )

    said = action(admin_client, "scheduledjob", "run_now", [job, other])

    assert said == ["Not run: 2 jobs selected; run at most 1 at once."]
    assert not JobHistory.objects.exists()


def test_the_cancel_action_cancels_queued_runs_and_signals_running_ones(admin_client, job, clean_redis):
    queued = run(job, RunStatus.QUEUED)
    running = run(job, RunStatus.RUNNING)
    done = run(job, RunStatus.SUCCEEDED)

    said = action(admin_client, "scheduledjob", "cancel_running", [job])

    assert said == ["1 queued run cancelled; 1 running run asked to stop (its worker marks it cancelled)."]
    queued.refresh_from_db()
    running.refresh_from_db()
    done.refresh_from_db()
    assert (queued.status, running.status, done.status) == ("CANCELLED", "RUNNING", "SUCCEEDED")
    assert cancel_requested(running.pk)
    assert action(admin_client, "scheduledjob", "cancel_running", [job]) == [
        "1 running run asked to stop (its worker marks it cancelled)."
    ]


def test_the_cancel_action_says_when_there_is_nothing_to_cancel(admin_client, job):
    run(job, RunStatus.SUCCEEDED)

    assert action(admin_client, "scheduledjob", "cancel_running", [job]) == [
        "Nothing to cancel: no queued or running runs."
    ]


def test_the_history_cancel_action_cancels_the_selected_runs(admin_client, job, clean_redis):
    queued, other = run(job, RunStatus.QUEUED), run(job, RunStatus.QUEUED)

    said = action(admin_client, "jobhistory", "cancel", [queued])

    assert said == ["1 queued run cancelled."]
    assert JobHistory.objects.get(pk=queued.pk).status == "CANCELLED"
    assert JobHistory.objects.get(pk=other.pk).status == "QUEUED"


def test_the_job_page_shows_the_next_ten_runs_in_utc_and_local_time(admin_client, job):
    job.timezone = "Europe/Helsinki"
    job.save()

    html = admin_client.get(f"/admin/jobs/scheduledjob/{job.pk}/change/").content.decode()

    upcoming = job.next_runs(11)
    for at in upcoming[:10]:
        assert at.strftime("%Y-%m-%d %H:%M UTC") in html
        local = at.astimezone(ZoneInfo("Europe/Helsinki"))
        assert local.strftime("%Y-%m-%d 02:30 ") + local.tzname() in html
    assert upcoming[10].strftime("%Y-%m-%d %H:%M UTC") not in html
    assert "At 02:30 (Europe/Helsinki)" in html


def test_the_job_page_of_a_paused_job_says_there_are_no_upcoming_runs(admin_client, job):
    job.active = False
    job.save()

    html = admin_client.get(f"/admin/jobs/scheduledjob/{job.pk}/change/").content.decode()

    assert "Paused: no upcoming runs" in html
    assert "Resume</button>" in html


def test_the_job_page_lists_the_last_twenty_runs_with_links_to_their_pages_and_logs(admin_client, job):
    runs = [run(job, RunStatus.SUCCEEDED, minutes_ago=100 - i) for i in range(25)]
    with_log = runs[-1]
    path = f"instances/{job.instance_id}/.log/job-{job.pk}/run-{with_log.pk}.log"
    path = default_storage.save(path, ContentFile(b"2026-01-01T00:00:00.000Z hello from the run\n"))
    JobHistory.objects.filter(pk=with_log.pk).update(log_path=path)

    html = admin_client.get(f"/admin/jobs/scheduledjob/{job.pk}/change/").content.decode()

    for shown in runs[-20:]:
        assert f'href="/admin/jobs/jobhistory/{shown.pk}/change/"' in html
    for hidden in runs[:5]:
        assert f'href="/admin/jobs/jobhistory/{hidden.pk}/change/"' not in html
    assert f'href="/admin/jobs/jobhistory/?job={job.pk}"' in html
    [log_url] = re.findall(r'href="(/logs/[^"]+)"', html)
    log = admin_client.get(log_url)
    assert log.status_code == 200
    assert log["Content-Type"].startswith("text/plain")
    assert b"hello from the run" in b"".join(log.streaming_content)


def test_the_run_now_button_queues_a_run_and_only_answers_post(
    admin_client, job, clean_redis, django_capture_on_commit_callbacks
):
    url = f"/admin/jobs/scheduledjob/{job.pk}/run-now/"
    assert admin_client.get(url).status_code == 405

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(url)

    assert response.status_code == 302
    assert response["Location"] == f"/admin/jobs/scheduledjob/{job.pk}/change/"
    manual = JobHistory.objects.get(job=job)
    assert (manual.status, manual.trigger) == ("QUEUED", "MANUAL")
    assert [m.args for m in queued_messages() if m.task == "jobs.run_queued"] == [[manual.pk]]


def test_the_pause_and_resume_buttons_follow_the_schedule(
    admin_client, job, clean_redis, django_capture_on_commit_callbacks
):
    reconcile.sync_job(job.pk)

    with django_capture_on_commit_callbacks(execute=True):
        assert admin_client.post(f"/admin/jobs/scheduledjob/{job.pk}/pause/").status_code == 302
    assert not ScheduledJob.objects.get(pk=job.pk).active
    assert_no_entry(job.pk)

    with django_capture_on_commit_callbacks(execute=True):
        assert admin_client.post(f"/admin/jobs/scheduledjob/{job.pk}/resume/").status_code == 302
    assert ScheduledJob.objects.get(pk=job.pk).active
    assert_entry_matches(job)


def test_the_run_page_shows_steps_timings_counters_error_and_the_log(admin_client, job):
    steps = [
        {"name": "input", "type": "resource.input", "status": "SUCCEEDED", "seconds": 0.25, "counters": {"files": 3}},
        {
            "name": "sync",
            "type": "rclone.sync",
            "status": "FAILED",
            "seconds": 12.5,
            "counters": {"bytes": 2048, "errors": 1},
            "error": "remote <gdrive> said no",
        },
    ]
    failed = run(job, RunStatus.FAILED, steps=steps, error="step 'sync' failed", worker="celery@w1")
    path = f"instances/{job.instance_id}/.log/job-{job.pk}/run-{failed.pk}.log"
    path = default_storage.save(path, ContentFile(b"2026-01-01T00:00:00.000Z [sync] <failed> after 12.5 s\n"))
    JobHistory.objects.filter(pk=failed.pk).update(log_path=path)

    response = admin_client.get(f"/admin/jobs/jobhistory/{failed.pk}/change/")

    assert response.status_code == 200
    html = response.content.decode()
    for text in ("resource.input", "rclone.sync", "0.250 s", "12.500 s", "files: 3", "bytes: 2048", "errors: 1"):
        assert text in html
    assert "remote &lt;gdrive&gt; said no" in html
    assert "[sync] &lt;failed&gt; after 12.5 s" in html
    assert "celery@w1" in html
    assert "42.0 s" in html  # took
    assert re.search(r'href="/logs/[^"]+"', html)
    assert 'name="_save"' not in html


def test_the_run_page_shows_the_end_of_a_big_log_and_says_so(admin_client, job):
    big = run(job, RunStatus.SUCCEEDED)
    lines = [f"2026-01-01T00:00:00.000Z line {i:06d} {'x' * 80}\n" for i in range(4000)]
    path = f"instances/{job.instance_id}/.log/job-{job.pk}/run-{big.pk}.log"
    path = default_storage.save(path, ContentFile("".join(lines).encode()))
    JobHistory.objects.filter(pk=big.pk).update(log_path=path)

    html = admin_client.get(f"/admin/jobs/jobhistory/{big.pk}/change/").content.decode()

    assert "Showing the last 200 KB of" in html
    assert "line 003999" in html
    assert "line 000000" not in html


def test_the_run_page_says_when_the_log_is_missing_instead_of_failing(admin_client, job):
    lost = run(job, RunStatus.SUCCEEDED, log_path="instances/0/.log/gone.log")

    response = admin_client.get(f"/admin/jobs/jobhistory/{lost.pk}/change/")

    assert response.status_code == 200
    assert b"missing from storage" in response.content


def test_the_cancel_button_cancels_a_queued_run(admin_client, job, clean_redis):
    queued = run(job, RunStatus.QUEUED)
    page = admin_client.get(f"/admin/jobs/jobhistory/{queued.pk}/change/").content.decode()
    assert "Cancel run</button>" in page

    response = admin_client.post(f"/admin/jobs/jobhistory/{queued.pk}/cancel/", follow=True)

    assert JobHistory.objects.get(pk=queued.pk).status == "CANCELLED"
    assert "1 queued run cancelled." in [str(m) for m in response.context["messages"]]
    assert "Cancel run</button>" not in response.content.decode()


def test_it_filters_history_by_status_date_instance_and_job(admin_client, job, interval_job):
    old = run(job, RunStatus.FAILED, minutes_ago=60 * 24 * 40)
    failed = run(job, RunStatus.FAILED)
    ok = run(interval_job, RunStatus.SUCCEEDED)
    base = "/admin/jobs/jobhistory/"
    # As the filter's own "Past 7 days" link gives it: an aware midnight.
    week_ago = urlencode({"created_at__gte": str(timezone.now().replace(hour=0, minute=0) - timedelta(days=7))})

    assert ids(admin_client.get(base + "?status__exact=FAILED")) == {old.pk, failed.pk}
    assert ids(admin_client.get(base + f"?status__exact=FAILED&{week_ago}")) == {failed.pk}
    assert ids(admin_client.get(base + f"?instance={interval_job.instance_id}")) == {ok.pk}
    assert ids(admin_client.get(base + f"?job={job.pk}")) == {old.pk, failed.pk}
    assert ids(admin_client.get(base + f"?q={ok.pk}")) == {ok.pk}
    assert ids(admin_client.get(base + "?q=nope")) == set()
    assert [r.pk for r in results(admin_client.get(base))] == [ok.pk, failed.pk, old.pk]


def test_the_admin_index_links_to_the_dashboard(admin_client, db):
    html = admin_client.get("/admin/").content.decode()

    assert 'href="/admin/dashboard/"' in html


def test_the_dashboard_shows_runs_per_hour_failing_jobs_queue_depth_and_workers(
    admin_client, job, interval_job, clean_redis, settings
):
    settings.HEALTH_WORKER_PING_TIMEOUT = 0.1
    run(job, RunStatus.SUCCEEDED, minutes_ago=150)
    failure = run(job, RunStatus.FAILED, minutes_ago=30, error="the <remote> went away", worker="celery@w7")
    run(interval_job, RunStatus.SUCCEEDED, minutes_ago=20, worker="celery@w7")
    run(interval_job, RunStatus.SUCCEEDED, minutes_ago=60 * 30)  # outside the window
    run(interval_job, RunStatus.QUEUED, minutes_ago=1)
    client = redis_client()
    client.rpush(settings.CELERY_TASK_DEFAULT_QUEUE, "a", "b", "c")
    client.rpush(settings.CELERY_TASK_DEFAULT_QUEUE + "\x06\x169", "d")

    response = admin_client.get("/admin/dashboard/")

    assert response.status_code == 200
    html = response.content.decode()
    assert html.count('class="seg-SUCCEEDED"') == 2
    assert html.count('class="seg-FAILED"') == 1
    assert html.count('class="seg-QUEUED"') == 1
    assert "<svg" in html
    assert not re.search(r'(src|href)="(https?:)?//', html)  # nothing from a CDN
    assert "4 runs since" in html
    assert response.context["failing_count"] == 1
    assert [j.pk for j in response.context["failing"]] == [job.pk]
    assert f'href="/admin/jobs/jobhistory/{failure.pk}/change/"' in html
    assert "the &lt;remote&gt; went away" in html
    assert response.context["queue"].waiting == 4
    assert response.context["in_flight"]["queued"] == 1
    assert "no worker answered a ping" in html
    assert "celery@w7" in html


def test_the_dashboard_counts_workers_that_answered(admin_client, db, clean_redis, settings):
    redis_client().set(f"{settings.JOBS_REDIS_PREFIX}workers-seen", 2)

    html = admin_client.get("/admin/dashboard/").content.decode()

    assert "2 worker(s) answered recently" in html


def test_the_dashboard_and_buttons_send_non_staff_to_the_login_page(client, job, alice):
    client.force_login(alice)
    for url in ("/admin/dashboard/", "/admin/jobs/scheduledjob/", f"/admin/jobs/scheduledjob/{job.pk}/change/"):
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith("/admin/login/"), url

    response = client.post(f"/admin/jobs/scheduledjob/{job.pk}/run-now/")
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")
    assert not JobHistory.objects.exists()


def test_the_dashboard_refuses_staff_who_may_not_see_jobs(client, db):
    staff = get_user_model().objects.create_user("clerk", password="clerk-password-1", is_staff=True)
    client.force_login(staff)

    assert client.get("/admin/dashboard/").status_code == 403
