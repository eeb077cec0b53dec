"""The admin's pages cost the same number of SQL queries for 10 jobs as for 10,000 (issue: admin as the operator
console). Rows are made with bulk_create, past the services: only their number matters here.

Each page is fetched once with a small data set and once with a large one, and the two counts must be equal (no
query per row, per job, per instance) and small. Page 2 is compared with page 1 of the small set, which has no
page 2.
"""

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from configs.crypto import encrypt_json
from configs.models import RemoteConfig
from jobs.models import FrequencyType, JobHistory, RunStatus, ScheduledJob
from pointscene.core.models import Instance, Resource
from tests.fixtures.cast import sync_workflow

SMALL, LARGE = 10, 10_000
# A page is at most this many queries: session, user, counts, rows, filter choices, and the like.
MAX_QUERIES = 12
STATUSES = [RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.SUCCEEDED, RunStatus.CANCELLED, RunStatus.SKIPPED]
ZONES = ["UTC", "Europe/Helsinki", "America/New_York", "Asia/Kolkata"]


@pytest.fixture
def admin_client(client, db, settings):
    settings.HEALTH_WORKER_PING_TIMEOUT = 0.05
    user = get_user_model().objects.create_superuser("operator", "op@example.com", "operator-password-1")
    client.force_login(user)
    return client


class World:
    """Instances, jobs (cron and interval, active and paused, many zones), runs and remotes, grown in place."""

    def __init__(self) -> None:
        self.instances = [Instance.objects.create(name=f"Tenant {i}") for i in range(3)]
        self.resource = Resource.objects.create(instance=self.instances[0], name="Site")
        self.workflow = sync_workflow(self.instances[0], self.resource)
        self.jobs = 0
        self.remotes = 0
        self.blob = encrypt_json(
            {"type": "s3", "provider": "AWS", "access_key_id": "AKIA", "secret_access_key": "x" * 40}
        )

    def grow(self, jobs: int, remotes: int, extra_instances: int = 0) -> None:
        Instance.objects.bulk_create(Instance(name=f"More {i}") for i in range(extra_instances))
        now = timezone.now()
        new = []
        for i in range(self.jobs, jobs):
            cron = i % 2 == 0
            new.append(
                ScheduledJob(
                    instance=self.instances[i % len(self.instances)],
                    name=f"job {i:05d}" + (" nightly" if i % 7 == 0 else ""),
                    workflow=self.workflow,
                    frequency_type=FrequencyType.CRON_BASED if cron else FrequencyType.INTERVAL_BASED,
                    cron_expression=f"{i % 60} {i % 24} * * *" if cron else None,
                    interval_minutes=None if cron else 5 + i % 55,
                    timezone=ZONES[i % len(ZONES)],
                    active=i % 5 != 0,
                    last_run_at=now - timedelta(minutes=i % 300),
                )
            )
        created = ScheduledJob.objects.bulk_create(new, batch_size=2000)
        runs = []
        for job in created:
            # Most jobs ran twice; every 9th never ran; the latest run's status varies.
            if job.pk % 9 == 0:
                continue
            for k in range(2):
                at = now - timedelta(minutes=(job.pk % 600) + 60 * (1 - k))
                status = STATUSES[(job.pk + k) % len(STATUSES)]
                runs.append(
                    JobHistory(
                        job=job,
                        instance_id=job.instance_id,
                        status=status,
                        trigger="SCHEDULE",
                        scheduled_for=at,
                        created_at=at,
                        started_at=at,
                        finished_at=at + timedelta(seconds=30),
                        error="boom" if status == RunStatus.FAILED else None,
                        worker=f"celery@w{job.pk % 4}",
                        log_path=f"instances/{job.instance_id}/.log/job-{job.pk}/run-x.log",
                    )
                )
        JobHistory.objects.bulk_create(runs, batch_size=2000)
        RemoteConfig.objects.bulk_create(
            (
                RemoteConfig(resource=self.resource, name=f"remote-{i:05d}", type="s3", settings_encrypted=self.blob)
                for i in range(self.remotes, remotes)
            ),
            batch_size=2000,
        )
        self.jobs, self.remotes = jobs, remotes


def pages(world: World) -> dict[str, str]:
    first_job = ScheduledJob.objects.order_by("pk").first()
    first_run = JobHistory.objects.order_by("pk").first()
    tenant = world.instances[1].pk
    return {
        "jobs": "/admin/jobs/scheduledjob/",
        "jobs, filtered": (
            f"/admin/jobs/scheduledjob/?instance={tenant}&active__exact=1&frequency_type__exact=INTERVAL_BASED"
        ),
        "jobs, last outcome": "/admin/jobs/scheduledjob/?last_outcome=FAILED",
        "jobs, never run": "/admin/jobs/scheduledjob/?last_outcome=NEVER",
        "jobs, search": "/admin/jobs/scheduledjob/?q=nightly",
        "jobs, search id": f"/admin/jobs/scheduledjob/?q={first_job.pk}",
        "jobs, sorted by outcome": "/admin/jobs/scheduledjob/?o=8",
        "jobs, page 2": "/admin/jobs/scheduledjob/?p=2",
        "history": "/admin/jobs/jobhistory/",
        "history, filtered": f"/admin/jobs/jobhistory/?status__exact=FAILED&instance={tenant}",
        "history, job": f"/admin/jobs/jobhistory/?job={first_job.pk}",
        "history, page 2": "/admin/jobs/jobhistory/?p=2",
        "job page": f"/admin/jobs/scheduledjob/{first_job.pk}/change/",
        "run page": f"/admin/jobs/jobhistory/{first_run.pk}/change/",
        "remotes": "/admin/configs/remoteconfig/",
        "remotes, page 2": "/admin/configs/remoteconfig/?p=2",
        "instances": "/admin/core/instance/",
        "resources": "/admin/core/resource/",
        "dashboard": "/admin/dashboard/",
    }


def count_queries(client, url: str) -> tuple[int, int | None]:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    rows = len(response.context["cl"].result_list) if "cl" in response.context else None
    return len(queries), rows


def test_it_lists_10_jobs_and_10000_jobs_in_the_same_few_queries(admin_client):
    world = World()
    world.grow(SMALL, SMALL)
    small_pages = pages(world)
    small = {}
    for name, url in small_pages.items():
        # The small set has no page 2; its page 1 asks the same queries. The first request of a page fills
        # process-wide caches (content types), so the second one is counted.
        count_queries(admin_client, url.replace("?p=2", ""))
        small[name] = count_queries(admin_client, url.replace("?p=2", ""))

    world.grow(LARGE, 1_000, extra_instances=500)
    first_job = ScheduledJob.objects.order_by("pk").first()
    JobHistory.objects.bulk_create(
        JobHistory(job=first_job, instance_id=first_job.instance_id, status=RunStatus.SUCCEEDED) for _ in range(30)
    )
    large = {name: count_queries(admin_client, url) for name, url in pages(world).items()}

    assert {k: v[0] for k, v in large.items()} == {k: v[0] for k, v in small.items()}
    assert max(n for n, _ in large.values()) <= MAX_QUERIES, large
    # Full pages at 10,000, so a query per row would have shown.
    assert large["jobs"][1] == 100
    assert small["jobs"][1] == SMALL
    assert large["history"][1] == 100
    assert large["remotes"][1] == 100
    assert large["jobs, page 2"][1] == 100
    assert ScheduledJob.objects.count() == LARGE
    print("\nadmin queries (10 jobs -> 10,000 jobs):", {k: (small[k][0], large[k][0]) for k in large})
