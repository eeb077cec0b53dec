"""The job form's live schedule preview: the next runs and the schedule in words change as the operator types, and a
wrong schedule says what is wrong, before anything is saved."""

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import expect

from jobs.models import ScheduledJob
from tests.browser.test_operator_console import OPERATOR, OPERATOR_PASSWORD, log_in

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def operator(db):
    return get_user_model().objects.create_superuser(OPERATOR, "operator@example.com", OPERATOR_PASSWORD)


def test_it_previews_the_schedule_as_the_operator_types(operator, page, screenshots):
    log_in(page, screenshots)
    page.goto("/admin/jobs/scheduledjob/add/")
    preview = page.locator("#schedule-preview")

    page.get_by_label("Frequency type").select_option("CRON_BASED")
    page.get_by_label("Cron expression").fill("30 2 * * *")
    expect(preview).to_contain_text("At 02:30")
    expect(preview.locator("li")).to_have_count(5)
    expect(preview.locator("li").first).to_contain_text("02:30 UTC")
    screenshots.take("cron-in-utc")

    page.get_by_label("Timezone").fill("Europe/Helsinki")
    expect(preview.locator("li").first).to_contain_text("02:30 EET")  # 00:30 UTC in winter
    expect(preview.locator("li").first).to_contain_text("00:30 UTC")
    screenshots.take("cron-in-helsinki")

    page.get_by_label("Cron expression").fill("61 * * * *")
    expect(preview.locator(".errornote")).to_contain_text("cron_expression")
    expect(preview.locator("li")).to_have_count(0)
    screenshots.take("cron-wrong")

    page.get_by_label("Cron expression").fill("")
    page.get_by_label("Frequency type").select_option("INTERVAL_BASED")
    page.get_by_label("Interval minutes").fill("90")
    expect(preview).to_contain_text("Every 90 minutes")
    expect(preview.locator("li")).to_have_count(5)
    screenshots.take("interval")

    screenshots.assert_saved("login-form", "signed-in", "cron-in-utc", "cron-in-helsinki", "cron-wrong", "interval")
    assert ScheduledJob.objects.count() == 0


def test_it_answers_the_preview_only_to_operators(client, db):
    response = client.get("/admin/jobs/scheduledjob/preview-schedule/?frequency_type=CRON_BASED&cron_expression=*")

    assert response.status_code == 302  # to the login page
    assert "/admin/login/" in response["Location"]
