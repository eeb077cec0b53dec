"""The fake Autodesk Platform Services (tests/fakes/aps.py), exercised over real HTTP with `requests`.

These pin down that the fake answers the calls an ACC sync client makes (listing with paging, signed-URL download
with Range, the storage -> signeds3upload -> items/versions upload flow, folder create/hide, single-use refresh
tokens, expired tokens, 429s) in APS's shapes, so client tests built on it test the client. No database, no internet.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime
from urllib.parse import quote

import pytest
import requests

from tests.fakes.aps import DELETED_VERSION, FILE_VERSION, OBJECT_URN_PREFIX, FakeAps

CLIENT = ("fake-client-id", "fake-client-secret")
JSONAPI_TYPE = {"Content-Type": "application/vnd.api+json"}


@pytest.fixture
def aps() -> Iterator[FakeAps]:
    with FakeAps(page_limit_cap=200, min_part_size=1024) as fake:
        yield fake


@pytest.fixture
def http(aps: FakeAps) -> requests.Session:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {aps.issue_token()['access_token']}"
    return session


def dm(aps: FakeAps, path: str) -> str:
    return f"{aps.base_url}/data/v1/projects/{aps.project_id}{path}"


def q(urn: str) -> str:
    return quote(urn, safe="")


def top_folder_id(aps: FakeAps, http: requests.Session, name: str) -> str:
    response = http.get(f"{aps.base_url}/project/v1/hubs/{aps.hub_id}/projects/{aps.project_id}/topFolders")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["jsonapi"] == {"version": "1.0"}
    return next(f["id"] for f in body["data"] if f["attributes"]["name"] == name)


def list_all(http: requests.Session, url: str) -> list[dict]:
    """Follow links.next like a client would; return every page's JSON."""
    pages = []
    while url:
        response = http.get(url)
        assert response.status_code == 200, response.text
        pages.append(response.json())
        url = pages[-1]["links"].get("next", {}).get("href")
    return pages


def test_it_lists_a_folder_in_pages_with_tip_versions_included(aps: FakeAps, http: requests.Session) -> None:
    modified = datetime(2024, 3, 4, 5, 6, 7, 891000, tzinfo=UTC)
    for index in range(450):
        aps.put_file(f"Project Files/Big/f{index:03d}.txt", f"file {index}".encode(), modified=modified)
    big = aps.folder_id("Project Files/Big")

    pages = list_all(http, dm(aps, f"/folders/{q(big)}/contents?page%5Blimit%5D=200"))

    assert [len(page["data"]) for page in pages] == [200, 200, 50]
    assert "next" not in pages[-1]["links"]
    assert pages[1]["links"]["next"]["href"].startswith(aps.base_url)  # absolute, like APS
    items = [entry for page in pages for entry in page["data"]]
    assert len({item["id"] for item in items}) == 450
    first_page_tips = {version["id"]: version for version in pages[0]["included"]}
    item = pages[0]["data"][0]
    tip = first_page_tips[item["relationships"]["tip"]["data"]["id"]]
    assert item["type"] == "items"
    assert item["attributes"]["displayName"] == "f000.txt"
    assert tip["attributes"]["name"] == "f000.txt"
    assert tip["attributes"]["storageSize"] == len(b"file 0")
    assert tip["attributes"]["lastModifiedTime"] == "2024-03-04T05:06:07.891Z"
    assert tip["attributes"]["extension"]["type"] == FILE_VERSION
    assert tip["relationships"]["storage"]["data"]["id"].startswith(OBJECT_URN_PREFIX)
    assert aps.tip_calls == 0


def test_it_caps_the_page_limit_and_rejects_out_of_range_limits() -> None:
    with FakeAps(page_limit_cap=7) as aps:
        for index in range(10):
            aps.put_file(f"Plans/p{index}.pdf", b"x")
        http = requests.Session()
        http.headers["Authorization"] = f"Bearer {aps.issue_token()['access_token']}"
        plans = top_folder_id(aps, http, "Plans")

        pages = list_all(http, dm(aps, f"/folders/{q(plans)}/contents?page%5Blimit%5D=200"))
        too_big = http.get(dm(aps, f"/folders/{q(plans)}/contents"), params={"page[limit]": "201"})

    assert [len(page["data"]) for page in pages] == [7, 3]
    assert too_big.status_code == 400
    assert too_big.json()["errors"][0]["status"] == "400"


def test_it_downloads_through_a_signed_url_honouring_range(aps: FakeAps, http: requests.Session) -> None:
    content = bytes(range(256)) * 4
    aps.put_file("Project Files/Drawings/a.pdf", content)
    drawings = aps.folder_id("Project Files/Drawings")
    listing = http.get(dm(aps, f"/folders/{q(drawings)}/contents")).json()
    storage = listing["included"][0]["relationships"]["storage"]["data"]["id"]
    bucket, _, key = storage.removeprefix("urn:adsk.objects:os.object:").partition("/")

    signed = http.get(f"{aps.base_url}/oss/v2/buckets/{bucket}/objects/{quote(key)}/signeds3download")
    assert signed.status_code == 200, signed.text
    body = signed.json()
    assert body["status"] == "complete"
    assert body["size"] == len(content)
    assert body["sha1"] == hashlib.sha1(content).hexdigest()
    url = body["url"]
    assert url.startswith(f"{aps.base_url}/s3/")

    # The signed URL is for S3: no Authorization header, just the URL.
    whole = requests.get(url)
    part = requests.get(url, headers={"Range": "bytes=10-19"})
    tail = requests.get(url, headers={"Range": "bytes=-5"})
    beyond = requests.get(url, headers={"Range": f"bytes={len(content)}-"})

    assert whole.status_code == 200
    assert whole.content == content
    assert part.status_code == 206
    assert part.content == content[10:20]
    assert part.headers["Content-Range"] == f"bytes 10-19/{len(content)}"
    assert tail.status_code == 206
    assert tail.content == content[-5:]
    assert beyond.status_code == 416
    assert requests.get(url.replace("X-Amz-Signature=", "X-Amz-Signature=0")).status_code == 403
    assert aps.signed_url_auth_headers == 0


def test_it_runs_the_full_upload_flow_then_versions_and_deletes(aps: FakeAps, http: requests.Session) -> None:
    folder = top_folder_id(aps, http, "Project Files")

    def upload(name: str, parts: list[bytes]) -> str:
        storage = http.post(
            dm(aps, "/storage"),
            headers=JSONAPI_TYPE,
            json={
                "jsonapi": {"version": "1.0"},
                "data": {
                    "type": "objects",
                    "attributes": {"name": name},
                    "relationships": {"target": {"data": {"type": "folders", "id": folder}}},
                },
            },
        )
        assert storage.status_code == 201, storage.text
        object_id = storage.json()["data"]["id"]
        assert object_id.startswith(OBJECT_URN_PREFIX)
        key = object_id.removeprefix(OBJECT_URN_PREFIX)
        oss = f"{aps.base_url}/oss/v2/buckets/wip.dm.prod/objects/{quote(key)}/signeds3upload"
        signed = http.get(oss, params={"parts": len(parts), "firstPart": 1})
        assert signed.status_code == 200, signed.text
        assert len(signed.json()["urls"]) == len(parts)
        etags = []
        for url, chunk in zip(signed.json()["urls"], parts, strict=True):
            put = requests.put(url, data=chunk)
            assert put.status_code == 200, put.text
            etags.append(put.headers["ETag"])
        done = http.post(oss, json={"uploadKey": signed.json()["uploadKey"], "eTags": etags})
        assert done.status_code == 200, done.text
        assert done.json()["objectId"] == object_id
        assert done.json()["size"] == sum(len(chunk) for chunk in parts)
        return object_id

    first = [b"a" * 1024, b"b" * 1024, b"c" * 100]
    object_id = upload("model.ifc", first)
    created = http.post(
        dm(aps, "/items"),
        headers=JSONAPI_TYPE,
        json={
            "jsonapi": {"version": "1.0"},
            "data": {
                "type": "items",
                "attributes": {
                    "displayName": "model.ifc",
                    "extension": {"type": "items:autodesk.bim360:File", "version": "1.0"},
                },
                "relationships": {
                    "tip": {"data": {"type": "versions", "id": "1"}},
                    "parent": {"data": {"type": "folders", "id": folder}},
                },
            },
            "included": [
                {
                    "type": "versions",
                    "id": "1",
                    "attributes": {
                        "name": "model.ifc",
                        "extension": {"type": FILE_VERSION, "version": "1.0"},
                    },
                    "relationships": {"storage": {"data": {"type": "objects", "id": object_id}}},
                }
            ],
        },
    )
    assert created.status_code == 201, created.text
    item_id = created.json()["data"]["id"]
    assert created.json()["included"][0]["attributes"]["versionNumber"] == 1
    assert aps.read_file("Project Files/model.ifc") == b"".join(first)

    duplicate = http.post(dm(aps, "/items"), headers=JSONAPI_TYPE, data=created.request.body)
    assert duplicate.status_code == 409
    error = duplicate.json()["errors"][0]
    assert error["status"] == "409"
    assert {"id", "code", "title", "detail"} <= set(error)

    def new_version(extension: str, storage: str | None) -> requests.Response:
        relationships: dict = {"item": {"data": {"type": "items", "id": item_id}}}
        if storage:
            relationships["storage"] = {"data": {"type": "objects", "id": storage}}
        return http.post(
            dm(aps, "/versions"),
            headers=JSONAPI_TYPE,
            json={
                "jsonapi": {"version": "1.0"},
                "data": {
                    "type": "versions",
                    "attributes": {"name": "model.ifc", "extension": {"type": extension, "version": "1.0"}},
                    "relationships": relationships,
                },
            },
        )

    second = new_version(FILE_VERSION, upload("model.ifc", [b"v2"]))
    assert second.status_code == 201, second.text
    assert second.json()["data"]["attributes"]["versionNumber"] == 2
    assert aps.read_file("Project Files/model.ifc") == b"v2"

    deleted = new_version(DELETED_VERSION, None)
    assert deleted.status_code == 201, deleted.text
    assert aps.versions("Project Files/model.ifc") == [FILE_VERSION, FILE_VERSION, DELETED_VERSION]
    assert aps.read_file("Project Files/model.ifc") is None
    assert "Project Files/model.ifc" not in aps.list_paths()
    contents = dm(aps, f"/folders/{q(folder)}/contents")
    assert http.get(contents).json()["data"] == []
    hidden = http.get(contents, params={"includeHidden": "true"}).json()
    assert hidden["data"][0]["attributes"]["hidden"] is True
    assert hidden["included"][0]["attributes"]["extension"]["type"] == DELETED_VERSION
    assert "storage" not in hidden["included"][0]["relationships"]


def test_it_refuses_a_small_non_final_part_like_s3(aps: FakeAps, http: requests.Session) -> None:
    aps.put_file("Project Files/seed.txt", b"seed")
    folder = top_folder_id(aps, http, "Project Files")
    storage = http.post(
        dm(aps, "/storage"),
        headers=JSONAPI_TYPE,
        json={
            "jsonapi": {"version": "1.0"},
            "data": {
                "type": "objects",
                "attributes": {"name": "x.bin"},
                "relationships": {"target": {"data": {"type": "folders", "id": folder}}},
            },
        },
    ).json()["data"]["id"]
    oss = f"{aps.base_url}/oss/v2/buckets/wip.dm.prod/objects/{storage.rpartition('/')[2]}/signeds3upload"
    signed = http.get(oss, params={"parts": 2}).json()
    for url, chunk in zip(signed["urls"], [b"1" * 10, b"2" * 10], strict=True):
        assert requests.put(url, data=chunk).status_code == 200

    done = http.post(oss, json={"uploadKey": signed["uploadKey"]})

    assert done.status_code == 400
    assert "EntityTooSmall" in done.json()["reason"]
    assert [part["status"] for part in done.json()["parts"]] == ["TooSmall", "Ok"]


def test_it_creates_and_hides_folders(aps: FakeAps, http: requests.Session) -> None:
    aps.put_file("Project Files/Old/inside.txt", b"inside")
    project_files = top_folder_id(aps, http, "Project Files")

    def create(name: str) -> requests.Response:
        return http.post(
            dm(aps, "/folders"),
            headers=JSONAPI_TYPE,
            json={
                "jsonapi": {"version": "1.0"},
                "data": {
                    "type": "folders",
                    "attributes": {
                        "name": name,
                        "extension": {"type": "folders:autodesk.bim360:Folder", "version": "1.0"},
                    },
                    "relationships": {"parent": {"data": {"type": "folders", "id": project_files}}},
                },
            },
        )

    created = create("New")
    assert created.status_code == 201, created.text
    assert created.json()["data"]["attributes"]["hidden"] is False
    assert create("New").status_code == 409

    old = aps.folder_id("Project Files/Old")
    patched = http.patch(
        dm(aps, f"/folders/{q(old)}"),
        headers=JSONAPI_TYPE,
        json={"jsonapi": {"version": "1.0"}, "data": {"type": "folders", "id": old, "attributes": {"hidden": True}}},
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["data"]["attributes"]["hidden"] is True

    contents = dm(aps, f"/folders/{q(project_files)}/contents")
    assert [f["attributes"]["name"] for f in http.get(contents).json()["data"]] == ["New"]
    with_hidden = http.get(contents, params={"includeHidden": "true"}).json()["data"]
    assert {(f["attributes"]["name"], f["attributes"]["hidden"]) for f in with_hidden} == {
        ("New", False),
        ("Old", True),
    }
    assert aps.list_paths() == []
    assert create("Old").status_code == 201  # a hidden folder's name may be reused, as the spec notes


def test_it_rotates_refresh_tokens_and_counts_reuse(aps: FakeAps) -> None:
    token = aps.issue_token()
    url = f"{aps.base_url}/authentication/v2/token"
    form = {"grant_type": "refresh_token", "refresh_token": token["refresh_token"], "scope": "data:read data:write"}

    fresh = requests.post(url, data=form, auth=CLIENT)
    reused = requests.post(url, data=form, auth=CLIENT)

    assert fresh.status_code == 200, fresh.text
    body = fresh.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3599
    assert body["refresh_token"] != token["refresh_token"]
    assert reused.status_code == 400
    assert reused.json()["error"] == "invalid_grant"
    assert reused.json()["errorCode"] == "invalid_grant"
    assert "developerMessage" in reused.json()
    assert aps.refresh_reuse_attempts == 1

    # Client credentials in the form work too; a wrong secret is 401.
    again = requests.post(
        url, data={**form, "refresh_token": body["refresh_token"], "client_id": CLIENT[0], "client_secret": CLIENT[1]}
    )
    assert again.status_code == 200, again.text
    wrong = requests.post(url, data={**form, "refresh_token": again.json()["refresh_token"]}, auth=(CLIENT[0], "no"))
    assert wrong.status_code == 401
    assert [r["client_auth"] for r in aps.token_requests] == ["basic", "basic", "form", "basic"]
    listing = requests.get(
        f"{aps.base_url}/project/v1/hubs", headers={"Authorization": f"Bearer {again.json()['access_token']}"}
    )
    assert listing.status_code == 200


def test_it_rejects_expired_and_unknown_access_tokens(aps: FakeAps) -> None:
    hubs = f"{aps.base_url}/project/v1/hubs"
    expired = aps.issue_token(expired=True)
    live = aps.issue_token()

    assert expired["expires_in"] == 0
    assert expired["expiry"].endswith("Z")
    assert requests.get(hubs, headers={"Authorization": f"Bearer {expired['access_token']}"}).status_code == 401
    assert requests.get(hubs, headers={"Authorization": "Bearer not-a-token"}).status_code == 401
    missing = requests.get(hubs)
    assert missing.status_code == 401
    assert missing.json()["errorCode"] == "AUTH-010"
    assert requests.get(hubs, headers={"Authorization": f"Bearer {live['access_token']}"}).status_code == 200

    aps.expire_access_token()

    after = requests.get(hubs, headers={"Authorization": f"Bearer {live['access_token']}"})
    assert after.status_code == 401
    assert "developerMessage" in after.json()


def test_it_injects_429_with_retry_after_then_recovers(aps: FakeAps, http: requests.Session) -> None:
    hubs = f"{aps.base_url}/project/v1/hubs"
    aps.fail_next(2, status=429, retry_after=3, path_prefix="/project/")

    statuses = [http.get(hubs) for _ in range(3)]

    assert [r.status_code for r in statuses] == [429, 429, 200]
    assert statuses[0].headers["Retry-After"] == "3"
    assert statuses[0].json() == {"developerMessage": "Quota limit exceeded."}
    assert [(f.path, f.status) for f in aps.faults] == [("/project/v1/hubs", 429)] * 2

    aps.fail_next(1, status=503, retry_after=None)
    unavailable = http.get(hubs)
    assert unavailable.status_code == 503
    assert "Retry-After" not in unavailable.headers
    assert unavailable.json()["errors"][0]["status"] == "503"
    assert [call.status for call in aps.calls] == [429, 429, 200, 503]


def test_it_counts_tip_calls_and_records_what_it_does_not_know(aps: FakeAps, http: requests.Session) -> None:
    item_id = aps.put_file("Plans/sheet.pdf", b"pdf")

    tip = http.get(dm(aps, f"/items/{q(item_id)}/tip"))
    unknown_param = http.get(dm(aps, f"/items/{q(item_id)}/versions"), params={"sort": "name"})
    unknown_path = http.get(dm(aps, "/nonsense"))

    assert tip.status_code == 200
    assert tip.json()["data"]["attributes"]["name"] == "sheet.pdf"
    assert aps.tip_calls == 1
    assert unknown_param.status_code == 400
    assert unknown_path.status_code == 404
    assert len(aps.unhandled) == 2


def test_it_can_list_hidden_entries_by_default_and_needs_encoded_version_ids() -> None:
    with FakeAps(include_hidden_by_default=True) as aps:
        aps.put_file("Project Files/gone.txt", b"1")
        aps.delete_file("Project Files/gone.txt")
        aps.put_file("Project Files/Hidden/x.txt", b"2")
        aps.hide_folder("Project Files/Hidden")
        http = requests.Session()
        http.headers["Authorization"] = f"Bearer {aps.issue_token()['access_token']}"
        folder = top_folder_id(aps, http, "Project Files")

        listed = http.get(dm(aps, f"/folders/{q(folder)}/contents")).json()
        explicit = http.get(dm(aps, f"/folders/{q(folder)}/contents"), params={"includeHidden": "false"}).json()
        version_id = listed["included"][0]["id"]
        encoded = http.get(dm(aps, f"/versions/{q(version_id)}"))
        raw = http.get(dm(aps, f"/versions/{version_id}"))  # '?version=2' becomes a query string

    assert {(e["attributes"].get("name") or e["attributes"]["displayName"]) for e in listed["data"]} == {
        "Hidden",
        "gone.txt",
    }
    assert all(e["attributes"]["hidden"] for e in listed["data"])
    assert explicit["data"] == []
    assert version_id.endswith("?version=2")
    assert encoded.status_code == 200
    assert encoded.json()["data"]["attributes"]["extension"]["type"] == DELETED_VERSION
    assert raw.status_code == 400
    assert aps.list_paths() == []
