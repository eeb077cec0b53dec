"""The admin's page of a going run: a real worker syncs a throttled 24 MiB, and the page's progress bar moves on its
own (the page reloads itself while the run goes), until the run has ended."""

import re
import time
from collections.abc import Iterator

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import expect

from jobs import services
from jobs.models import JobHistory
from tests.browser.test_operator_console import OPERATOR, OPERATOR_PASSWORD, log_in
from tests.fixtures.long_sync import FILES, local_sync_job, throttled_worker
from tests.fixtures.rclone import write_tree

pytestmark = [pytest.mark.live, pytest.mark.e2e, pytest.mark.slow, pytest.mark.django_db(transaction=True)]



@pytest.fixture(scope="module")
def worker(request) -> Iterator[dict]:
    yield from throttled_worker(request, "2M")


@pytest.fixture
def operator(db):
    return get_user_model().objects.create_superuser(OPERATOR, "operator@example.com", OPERATOR_PASSWORD)


def test_the_run_page_shows_the_progress_bar_moving_without_a_reload(
    worker, operator, instance, resource, settings, tmp_path, page, screenshots
):
    settings.CONFIGS_ALLOW_LOCAL_REMOTES = True
    settings.JOBS_PROGRESS_SECONDS = 1  # the page reloads itself every 2 s
    src, dst = tmp_path / "src", tmp_path / "dst"
    write_tree(src, FILES)
    job = local_sync_job(instance, resource, src, dst)
    log_in(page, screenshots)
    run = services.run_now(job)
    page.goto(f"/admin/jobs/jobhistory/{run.pk}/change/")

    bar = page.locator("#run-progress")
    values, shot = [], []
    deadline = time.monotonic() + 90
    while JobHistory.objects.get(pk=run.pk).finished_at is None:
        assert time.monotonic() < deadline, "the run did not end"
        if bar.count():
            values.append(int(bar.get_attribute("value") or 0))
            if len(set(values)) == 2 and "moving" not in shot:
                shot.append(screenshots.take("moving").stem.split("-", 1)[1])
        time.sleep(0.5)

    moved = sorted(set(values))
    assert len(moved) >= 3, values  # the bar showed three different amounts, and no test code reloaded the page
    assert values == sorted(values)
    expect(page.locator(".field-status_badge")).to_contain_text(re.compile("succeeded", re.I), timeout=15_000)
    screenshots.take("ended")
    screenshots.assert_saved("login-form", "signed-in", "moving", "ended")
