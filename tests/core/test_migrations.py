"""Upgrading a database that holds data: the migrations that changed where rows live or what they mean.

Each test migrates the test database back to before the change, writes rows through the historical models (as a
database of that release would hold them), migrates forward, and reads them through today's models. It leaves the
database at the latest migration for the tests after it.
"""

from collections.abc import Iterator

import pytest
from django.contrib.auth.models import Permission, User
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from configs.models import RemoteConfig
from jobs.models import JobHistory, LogDeletion, ScheduledJob
from pointscene.core.models import ApiClient, Instance, Resource

BEFORE_TENANCY_MOVED = [("jobs", "0006_jobhistory_log_key"), ("configs", "0001_initial"), ("core", None)]
BEFORE_LOG_KEYS = [("jobs", "0005_reliability_policies"), ("configs", "0001_initial"), ("core", None)]
BEFORE_ONE_LOG_QUEUE = [("jobs", "0014_job_name_trigram_index")]


def migrate_to(targets: list[tuple[str, str | None]]):
    """The historical apps at `targets`, after migrating the database there."""
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    executor.loader.build_graph()
    moved = {app for app, _ in targets}
    others = [node for node in executor.loader.graph.leaf_nodes() if node[0] not in moved]
    return executor.loader.project_state([t for t in targets if t[1] is not None] + others).apps


@pytest.fixture
def back_to_latest() -> Iterator[None]:
    yield
    call_command("migrate", verbosity=0)


@pytest.mark.django_db(transaction=True)
def test_it_keeps_tenants_resources_clients_and_their_permissions_when_tenancy_moves_to_core(back_to_latest):
    old = migrate_to(BEFORE_TENANCY_MOVED)
    content_type = old.get_model("contenttypes", "ContentType")
    instance_type, _ = content_type.objects.get_or_create(app_label="jobs", model="instance")
    add_instance, _ = old.get_model("auth", "Permission").objects.get_or_create(
        content_type=instance_type, codename="add_instance", defaults={"name": "Can add instance"}
    )
    operator = old.get_model("auth", "User").objects.create(username="operator")
    operator.user_permissions.add(add_instance)
    instance = old.get_model("jobs", "Instance").objects.create(name="acme")
    instance.members.add(operator)
    resource = old.get_model("jobs", "Resource").objects.create(instance=instance, name="site")
    application = old.get_model("oauth2_provider", "Application").objects.create(
        name="app", client_type="confidential", authorization_grant_type="client-credentials"
    )
    client = old.get_model("jobs", "ApiClient").objects.create(application=application)
    client.instances.add(instance)
    job = old.get_model("jobs", "ScheduledJob").objects.create(
        instance=instance, workflow={"tasks": []}, frequency_type="INTERVAL_BASED", interval_minutes=5
    )
    old.get_model("configs", "RemoteConfig").objects.create(
        resource=resource, name="bucket", type="s3", settings_encrypted="x"
    )

    call_command("migrate", verbosity=0)

    moved = Instance.objects.get(pk=instance.pk)
    assert [u.username for u in moved.members.all()] == ["operator"]
    assert Resource.objects.get(pk=resource.pk).instance == moved
    assert list(ApiClient.objects.get(pk=client.pk).instances.all()) == [moved]
    assert ScheduledJob.objects.get(pk=job.pk).instance == moved
    assert RemoteConfig.objects.get(resource_id=resource.pk).resource.instance == moved
    # The permission row followed its model: the operator may still create instances.
    assert Permission.objects.get(pk=add_instance.pk).content_type.app_label == "core"
    assert User.objects.get(pk=operator.pk).has_perm("core.add_instance")


@pytest.mark.django_db(transaction=True)
def test_it_gives_every_existing_run_its_own_log_key(back_to_latest):
    old = migrate_to(BEFORE_LOG_KEYS)
    instance = old.get_model("jobs", "Instance").objects.create(name="acme")
    job = old.get_model("jobs", "ScheduledJob").objects.create(
        instance=instance, workflow={"tasks": []}, frequency_type="INTERVAL_BASED", interval_minutes=5
    )
    history = old.get_model("jobs", "JobHistory")
    runs = [history.objects.create(job=job, instance=instance, status="SUCCEEDED") for _ in range(3)]

    call_command("migrate", verbosity=0)

    keys = [JobHistory.objects.get(pk=run.pk).log_key for run in runs]
    assert all(keys)
    assert len(set(keys)) == 3


@pytest.mark.django_db(transaction=True)
def test_it_moves_queued_log_purges_into_the_one_log_deletion_queue(back_to_latest):
    old = migrate_to(BEFORE_ONE_LOG_QUEUE)
    failed = old.get_model("jobs", "LogPurge").objects.create(
        folder="logs/7/12/", attempts=2, last_error="EndpointConnectionError: " + "x" * 300
    )
    fresh = old.get_model("jobs", "LogPurge").objects.create(folder="logs/8/")
    pruned = old.get_model("jobs", "LogDeletion").objects.create(path="logs/7/13/99.log")

    call_command("migrate", verbosity=0)

    rows = {row.path: row for row in LogDeletion.objects.all()}
    assert set(rows) == {"logs/7/12/", "logs/8/", "logs/7/13/99.log"}
    assert (rows["logs/7/12/"].attempts, rows["logs/7/12/"].last_error) == (2, failed.last_error)
    assert rows["logs/7/12/"].next_attempt_at == failed.next_attempt_at
    assert (rows["logs/8/"].attempts, rows["logs/8/"].last_error) == (0, "")
    assert rows["logs/8/"].created_at == fresh.created_at
    assert rows["logs/7/13/99.log"].pk == pruned.pk
    assert not rows["logs/7/13/99.log"].is_folder


@pytest.mark.django_db(transaction=True)
def test_it_moves_queued_folders_back_to_log_purges_when_reversed(back_to_latest):
    LogDeletion.objects.create(path="logs/7/12/", attempts=1, last_error="E" * 300)
    LogDeletion.objects.create(path="logs/7/13/99.log", attempts=3, last_error="F" * 300)

    old = migrate_to(BEFORE_ONE_LOG_QUEUE)

    purges = list(old.get_model("jobs", "LogPurge").objects.values_list("folder", "attempts", "last_error"))
    assert purges == [("logs/7/12/", 1, "E" * 300)]
    files = list(old.get_model("jobs", "LogDeletion").objects.values_list("path", "attempts", "last_error"))
    assert files == [("logs/7/13/99.log", 3, "F" * 200)]  # its column is 200 characters again
