"""sentinel:// URLs (pointscene/core/sentinel.py): what the broker, RedBeat and the service's own clients get from
one REDIS_URL. The failover itself is tests/faults/test_sentinel_faults.py, with real sentinels."""

import json
import os
import re
import subprocess
import sys

import pytest

from pointscene.core.sentinel import InvalidSentinelUrl, SentinelPool, SentinelUrl

URL = "sentinel://:s%40cret@10.0.0.1:26379,10.0.0.2:26380,[fd00::3]:26381/2?master=pointscene"


def test_it_leaves_plain_redis_urls_alone():
    assert SentinelUrl.parse("redis://127.0.0.1:6379/0") is None


def test_it_reads_sentinels_primary_database_and_password():
    parsed = SentinelUrl.parse(URL)

    assert parsed.sentinels == (("10.0.0.1", 26379), ("10.0.0.2", 26380), ("fd00::3", 26381))
    assert parsed.master == "pointscene"
    assert parsed.db == 2
    assert parsed.password == "s@cret"
    assert parsed.sentinel_password is None


def test_it_gives_kombu_one_url_per_sentinel_and_the_primary_in_the_options():
    parsed = SentinelUrl.parse(URL)

    assert parsed.broker_url() == (
        "sentinel://:s%40cret@10.0.0.1:26379/2;sentinel://:s%40cret@10.0.0.2:26380/2;"
        "sentinel://:s%40cret@[fd00::3]:26381/2"
    )
    assert parsed.broker_options() == {"master_name": "pointscene"}


def test_it_gives_redbeat_the_sentinels_and_the_primary():
    parsed = SentinelUrl.parse(URL + "&sentinel_password=other")

    assert parsed.redbeat_url() == "redis-sentinel://10.0.0.1:26379/2"
    assert parsed.redbeat_options() == {
        "sentinels": [("10.0.0.1", 26379), ("10.0.0.2", 26380), ("fd00::3", 26381)],
        "service_name": "pointscene",
        "db": 2,
        "password": "s@cret",
        "sentinel_kwargs": {"password": "other"},
    }


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("sentinel:///0?master=x", "at least one sentinel"),
        ("sentinel://10.0.0.1/0?master=x", "HOST:PORT"),
        ("sentinel://10.0.0.1:26379/0", "?master=NAME"),
        ("sentinel://10.0.0.1:26379/zero?master=x", "not a number"),
    ],
)
def test_it_refuses_a_url_it_cannot_use_and_says_why(url, problem):
    with pytest.raises(InvalidSentinelUrl, match=re.escape(problem)):
        SentinelUrl.parse(url)


def test_its_cache_pool_asks_the_sentinels_for_the_primary():
    pool = SentinelPool.from_url(URL, socket_timeout=1)

    assert pool.service_name == "pointscene"
    assert pool.connection_kwargs["db"] == 2
    assert pool.connection_kwargs["password"] == "s@cret"
    assert [s.connection_pool.connection_kwargs["port"] for s in pool.sentinel_manager.sentinels] == [
        26379,
        26380,
        26381,
    ]


def test_one_sentinel_redis_url_sets_the_broker_redbeat_and_the_rate_limits(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "REDBEAT_REDIS_URL"}
    # Celery reads CELERY_BROKER_URL from the environment itself, past settings.py: it is converted too.
    env.update(
        REDIS_URL=URL, CELERY_BROKER_URL=URL, RATELIMIT_REDIS_URL=URL, DJANGO_SETTINGS_MODULE="pointscene.settings"
    )
    script = (
        "import json, django; django.setup(); from django.conf import settings as s; "
        "from pointscene.celery import app; "
        "print(json.dumps([app.conf.broker_url, app.conf.broker_transport_options['master_name'], "
        "app.conf.redbeat_redis_url, app.conf.redbeat_redis_options['service_name'], "
        "s.CACHES['ratelimit']['OPTIONS']['pool_class'], app.conf.broker_transport]))"
    )
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True).stdout

    broker, master, redbeat_url, service, pool, transport = json.loads(out.strip().splitlines()[-1])
    assert broker == SentinelUrl.parse(URL).broker_url()
    assert master == service == "pointscene"
    assert redbeat_url == "redis-sentinel://10.0.0.1:26379/2"
    assert pool == "pointscene.core.sentinel.SentinelPool"
    assert transport == "pointscene.core.sentinel:SentinelTransport"
