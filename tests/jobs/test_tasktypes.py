"""The task types a worker runs, called directly: http.request against a real loopback server (and its refusal of
private targets), resource.input over files in the service's storage, and the rclone-style globs it uses.

Nothing here calls a non-loopback address: the refusals happen before any connection is made.
"""

import json
import shutil
import threading
import time

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from jobs import tasktypes
from jobs.ops.outbound import NOT_ALLOWED
from jobs.steps import RunCancelled, StepContext, StepFailed
from jobs.tasktypes.globs import selected
from pointscene.core.storage import resource_area


def step(task_type: str, args: dict, inputs: dict | None = None, cancelled: threading.Event | None = None):
    """A StepContext for one step of a made-up run, and the lines it logged."""
    lines: list[str] = []
    ctx = StepContext(
        run_id=1,
        job_id=1,
        instance_id=1,
        task_name="step",
        args=args,
        inputs=inputs or {},
        log=lines.append,
        cancelled=cancelled or threading.Event(),
    )
    return tasktypes.get(task_type).run, ctx, lines


def http(args: dict, **kwargs):
    run, ctx, lines = step("http.request", args, **kwargs)
    return run(ctx), lines


@pytest.fixture
def private_allowed(settings):
    settings.JOBS_HTTP_ALLOW_PRIVATE = True


@pytest.fixture
def private_refused(settings):
    settings.JOBS_HTTP_ALLOW_PRIVATE = False


# --------------------------------------------------------------------------- http.request: calls


def test_it_calls_a_url_and_hands_on_status_and_body(private_allowed, http_server):
    result, lines = http({"url": http_server.url("/ok")})

    assert result.outputs == {"status": 200, "body": "ok"}
    assert result.counters == {"httpStatus": 200, "bytes": 2}
    [received] = http_server.requests
    assert (received.method, received.path) == ("GET", "/ok")
    assert received.headers["User-Agent"] == "pointscene-scheduled-jobs"
    assert any("-> 200" in line for line in lines)


def test_it_sends_method_headers_and_json_body(private_allowed, http_server):
    http(
        {
            "url": http_server.url("/ok"),
            "method": "post",
            "headers": {"X-Hook": "yes"},
            "json": {"event": "done", "n": 2},
        }
    )

    [received] = http_server.requests
    assert received.method == "POST"
    assert received.headers["X-Hook"] == "yes"
    assert received.headers["Content-Type"] == "application/json"
    assert json.loads(received.body) == {"event": "done", "n": 2}


@pytest.mark.parametrize("code", [200, 201, 204, 299])
def test_it_accepts_any_2xx_by_default(private_allowed, http_server, code):
    result, _ = http({"url": http_server.url(f"/status/{code}")})

    assert result.outputs["status"] == code


@pytest.mark.parametrize("code", [404, 400, 500, 503, 302, 199])
def test_it_fails_on_anything_but_2xx_by_default(private_allowed, http_server, code):
    with pytest.raises(StepFailed, match=rf"answered {code}, expected 2xx"):
        http({"url": http_server.url(f"/status/{code}")})


@pytest.mark.parametrize(
    ("expect", "code", "ok"),
    [
        (204, 204, True),
        (204, 200, False),
        (404, 404, True),
        ([200, 404], 404, True),
        ([200, 404], 200, True),
        ([200, 404], 500, False),
        ([500], 500, True),
    ],
)
def test_it_checks_expect_status(private_allowed, http_server, expect, code, ok):
    args = {"url": http_server.url(f"/status/{code}"), "expectStatus": expect}
    if ok:
        assert http(args)[0].outputs["status"] == code
    else:
        wanted = sorted(expect) if isinstance(expect, list) else [expect]
        with pytest.raises(StepFailed, match=rf"answered {code}, expected {wanted}".replace("[", r"\[")):
            http(args)


def test_it_reports_how_much_of_the_answer_has_come_while_it_comes(private_allowed, http_server):
    run, ctx, _ = step("http.request", {"url": http_server.url("/stream/300000/4")})
    reports: list[dict] = []
    ctx.progress = reports.append

    result = run(ctx)

    assert result.counters["bytes"] == 300_000
    done = [r["bytesDone"] for r in reports]
    assert done == sorted(done)  # never goes back
    assert any(0 < d < 300_000 for d in done)  # seen part-way, not only at the end
    assert reports[-1]["bytesDone"] == reports[-1]["bytesTotal"] == 300_000
    assert reports[-1]["etaSeconds"] == 0
    assert all(r["updatedAt"] for r in reports)


def test_it_gives_up_after_timeout_seconds(private_allowed, http_server):
    started = time.monotonic()

    with pytest.raises(StepFailed, match=r"timed out after 1 s"):
        http({"url": http_server.url("/slow"), "timeoutSeconds": 1})

    assert time.monotonic() - started < 5
    assert http_server.paths() == ["/slow"]


def test_it_stops_waiting_at_once_when_the_run_is_cancelled(private_allowed, http_server):
    cancelled = threading.Event()
    threading.Timer(0.5, cancelled.set).start()
    started = time.monotonic()

    with pytest.raises(RunCancelled):
        http({"url": http_server.url("/slow")}, cancelled=cancelled)

    assert time.monotonic() - started < 3
    assert not http_server.slow_finished.is_set()  # the request was abandoned, not waited for


def test_it_follows_up_to_five_redirects(private_allowed, http_server):
    result, _ = http({"url": http_server.url("/chain/5")})

    assert result.outputs == {"status": 200, "body": "end of chain"}
    assert http_server.paths() == [f"/chain/{n}" for n in range(5, -1, -1)]


def test_it_fails_after_more_than_five_redirects(private_allowed, http_server):
    with pytest.raises(StepFailed, match=r"redirected more than 5 times"):
        http({"url": http_server.url("/chain/6")})

    assert "/chain/0" not in http_server.paths()


def test_it_follows_a_redirect_to_another_url(private_allowed, http_server):
    target = http_server.url("/status/201")

    result, _ = http({"url": http_server.url(f"/redirect?to={target}")})

    assert result.outputs["status"] == 201
    assert http_server.paths()[-1] == "/status/201"


# --------------------------------------------------------------------------- http.request: no way into the network


PRIVATE_TARGETS = [
    "http://127.0.0.1:{port}/ok",
    "http://localhost:{port}/ok",
    "http://127.1:{port}/ok",
    "http://0.0.0.0:{port}/ok",
    "http://[::1]:{port}/ok",
    "http://[::ffff:127.0.0.1]:{port}/ok",
    "http://10.0.0.1/",
    "http://192.168.1.1:{port}/",
    "http://172.16.0.1/",
    "http://169.254.169.254/latest/meta-data/",
    "https://127.0.0.1:{port}/ok",
]


@pytest.mark.parametrize("url", PRIVATE_TARGETS)
def test_it_refuses_private_loopback_and_link_local_targets_by_default(private_refused, http_server, url):
    url = url.format(port=http_server.port)
    started = time.monotonic()

    with pytest.raises(StepFailed, match=r"destination not allowed") as failure:
        http({"url": url, "timeoutSeconds": 2})

    assert time.monotonic() - started < 2  # refused before connecting, not after a timeout
    assert failure.value.retryable is False
    assert http_server.requests == []


def http_problems(args: dict) -> list[tuple[str, str]]:
    check = tasktypes.ArgsCheck()
    tasktypes.get("http.request").check_args(args, check)
    return check.errors


@pytest.mark.parametrize("url", PRIVATE_TARGETS)
def test_it_reports_a_target_every_run_would_refuse_when_the_workflow_is_checked(private_refused, url):
    problems = http_problems({"url": url.format(port=8080)})

    assert problems == [("args.url", NOT_ALLOWED)]
    assert "JOBS_HTTP_ALLOW_PRIVATE=1" in NOT_ALLOWED


@pytest.mark.parametrize(
    "url", ["https://example.com/hook", "http://203.0.113.7.nip.io/", "https://[2001:4860:4860::8888]/"]
)
def test_it_leaves_names_and_public_addresses_to_the_connect_time_check(private_refused, url):
    assert http_problems({"url": url}) == []


def test_it_reports_nothing_for_private_targets_when_the_switch_is_on(settings):
    settings.JOBS_HTTP_ALLOW_PRIVATE = True

    assert http_problems({"url": "http://127.0.0.1:8080/ok"}) == []


def test_it_reports_nothing_for_an_operator_exception(private_refused, settings):
    settings.JOBS_EGRESS_ALLOW = ["10.0.0.5:9000"]

    assert http_problems({"url": "http://10.0.0.5:9000/ok"}) == []
    assert http_problems({"url": "http://10.0.0.5:9001/ok"}) == [("args.url", NOT_ALLOWED)]


def test_it_refuses_a_redirect_from_an_allowed_host_to_loopback(private_refused, http_server, canary, settings):
    """The first hop is let through by name (an operator's exception); it redirects to the loopback canary, which must
    be refused before anything is sent there."""
    settings.JOBS_EGRESS_ALLOW = [f"127.0.0.1:{http_server.port}"]
    target = f"http://127.0.0.1:{canary.port}/"

    with pytest.raises(StepFailed, match=r"destination not allowed"):
        http({"url": http_server.url(f"/redirect?to={target}")})

    assert http_server.paths() == [f"/redirect?to={target}"]


def test_it_refuses_a_name_that_resolves_to_loopback(private_refused, http_server, fake_dns):
    fake_dns.set("rebind.example.com", "93.184.215.14", "127.0.0.1")
    fake_dns.answers["rebind.example.com"].pop(0)  # the public answer went to an earlier check

    with pytest.raises(StepFailed, match=r"destination not allowed"):
        http({"url": f"http://rebind.example.com:{http_server.port}/ok"})

    assert http_server.requests == []


def test_it_calls_loopback_only_when_the_operator_allows_private_targets(settings, http_server):
    settings.JOBS_HTTP_ALLOW_PRIVATE = False
    with pytest.raises(StepFailed):
        http({"url": http_server.url("/ok")})
    settings.JOBS_HTTP_ALLOW_PRIVATE = True

    result, _ = http({"url": http_server.url("/ok")})

    assert result.outputs["status"] == 200
    assert http_server.paths() == ["/ok"]


# --------------------------------------------------------------------------- resource.input

TREE = {
    "top.txt": b"t",
    "readme.md": b"read me",
    "a.las": b"aaaa",
    "notes/top.txt": b"nt",
    "scans/b.las": b"bb",
    "scans/deep/d.las": b"ddddd",
    "scans/deep/d.txt": b"x",
    "sync/x.bin": b"xx",
    "sync/sub/y.bin": b"yyy",
    "archive/sync/old.bin": b"o",
    ".log/job-1/run-1.log": b"log line\n",
    ".hidden": b"h",
}


@pytest.fixture
def resource_files(resource):
    """TREE written into the resource's storage area; the area is removed afterwards."""
    area = resource_area(resource.pk)
    shutil.rmtree(default_storage.path(area), ignore_errors=True)  # SQLite reuses ids across tests
    for path, content in TREE.items():
        default_storage.save(area + path, ContentFile(content))
    yield resource
    shutil.rmtree(default_storage.path(area), ignore_errors=True)


def list_files(args: dict):
    run, ctx, lines = step("resource.input", args)
    return run(ctx), lines


@pytest.mark.parametrize(
    ("include", "exclude", "expected"),
    [
        (None, None, sorted(TREE)),
        (None, [".log/**"], sorted(p for p in TREE if not p.startswith(".log/"))),
        (["*.las"], None, ["a.las", "scans/b.las", "scans/deep/d.las"]),
        (["/*.las"], None, ["a.las"]),
        (["scans/*.las"], None, ["scans/b.las"]),
        (["/top.txt"], None, ["top.txt"]),
        (["top.txt"], None, ["notes/top.txt", "top.txt"]),
        (["sync/**"], None, ["archive/sync/old.bin", "sync/sub/y.bin", "sync/x.bin"]),
        (["/sync/**"], None, ["sync/sub/y.bin", "sync/x.bin"]),
        (["*.las"], ["scans/deep/**"], ["a.las", "scans/b.las"]),
        (["*.las", "*.md"], ["/a.las"], ["readme.md", "scans/b.las", "scans/deep/d.las"]),
        (["**"], [".log/**", ".*"], sorted(p for p in TREE if not p.startswith("."))),
        (["*.nothing"], None, []),
        ("*.bin", None, ["archive/sync/old.bin", "sync/sub/y.bin", "sync/x.bin"]),
    ],
)
def test_it_lists_the_resources_files_through_include_and_exclude(resource_files, include, exclude, expected):
    args = {"id": str(resource_files.pk)}
    if include is not None:
        args["include"] = include
    if exclude is not None:
        args["exclude"] = exclude

    result, _ = list_files(args)

    assert sorted(f["path"] for f in result.outputs["files"]) == expected
    assert {f["path"]: f["size"] for f in result.outputs["files"]} == {p: len(TREE[p]) for p in expected}
    assert result.counters == {"files": len(expected), "bytes": sum(len(TREE[p]) for p in expected)}


def test_it_reports_the_files_listed_so_far_and_then_the_totals(resource_files, monkeypatch):
    monkeypatch.setattr("jobs.tasktypes.resource_input.PROGRESS_EVERY", 5)
    run, ctx, _ = step("resource.input", {"id": str(resource_files.pk)})
    reports: list[dict] = []
    ctx.progress = reports.append

    run(ctx)

    assert [r["filesDone"] for r in reports] == [5, 10, len(TREE)]
    assert [r["filesTotal"] for r in reports] == [0, 0, len(TREE)]  # not known until the listing ends
    assert reports[-1]["bytesDone"] == reports[-1]["bytesTotal"] == sum(map(len, TREE.values()))


def test_it_hands_on_resource_id_and_patterns(resource_files):
    result, lines = list_files({"resourceId": resource_files.pk, "include": "*.las", "exclude": ["scans/deep/**"]})

    assert result.outputs["resourceId"] == resource_files.pk
    assert result.outputs["include"] == ["*.las"]
    assert result.outputs["exclude"] == ["scans/deep/**"]
    assert any("2 files" in line for line in lines)


def test_it_lists_only_the_resources_own_area(resource_files, other_resource):
    other = resource_area(other_resource.pk)
    default_storage.save(other + "theirs.las", ContentFile(b"z"))
    try:
        mine, _ = list_files({"id": resource_files.pk})
        theirs, _ = list_files({"id": other_resource.pk})
    finally:
        shutil.rmtree(default_storage.path(other), ignore_errors=True)

    assert "theirs.las" not in [f["path"] for f in mine.outputs["files"]]
    assert [f["path"] for f in theirs.outputs["files"]] == ["theirs.las"]


def test_it_lists_nothing_for_a_resource_without_files(resource):
    shutil.rmtree(default_storage.path(resource_area(resource.pk)), ignore_errors=True)

    result, _ = list_files({"id": str(resource.pk)})

    assert result.outputs["files"] == []
    assert result.counters == {"files": 0, "bytes": 0}


# --------------------------------------------------------------------------- globs (rclone semantics)


@pytest.mark.parametrize(
    ("path", "include", "exclude", "chosen"),
    [
        ("a.las", ["*.las"], None, True),
        ("x/y/a.las", ["*.las"], None, True),
        ("x/y/a.laz", ["*.las"], None, False),
        ("top.txt", ["/top.txt"], None, True),
        ("sub/top.txt", ["/top.txt"], None, False),
        ("sub/top.txt", ["top.txt"], None, True),
        ("sync/a", ["sync/**"], None, True),
        ("sync/a/b/c", ["sync/**"], None, True),
        ("deep/sync/a", ["sync/**"], None, True),
        ("deep/sync/a", ["/sync/**"], None, False),
        ("syncx/a", ["sync/**"], None, False),
        (".log/job-1/run-2.log", None, [".log/**"], False),
        ("instances/.log/x", None, [".log/**"], False),
        ("logs/x.log", None, [".log/**"], True),
        ("a/b.txt", ["a/*"], None, True),
        ("a/b/c.txt", ["a/*"], None, False),
        ("a.las", ["*.las"], ["a.*"], False),
        ("anything", None, None, True),
        ("anything", [], [], True),
        (".hidden", ["*"], None, True),
        ("img.JPG", ["*.jpg"], None, False),
        ("a.jpg", ["*.{jpg,png}"], None, True),
    ],
)
def test_it_matches_globs_like_rclone(path, include, exclude, chosen):
    assert selected(path, include, exclude) is chosen


def test_it_leaves_out_a_file_deleted_while_it_lists(resource_files, monkeypatch):
    gone = resource_area(resource_files.pk) + "scans/b.las"
    size = default_storage.size

    def size_after_a_concurrent_delete(name):
        if name == gone:
            default_storage.delete(gone)  # another step (a sync into the same area) removes it meanwhile
        return size(name)

    monkeypatch.setattr(default_storage, "size", size_after_a_concurrent_delete)
    result, _ = list_files({"id": str(resource_files.pk)})

    assert "scans/b.las" not in [f["path"] for f in result.outputs["files"]]
    assert len(result.outputs["files"]) == len(TREE) - 1
