"""A signed log link (/logs/<token>) opens a run's log without a bearer token, so no log line may carry its token:
not the web server's access line, not Django's "Not Found: <path>", in text or in JSON.

Each server is a real process started as deployments start it (tests/fixtures/servers.py): runserver as `make run`
does (also with DEBUG=1, where Django's own console handler would print too), and gunicorn with the image's CMD and
its access log. The link comes from the API; what the server printed is read back from its output.
"""

from urllib.parse import quote, urlsplit

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from jobs.models import JobHistory, RunStatus
from pointscene.core.storage import run_log_path
from tests.fixtures.leaks import register_secret

pytestmark = pytest.mark.django_db(transaction=True)

LOG_TEXT = b"2026-01-01T00:00:00.000Z [ping] succeeded\n"
GET_RUN = "query($id: ID!) { getScheduledJobHistory(jobHistoryId: $id) { signedLogUrl } }"


@pytest.fixture
def link_path(api, acme_token, job) -> str:
    """The path of a signed link to a finished Acme run's stored log, as the API hands it out."""
    run = JobHistory.objects.create(job=job, instance_id=job.instance_id, status=RunStatus.SUCCEEDED)
    path = default_storage.save(run_log_path(job.instance_id, job.pk, run.pk), ContentFile(LOG_TEXT))
    JobHistory.objects.filter(pk=run.pk).update(log_path=path)
    status, body = api.gql(GET_RUN, {"id": str(run.pk)}, acme_token)
    assert "errors" not in body, body
    link = urlsplit(body["data"]["getScheduledJobHistory"]["signedLogUrl"]).path
    assert link.startswith("/logs/")
    yield link
    default_storage.delete(path)


def token_of(link: str) -> str:
    return link.removeprefix("/logs/")


@pytest.mark.parametrize(
    ("kind", "env"),
    [
        pytest.param("runserver", {"LOG_FORMAT": "text"}, id="make-run"),
        pytest.param("runserver", {"LOG_FORMAT": "text", "DEBUG": "1"}, id="make-run-debug"),
        pytest.param("gunicorn", {"LOG_FORMAT": "json"}, id="image"),
    ],
)
def test_no_log_line_of_the_web_server_carries_a_signed_links_token(web_server, link_path, kind, env):
    token = register_secret(token_of(link_path))
    # The same link with ":" sent as %3A (Django decodes it: it opens the log too), and a refused one (404, which
    # Django logs as "Not Found: <path>").
    encoded = "/logs/" + quote(token, safe="")
    assert encoded != link_path
    refused_token = register_secret(token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB"))
    server = web_server(kind, **env)

    opened = server.get(link_path)
    opened_encoded = server.get(encoded)
    refused = server.get("/logs/" + refused_token)

    assert (opened.status_code, opened.content) == (200, LOG_TEXT)
    assert (opened_encoded.status_code, opened_encoded.content) == (200, LOG_TEXT)
    assert refused.status_code == 404
    # Logged: three access lines and the 404's warning, with the token masked. A server writes its access line
    # after the answer, so the last one may still be on its way.
    server.wait_for_output(lambda text: text.count("/logs/***") >= 3 + 1)
    server.stop()
    output = server.output()
    for secret in (token, quote(token, safe=""), refused_token):
        assert secret not in output, f"{kind}: a token is in the server's output"
