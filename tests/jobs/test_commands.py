import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from oauth2_provider.models import Application

from pointscene.core.models import ApiClient, Instance, Resource


def run(*args: str) -> dict:
    out = StringIO()
    call_command(*args, stdout=out)
    return json.loads(out.getvalue())


def test_it_creates_an_instance(db):
    answer = run("create_instance", "Acme")

    assert Instance.objects.get(pk=int(answer["id"])).name == "Acme"


def test_it_creates_a_resource_in_an_instance(instance):
    answer = run("create_resource", "--instance", str(instance.pk), "Site B")

    assert Resource.objects.get(pk=int(answer["id"])).instance == instance


def test_it_refuses_a_resource_for_a_missing_instance(db):
    with pytest.raises(CommandError, match="no instance"):
        run("create_resource", "--instance", "999999", "Site B")
    assert Resource.objects.count() == 0


def test_it_creates_a_client_whose_secret_is_stored_hashed(instance, other_instance, api):
    answer = run("create_api_client", "sync-bot", "--instance", str(instance.pk), "--instance", str(other_instance.pk))

    application = Application.objects.get(client_id=answer["client_id"])
    assert application.client_secret != answer["client_secret"]
    assert answer["client_secret"] not in application.client_secret
    assert set(application.api_client.instances.all()) == {instance, other_instance}
    token = api.token(type("C", (), answer)(), f"instance-write-{other_instance.pk}")
    assert token["status"] == 200


def test_it_refuses_a_client_for_a_missing_instance_and_writes_nothing(instance):
    with pytest.raises(CommandError, match="no instance"):
        run("create_api_client", "sync-bot", "--instance", str(instance.pk), "--instance", "999999")
    assert Application.objects.count() == 0
    assert ApiClient.objects.count() == 0


def test_it_creates_a_public_client_for_the_password_grant(instance):
    answer = run("create_api_client", "web-app", "--public")

    assert answer["client_secret"] is None
    application = Application.objects.get(client_id=answer["client_id"])
    assert application.client_type == Application.CLIENT_PUBLIC
    assert application.authorization_grant_type == Application.GRANT_PASSWORD


def test_it_creates_a_password_user_who_can_get_a_token(instance, public_client, api):
    answer = run("create_api_user", "bob", "--instance", str(instance.pk))

    token = api.password_token(public_client, "bob", answer["password"])

    assert token["status"] == 200
    assert "refresh_token" in token
