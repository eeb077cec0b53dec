"""The admin's static files (pointscene/static.py): served from the apps in a checkout where collectstatic never ran
(`make run`), without WhiteNoise's "No directory at" warning at every start, and from STATIC_ROOT once collected."""

import re
import warnings

import pytest
from django.test import Client

ADMIN_CSS = "/static/admin/css/base.css"


def test_it_serves_the_admins_files_from_the_apps_without_a_warning_when_nothing_was_collected(settings, tmp_path):
    settings.STATIC_ROOT = str(tmp_path / "never-collected")

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        response = Client().get(ADMIN_CSS)  # a new client loads the middleware, as a starting server does

    assert response.status_code == 200
    assert b"".join(response.streaming_content).startswith(b"/*")
    assert [str(w.message) for w in caught] == []


def test_it_serves_collected_files_from_static_root(settings, tmp_path):
    (tmp_path / "admin").mkdir()
    (tmp_path / "admin" / "collected-only.txt").write_text("collected\n")
    settings.STATIC_ROOT = str(tmp_path)

    response = Client().get("/static/admin/collected-only.txt")

    assert response.status_code == 200
    assert b"".join(response.streaming_content) == b"collected\n"


def test_it_still_warns_when_static_root_is_missing_and_nothing_else_would_serve_the_files(settings, tmp_path):
    settings.STATIC_ROOT = str(tmp_path / "never-collected")
    settings.WHITENOISE_USE_FINDERS = False

    with pytest.warns(UserWarning, match="No directory at"):
        Client().get(ADMIN_CSS)


@pytest.mark.django_db(transaction=True)
def test_make_runs_web_process_starts_without_a_python_warning(web_server):
    server = web_server("runserver", LOG_FORMAT="text")

    response = server.get(ADMIN_CSS)

    assert response.status_code == 200
    output = server.wait_for_output(lambda text: ADMIN_CSS in text)
    assert "Starting development server" in output
    # A Python warning prints as "<file>:<line>: <Category>Warning: <message>".
    assert not re.search(r":\d+: \w*Warning: ", output), output
