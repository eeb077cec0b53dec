"""compose's beat healthcheck (manage.py beat_health): healthy while this beat ticks, or while it stands by for the
lock another beat holds; unhealthy otherwise. A real beat's ticks are checked in tests/e2e/test_health.py."""

import io
import json
import os
import time

import pytest
from django.core.management import CommandError, call_command
from redbeat.schedulers import RedBeatConfig

from jobs.scheduling.beat import beat_alive
from pointscene.celery import app

pytestmark = pytest.mark.usefixtures("clean_redis")


@pytest.fixture
def heartbeat(settings, tmp_path):
    settings.BEAT_HEARTBEAT_FILE = tmp_path / "beat" / "heartbeat"
    settings.BEAT_HEARTBEAT_MAX_AGE = 60
    return settings.BEAT_HEARTBEAT_FILE


def health() -> dict:
    out = io.StringIO()
    call_command("beat_health", stdout=out)
    return json.loads(out.getvalue())


def age(path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def test_it_is_healthy_while_beat_ticks(heartbeat):
    beat_alive()

    assert heartbeat.is_file()
    assert health()["ok"] is True


def test_it_is_unhealthy_when_ticks_stopped(heartbeat, clean_redis):
    beat_alive()
    age(heartbeat, 61)
    clean_redis.set(RedBeatConfig(app).lock_key, "another beat")  # held, but this beat has stopped ticking

    with pytest.raises(CommandError, match="last ticked 61 s ago"):
        health()


def test_it_is_unhealthy_when_it_never_ticked_and_no_beat_holds_the_lock(heartbeat):
    with pytest.raises(CommandError, match="never ticked; lock .* free"):
        health()


def test_a_standby_is_healthy_while_another_beat_holds_the_lock(heartbeat, clean_redis):
    clean_redis.set(RedBeatConfig(app).lock_key, "another beat")

    found = health()

    assert found["ok"] is True
    assert found["detail"].startswith("standing by")
