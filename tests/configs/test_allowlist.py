"""The reviewed allowlist of rclone options (configs/allowlist.py, configs/rclone_options.toml) against the rclone
that is installed: nothing it offers may go unclassified."""

import json
import subprocess

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from configs import allowlist, rclone


@pytest.fixture(scope="module")
def providers() -> list[dict]:
    out = subprocess.run(
        [rclone.binary(), "config", "providers", "--config", "/dev/null"], capture_output=True, check=True
    ).stdout
    return json.loads(out)


def test_it_classifies_every_option_of_every_installed_backend(providers):
    missing = [
        f"{p['Name']}.{o['Name']}"
        for p in providers
        for o in p["Options"]
        if allowlist.option_class(p["Name"], o["Name"]) in (None, "unreviewed")
    ]

    assert missing == []
    assert {p["Name"] for p in providers} == set(allowlist.rules())


def test_it_uses_only_known_classes_and_transports():
    for backend in allowlist.rules().values():
        assert backend.transport in allowlist.TRANSPORTS
        assert set(backend.options.values()) <= set(allowlist.CLASSES) - {"unreviewed"}


def test_it_reports_nothing_new_for_the_installed_rclone(capsys):
    call_command("rclone_options")

    assert json.loads(capsys.readouterr().out) == {"unreviewed": [], "written": False}


def test_it_adds_an_option_of_a_newer_rclone_as_unreviewed_and_keeps_reviewed_lines(providers):
    newer = json.loads(json.dumps(providers))
    s3 = next(p for p in newer if p["Name"] == "s3")
    s3["Options"].append({"Name": "shiny_new_url", "IsPassword": False})
    newer.append({"Name": "newcloud", "Options": [{"Name": "api_key", "IsPassword": False}]})

    text, new = allowlist.draft(newer, allowlist.rules())

    assert new == ["newcloud.api_key", "s3.shiny_new_url"]
    assert 'shiny_new_url = "unreviewed"  # suggested: address' in text
    assert 'api_key = "unreviewed"  # suggested: secret' in text
    # Lines a reviewer wrote, with their reasons, come back as they were.
    reviewed = [line for line in allowlist.DATA_FILE.read_text().splitlines() if "# " in line and "=" in line]
    assert reviewed
    assert all(line in text.splitlines() for line in reviewed)


def test_it_fails_the_check_while_an_option_is_unreviewed(providers, monkeypatch, capsys):
    rules = dict(allowlist.rules())
    s3 = rules["s3"]
    rules["s3"] = allowlist.BackendRules("s3", s3.transport, {k: v for k, v in s3.options.items() if k != "endpoint"})
    monkeypatch.setattr(allowlist, "rules", lambda: rules)

    with pytest.raises(CommandError, match="1 options need a reviewer"):
        call_command("rclone_options")

    assert json.loads(capsys.readouterr().out)["unreviewed"] == ["s3.endpoint"]


@pytest.mark.parametrize(
    ("remote_type", "option", "kind"),
    [
        ("sftp", "ssh", "program"),
        ("webdav", "bearer_token_command", "program"),
        ("webdav", "unix_socket", "local"),
        ("sftp", "socks_proxy", "internal"),
        ("ftp", "http_proxy", "internal"),
        ("azureblob", "account", "hostpart"),
        ("zoho", "region", "hostpart"),
        ("filescom", "site", "address"),
        ("azureblob", "sas_url", "secret_address"),
        ("s3", "env_auth", "identity"),
        ("sftp", "md5sum_command", "safe"),
    ],
)
def test_it_classifies_the_options_tenants_used_to_reach_the_worker(remote_type, option, kind):
    assert allowlist.option_class(remote_type, option) == kind
