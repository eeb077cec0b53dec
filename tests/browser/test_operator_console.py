"""The operator console in a real browser, against the live server: sign in through the login form, find a failing
job by the last-outcome filter, run it now and watch the run end, open its log, pause the job, see a remote's
config with its secrets hidden, and load the dashboard. A screenshot of every step is kept as a test artifact
(tests/browser/conftest.py says where).

Two tests share the steps. The first needs no worker: its failed run is made in this process by the runner
itself, so it runs on SQLite as well. The second has real worker and beat processes (PostgreSQL only), so "Run
now" is the real thing: the click queues a Celery task and the worker runs it. Its first step waits on the test
server until the page has shown the run queued or running; then it calls the failing URL, and its log appears.
"""

import os
import re
import threading
import time

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import Page, expect

from configs.models import RemoteConfig
from configs.services import add_job_config
from jobs import services
from jobs.models import FrequencyType, JobHistory, RunStatus, RunTrigger, ScheduledJob
from jobs.running import runner
from pointscene.core.models import Instance, Resource
from tests.browser.conftest import Screenshots
from tests.fixtures.leaks import Scanner, register_secret

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]

OPERATOR = "operator"
OPERATOR_PASSWORD = register_secret("operator-password-for-the-browser-tests")
SECRET_ACCESS_KEY = register_secret("browser-test-s3-secret-access-key-0d9f3c")
ACCESS_KEY_ID = "AKIABROWSERTESTS"
REMOTE_NAME = "archive-bucket"
FAILING_NAME = "Webhook to the failing endpoint"
HEALTHY_NAME = "Webhook that answers"
# Once a year: beat has nothing of these jobs to fire while the tests run, so every run on the page is ours.
YEARLY = "0 4 1 1 *"
FINAL = {RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED, RunStatus.SKIPPED}
RUN_TIMEOUT = 30
STEPS_WITHOUT_WORKER = (
    "login-form",
    "signed-in",
    "failing-jobs-filter",
    "run-page",
    "log",
    "job-paused",
    "config-list",
    "config-secrets-hidden",
    "dashboard",
)
STEPS_WITH_WORKER = (
    "login-form",
    "signed-in",
    "failing-jobs-filter",
    "run-now-clicked",
    "run-finished",
    "run-page",
    "log",
    "job-paused",
    "config-list",
    "config-secrets-hidden",
    "dashboard",
)


# ----- data, made through the services as the API makes it -----


@pytest.fixture
def operator(db):
    return get_user_model().objects.create_superuser(OPERATOR, "operator@example.com", OPERATOR_PASSWORD)


@pytest.fixture
def remote(resource: Resource) -> RemoteConfig:
    bucket = {
        "type": "s3",
        "provider": "AWS",
        "access_key_id": ACCESS_KEY_ID,
        "secret_access_key": SECRET_ACCESS_KEY,
        "region": "eu-north-1",
    }
    add_job_config(resource, {REMOTE_NAME: bucket})
    return RemoteConfig.objects.get(resource=resource, name=REMOTE_NAME)


def make_job(instance: Instance, name: str, url: str, hold: str | None = None) -> ScheduledJob:
    """One http.request step "ping" to `url`; after a step "hold" to `hold` if given (the test server's /slow, which
    answers when the test says so: the run stays RUNNING until then)."""
    tasks = [{"name": "ping", "type": "http.request", "args": {"url": url, "timeoutSeconds": 10}}]
    if hold:
        tasks[0]["inputs"] = "hold"
        tasks.insert(0, {"name": "hold", "type": "http.request", "args": {"url": hold, "timeoutSeconds": 40}})
    workflow = {"tasks": tasks}
    return services.create_job(
        instance=instance, workflow=workflow, frequency_type=FrequencyType.CRON_BASED, cron_expression=YEARLY, name=name
    )


def wait_for_end(run_id: int, processes: dict) -> JobHistory:
    """The run once the worker has ended it; the worker's and beat's output if it does not."""
    deadline = time.monotonic() + RUN_TIMEOUT
    while time.monotonic() < deadline:
        run = JobHistory.objects.get(pk=run_id)
        if run.status in FINAL:
            return run
        time.sleep(0.1)
    logs = "\n".join(p.output()[-3000:] for p in processes.values())
    raise AssertionError(f"run {run_id} did not end within {RUN_TIMEOUT} s\n{logs}")


# ----- the steps, in the order an operator takes them -----


def log_in(page: Page, shots: Screenshots) -> None:
    page.goto("/admin/")
    expect(page).to_have_url(re.compile(r"/admin/login/"))
    page.get_by_label("Username").fill(OPERATOR)
    page.get_by_label("Password").fill(OPERATOR_PASSWORD)
    shots.take("login-form")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Site administration")).to_be_visible()
    expect(page.get_by_role("link", name="Jobs dashboard")).to_be_visible()
    shots.take("signed-in")


def find_failing_job(page: Page, shots: Screenshots, job: ScheduledJob) -> None:
    """From the index to the job list, filtered by last outcome FAILED, and on to the job's page."""
    page.locator("#jobs-scheduledjob").get_by_role("link", name="Scheduled jobs", exact=True).click()
    results = page.locator("#result_list")
    expect(results.get_by_role("link", name=HEALTHY_NAME)).to_be_visible()
    page.locator('#changelist-filter details[data-filter-title="last outcome"]').get_by_role(
        "link", name="Failed", exact=True
    ).click()
    expect(page).to_have_url(re.compile(r"[?&]last_outcome=FAILED"))
    expect(results.get_by_role("link", name=FAILING_NAME)).to_be_visible()
    expect(results.get_by_role("link", name=HEALTHY_NAME)).to_have_count(0)
    expect(results.locator("tbody tr")).to_have_count(1)
    expect(results.locator("tbody tr").first).to_contain_text("FAILED")
    shots.take("failing-jobs-filter")
    results.get_by_role("link", name=FAILING_NAME).click()
    expect(page.get_by_role("heading", name="Change scheduled job")).to_be_visible()
    expect(page.locator("#id_name")).to_have_value(job.name)


def run_row(page: Page, run_id: int):
    return page.locator(".field-recent_runs tbody tr").filter(
        has=page.get_by_role("link", name=f"#{run_id}", exact=True)
    )


def run_now_and_watch(page: Page, shots: Screenshots, release: threading.Event) -> int:
    """Clicks Run now on the job's page and sees the new run on it, queued or running (its first step waits for
    `release`); then lets it go on and reloads the page until the run's row shows how it ended."""
    page.get_by_role("button", name="Run now").click()
    message = page.locator("ul.messagelist li")
    expect(message).to_contain_text(re.compile(r"Queued run #\d+\."))
    run_id = int(re.search(r"#(\d+)", message.inner_text()).group(1))
    row = run_row(page, run_id)
    expect(row).to_be_visible()
    expect(row).to_contain_text("MANUAL")
    expect(row.locator("td").nth(2)).to_have_text(re.compile(r"^\s*(QUEUED|RUNNING)\s*$"))
    shots.take("run-now-clicked")
    release.set()
    deadline = time.monotonic() + RUN_TIMEOUT
    while (status := row.locator("td").nth(2).inner_text().strip()) not in FINAL:
        assert time.monotonic() < deadline, f"run #{run_id} still {status} after {RUN_TIMEOUT} s"
        page.wait_for_timeout(250)
        page.reload()
        expect(row).to_be_visible()
    assert status == RunStatus.FAILED
    expect(row.get_by_role("link", name="log", exact=True)).to_be_visible()
    shots.take("run-finished")
    return run_id


def open_run_and_log(page: Page, shots: Screenshots, run_id: int, url: str) -> None:
    """From the job's recent runs to the run's page (steps, the end of its log), then the whole log (a signed link,
    opened in a new tab); back on the job's page after."""
    page.locator(".field-recent_runs").get_by_role("link", name=f"#{run_id}", exact=True).click()
    expect(page).to_have_url(re.compile(rf"/admin/jobs/jobhistory/{run_id}/change/"))
    expect(page.locator(".field-status_badge")).to_contain_text("FAILED")
    step = page.locator(".field-steps_table tbody tr").filter(has_text="ping")
    expect(step).to_have_count(1)
    expect(step).to_contain_text("http.request")
    expect(step).to_contain_text("FAILED")
    expect(step).to_contain_text("answered 500")
    expect(page.locator(".field-log_panel pre")).to_contain_text(f"GET {url} -> 500")
    shots.take("run-page")

    link = page.get_by_role("link", name="Open the whole log")
    expect(link).to_have_attribute("href", re.compile(r"^/logs/[^/]+$"))
    with page.context.expect_page() as opened:
        link.click()
    log_tab = opened.value
    log_tab.wait_for_load_state()
    expect(log_tab).to_have_url(re.compile(r"/logs/[^/]+$"))
    expect(log_tab.locator("body")).to_contain_text(f"GET {url} -> 500")
    expect(log_tab.locator("body")).to_contain_text("[ping] failed")
    shots.take("log", page=log_tab)
    log_tab.close()

    page.locator(".object-tools").get_by_role("link", name="Job", exact=True).click()
    expect(page.get_by_role("heading", name="Change scheduled job")).to_be_visible()


def pause_job(page: Page, shots: Screenshots, job: ScheduledJob) -> None:
    page.get_by_role("button", name="Pause", exact=True).click()
    expect(page.locator("ul.messagelist li")).to_have_text(f"Job #{job.pk} paused.")
    expect(page.get_by_role("button", name="Resume", exact=True)).to_be_visible()
    expect(page.get_by_role("button", name="Pause", exact=True)).to_have_count(0)
    expect(page.locator(".field-upcoming_runs")).to_contain_text("Paused: no upcoming runs.")
    expect(page.locator("#id_active")).not_to_be_checked()
    shots.take("job-paused")
    assert ScheduledJob.objects.get(pk=job.pk).active is False


def assert_no_secret(page: Page, where: str) -> None:
    """Neither the secret nor any encoding of it (JSON, URL, base64, hex) anywhere in the page's HTML."""
    html = page.content()
    assert SECRET_ACCESS_KEY not in html, where
    assert not Scanner([SECRET_ACCESS_KEY]).find(html), where


def see_config(page: Page, shots: Screenshots, remote: RemoteConfig) -> None:
    page.goto("/admin/configs/remoteconfig/")
    row = page.locator("#result_list tbody tr").filter(has=page.get_by_role("link", name=REMOTE_NAME, exact=True))
    expect(row).to_contain_text(f"access_key_id={ACCESS_KEY_ID}")
    expect(row).to_contain_text("region=eu-north-1")
    expect(row).to_contain_text("secret_access_key ✓")
    assert_no_secret(page, "config list")
    shots.take("config-list")

    row.get_by_role("link", name=REMOTE_NAME, exact=True).click()
    expect(page).to_have_url(re.compile(rf"/admin/configs/remoteconfig/{remote.pk}/change/"))
    expect(page.locator("#id_settings_json")).to_have_value(re.compile(rf'"access_key_id": "{ACCESS_KEY_ID}"'))
    secret_input = page.locator("#id_secret__secret_access_key")
    expect(secret_input).to_be_visible()
    expect(secret_input).to_have_attribute("type", "password")
    expect(secret_input).to_have_value("")
    expect(page.locator(".field-secret__secret_access_key")).to_contain_text("set: leave blank to keep it")
    expect(page.locator("#id_secrets_json")).to_have_value("")
    assert_no_secret(page, "config page")
    shots.take("config-secrets-hidden")


def load_dashboard(page: Page, shots: Screenshots, job: ScheduledJob, workers_up: bool) -> None:
    page.goto("/admin/")
    page.get_by_role("link", name="Jobs dashboard").click()
    expect(page).to_have_url(re.compile(r"/admin/dashboard/$"))
    expect(page.get_by_role("heading", name="Jobs dashboard")).to_be_visible()
    failing = page.locator(".module").filter(has=page.get_by_role("heading", name=re.compile(r"^Failing jobs")))
    expect(failing.get_by_role("heading")).to_have_text("Failing jobs (1)")
    expect(failing.locator("tbody tr")).to_have_count(1)
    expect(failing.locator("tbody tr")).to_contain_text(f"{job.name} (#{job.pk}) · paused")
    expect(failing.locator("tbody tr")).to_contain_text("answered 500")
    expect(page.locator("svg rect.seg-FAILED").first).to_be_visible()
    if workers_up:
        workers = page.locator(".card").filter(has=page.get_by_role("heading", name="Workers", exact=True))
        expect(workers.locator(".big")).to_have_text("up")
    assert_no_secret(page, "dashboard")
    shots.take("dashboard")


# ----- the tests -----


def test_it_finds_opens_and_pauses_a_failing_job_and_hides_secrets(
    operator, instance, remote, http_server, loopback_allowed, page, screenshots
):
    """Everything but Run now, with runs made in this process by the worker's own code (runner.run_queued)."""
    failing = make_job(instance, FAILING_NAME, http_server.url("/fail"))
    healthy = make_job(instance, HEALTHY_NAME, http_server.url("/ok"))
    runs = {}
    for job in (failing, healthy):
        run = JobHistory.objects.create(job=job, instance_id=job.instance_id, trigger=RunTrigger.MANUAL)
        runner.run_queued(run.pk)
        runs[job.pk] = JobHistory.objects.get(pk=run.pk)
    assert (runs[failing.pk].status, runs[healthy.pk].status) == (RunStatus.FAILED, RunStatus.SUCCEEDED)

    log_in(page, screenshots)
    find_failing_job(page, screenshots, failing)
    open_run_and_log(page, screenshots, runs[failing.pk].pk, http_server.url("/fail"))
    pause_job(page, screenshots, failing)
    see_config(page, screenshots, remote)
    load_dashboard(page, screenshots, failing, workers_up=False)

    screenshots.assert_saved(*STEPS_WITHOUT_WORKER)


@pytest.mark.e2e
def test_it_runs_a_failing_job_now_on_a_real_worker_and_shows_its_run_and_log(
    processes, operator, instance, remote, http_server, loopback_allowed, page, screenshots
):
    """The whole round: the first failure and the run-now both go through Celery to the real worker process."""
    failing = make_job(instance, FAILING_NAME, http_server.url("/fail"), hold=http_server.url("/slow"))
    healthy = make_job(instance, HEALTHY_NAME, http_server.url("/ok"))
    http_server.release.set()  # the first run goes straight through its hold step
    first = {job.pk: services.run_now(job).pk for job in (failing, healthy)}
    assert wait_for_end(first[failing.pk], processes).status == RunStatus.FAILED
    assert wait_for_end(first[healthy.pk], processes).status == RunStatus.SUCCEEDED
    http_server.release.clear()  # the one clicked waits in it until the page has shown it going

    log_in(page, screenshots)
    find_failing_job(page, screenshots, failing)
    run_id = run_now_and_watch(page, screenshots, http_server.release)
    assert run_id != first[failing.pk]
    open_run_and_log(page, screenshots, run_id, http_server.url("/fail"))
    pause_job(page, screenshots, failing)
    see_config(page, screenshots, remote)
    load_dashboard(page, screenshots, failing, workers_up=True)

    run = JobHistory.objects.get(pk=run_id)
    assert (run.trigger, run.status) == (RunTrigger.MANUAL, RunStatus.FAILED)
    assert run.worker
    assert run.worker.rsplit(":", 1)[1] != str(os.getpid())
    # The first two runs, and the one clicked.
    assert sorted(http_server.paths()) == ["/fail", "/fail", "/ok", "/slow", "/slow"]
    screenshots.assert_saved(*STEPS_WITH_WORKER)
