"""Production settings, read from the environment as a deployment sets it (.env.example, compose.yaml): every test
starts Django in a subprocess with a clean environment, so nothing of the test session's leaks into what is checked.
A real gunicorn serves the HTTP tests, behind a pretend TLS proxy (the X-Forwarded-Proto header it would set)."""

import json
import os
import re
import secrets
import subprocess
import sys
import time
from http.cookies import SimpleCookie
from pathlib import Path

import pytest
import requests
from cryptography.fernet import Fernet

from tests.environment import free_port

ROOT = Path(__file__).resolve().parents[2]
HOST = "jobs.example.com"
HTTPS = {"Host": HOST, "X-Forwarded-Proto": "https"}
ADMIN_PASSWORD = secrets.token_urlsafe(24)


def production_env(tmp: Path, **overrides: str) -> dict[str, str]:
    """The documented production variables (.env.example and compose.yaml), and nothing else from this session."""
    env = {
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}/usr/bin{os.pathsep}/bin",
        "HOME": str(tmp),
        "DEBUG": "0",
        "SECRET_KEY": secrets.token_urlsafe(48),  # 64 characters
        "HTTPS": "1",
        "TRUST_X_FORWARDED_PROTO": "1",
        "ALLOWED_HOSTS": HOST,
        "CSRF_TRUSTED_ORIGINS": f"https://{HOST}",
        "CONFIG_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "CONFIGS_DEV_KEY": "0",
        "METRICS_TOKEN": secrets.token_urlsafe(32),
        "DATABASE_URL": f"sqlite:///{tmp / 'db.sqlite3'}",
        "REDIS_URL": os.environ["REDIS_URL"],  # the session's private Redis (tests/environment.py)
        "JOBS_REDIS_PREFIX": "pointscene-test-production:",
        "VAR_DIR": str(tmp / "var"),
        "LOG_LEVEL": "WARNING",
    }
    env.update(overrides)
    return {name: value for name, value in env.items() if value is not None}


def django(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def check_ids(output: str) -> list[str]:
    return re.findall(r"^\?: \(([\w.]+)\)", output, flags=re.MULTILINE)


SECURITY_SETTINGS = [
    "SECURE_SSL_REDIRECT",
    "SECURE_HSTS_SECONDS",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS",
    "SECURE_HSTS_PRELOAD",
    "SESSION_COOKIE_SECURE",
    "CSRF_COOKIE_SECURE",
    "SECURE_PROXY_SSL_HEADER",
    "SESSION_COOKIE_HTTPONLY",
    "X_FRAME_OPTIONS",
    "SECURE_CONTENT_TYPE_NOSNIFF",
]


def security_settings(env: dict[str, str]) -> dict:
    names = ", ".join(repr(name) for name in SECURITY_SETTINGS)
    code = "from django.conf import settings as s; import json; "
    code += f"print(json.dumps({{n: getattr(s, n) for n in [{names}]}}))"
    done = django(env, "shell", "--no-imports", "-c", code)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


# --- manage.py check --deploy


def test_it_passes_the_deploy_check_with_only_the_password_grant_warning(tmp_path):
    """The contract keeps the password grant (examples/token.http), which RFC 9700 discourages: that one warning is
    the contract's, so it stays visible rather than silenced. Anything else is a setting to fix."""
    done = django(production_env(tmp_path), "check", "--deploy")

    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert check_ids(output) == ["oauth2_provider.W002"], output
    assert "System check identified 1 issue (0 silenced)." in output


def test_it_names_every_https_warning_when_https_is_off(tmp_path):
    """HTTPS is the switch: without it the same deployment fails the deploy check on each part it turns on."""
    done = django(production_env(tmp_path, HTTPS="0"), "check", "--deploy")

    ids = set(check_ids(done.stdout + done.stderr))
    assert {"security.W004", "security.W008", "security.W012", "security.W016"} <= ids


# --- what the variables turn on


def test_it_keeps_plain_http_working_without_https(tmp_path):
    """`make run` and DEBUG=1 sessions: no HTTPS variable, plain http, no redirect, no proxy header trusted."""
    env = production_env(tmp_path, DEBUG="1", HTTPS=None, TRUST_X_FORWARDED_PROTO=None)

    assert security_settings(env) == {
        "SECURE_SSL_REDIRECT": False,
        "SECURE_HSTS_SECONDS": 0,
        "SECURE_HSTS_INCLUDE_SUBDOMAINS": False,
        "SECURE_HSTS_PRELOAD": False,
        "SESSION_COOKIE_SECURE": False,
        "CSRF_COOKIE_SECURE": False,
        "SECURE_PROXY_SSL_HEADER": None,
        "SESSION_COOKIE_HTTPONLY": True,
        "X_FRAME_OPTIONS": "DENY",
        "SECURE_CONTENT_TYPE_NOSNIFF": True,
    }


def test_it_lets_each_part_of_the_https_set_be_overridden(tmp_path):
    env = production_env(
        tmp_path,
        SECURE_HSTS_SECONDS="300",
        SECURE_HSTS_PRELOAD="0",
        SECURE_SSL_REDIRECT="0",
        TRUST_X_FORWARDED_PROTO="0",
    )

    got = security_settings(env)

    assert (got["SECURE_HSTS_SECONDS"], got["SECURE_HSTS_PRELOAD"], got["SECURE_SSL_REDIRECT"]) == (300, False, False)
    assert got["SECURE_HSTS_INCLUDE_SUBDOMAINS"] is True
    assert (got["SESSION_COOKIE_SECURE"], got["CSRF_COOKIE_SECURE"]) == (True, True)
    assert got["SECURE_PROXY_SSL_HEADER"] is None


@pytest.mark.parametrize("value", ["loopback", "10.0.0.0/33", "127.0.0.1/8,nope"])
def test_it_refuses_to_start_with_a_bad_metrics_network(tmp_path, value):
    done = django(production_env(tmp_path, METRICS_ALLOWED_NETWORKS=value), "check")

    assert done.returncode != 0
    assert "METRICS_ALLOWED_NETWORKS must list IP networks" in done.stderr


# --- a real server with the production variables


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("production")
    env = production_env(tmp)
    migrated = django(env, "migrate", "--no-input", "-v", "0")
    assert migrated.returncode == 0, migrated.stderr
    admin_env = env | {"DJANGO_SUPERUSER_USERNAME": "operator", "DJANGO_SUPERUSER_PASSWORD": ADMIN_PASSWORD}
    created = django(admin_env, "createsuperuser", "--no-input", "--email", "operator@example.com")
    assert created.returncode == 0, created.stderr
    port = free_port()
    log = (tmp / "gunicorn.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "pointscene.wsgi:application", "--bind", f"127.0.0.1:{port}"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                requests.get(f"{base}/healthz", headers={"Host": HOST}, timeout=10)
                break
            except (requests.ConnectionError, requests.Timeout):  # a loaded machine's first request can be slow
                assert process.poll() is None, (tmp / "gunicorn.log").read_text()
                assert time.monotonic() < deadline, "gunicorn did not start"
                time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=20)
        log.close()


def get(url: str, **headers: str) -> requests.Response:
    return requests.get(url, headers={"Host": HOST, **headers}, allow_redirects=False, timeout=10)


def set_cookies(response: requests.Response) -> dict[str, str]:
    """Each Set-Cookie header, by cookie name (requests' jar hides attributes, and keeps Secure ones off http)."""
    return {SimpleCookie(line).popitem()[0]: line for line in response.raw.headers.getlist("Set-Cookie")}


def test_it_answers_healthz_over_plain_http_for_the_healthcheck(server):
    response = get(f"{server}/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_it_answers_probes_and_scrapers_over_plain_http_but_only_with_what_anyone_may_read(server):
    """A load balancer's /readyz and Prometheus's /metrics reach the port directly: no redirect, and no more."""
    readyz = get(f"{server}/readyz")
    metrics = get(f"{server}/metrics")

    assert readyz.status_code in (200, 503)
    assert set(readyz.json()) == {"status"}
    assert metrics.status_code == 401


def test_it_redirects_everything_else_from_http_to_https(server):
    for path in ["/graphql", "/admin/login/", "/oauth2/token", "/logs/anything"]:
        response = get(f"{server}{path}")

        assert response.status_code == 301, path
        assert response.headers["Location"] == f"https://{HOST}{path}"
        assert "Strict-Transport-Security" not in response.headers  # HSTS over http means nothing


def test_it_sends_hsts_and_the_browser_headers_over_https(server):
    response = get(f"{server}/healthz", **HTTPS)

    assert response.status_code == 200
    assert response.headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] == "same-origin"
    assert response.headers["Cross-Origin-Opener-Policy"] == "same-origin"


def test_it_trusts_the_proxy_header_only_to_say_https(server):
    """X-Forwarded-Proto: http (or anything else) is plain http: redirected."""
    assert get(f"{server}/graphql", **{"Host": HOST, "X-Forwarded-Proto": "http"}).status_code == 301


def test_it_sets_the_admin_cookies_secure_and_the_session_cookie_http_only(server):
    login = get(f"{server}/admin/login/", **HTTPS)
    csrf_cookie = set_cookies(login)["csrftoken"]
    csrf_token = SimpleCookie(csrf_cookie)["csrftoken"].value
    form_token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login.text)[1]

    response = requests.post(
        f"{server}/admin/login/?next=/admin/",
        data={"csrfmiddlewaretoken": form_token, "username": "operator", "password": ADMIN_PASSWORD},
        headers={
            **HTTPS,
            "Cookie": f"csrftoken={csrf_token}",
            "Origin": f"https://{HOST}",
            "Referer": f"https://{HOST}/admin/login/",
        },
        allow_redirects=False,
        timeout=10,
    )

    assert response.status_code == 302, response.text[:500]
    session = SimpleCookie(set_cookies(response)["sessionid"])["sessionid"]
    assert session["secure"] is True
    assert session["httponly"] is True
    assert SimpleCookie(csrf_cookie)["csrftoken"]["secure"] is True


def test_it_refuses_metrics_and_readyz_details_through_a_same_host_proxy(server):
    """A real loopback connection carrying a proxy's headers, as nginx on the same host would forward a stranger."""
    proxied = {**HTTPS, "X-Forwarded-For": "203.0.113.9", "X-Real-IP": "203.0.113.9"}

    assert get(f"{server}/metrics", **proxied).status_code == 401
    readyz = get(f"{server}/readyz", **proxied)
    assert set(readyz.json()) == {"status"}
