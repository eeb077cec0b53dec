"""Remotes in the admin: names, types and non-secret settings are shown; secrets are write-only.

An operator sees which secrets are set, never their values: not in the list, not in the form, not in its initial
data, not even when a form comes back with errors (secret inputs never render a value, and the settings box
drops any secret option typed into it). Saving goes through configs.services.add_job_config, so the rules are
exactly the API's; its errors come back as form errors on the field they name.
"""

import json

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.html import format_html_join

from configs import checks, remotes
from configs.crypto import DecryptionFailed, decrypt_json
from configs.models import RemoteConfig
from configs.rclone import RcloneMissing
from configs.services import add_job_config, remove_job_config
from pointscene.core.admin import IdFilter

SECRET_PREFIX = "secret__"
CLEAR_PREFIX = "clear__"
SETTINGS_HELP = (
    'Non-secret options as a JSON object, e.g. {"provider": "AWS", "region": "eu-north-1"}. It replaces the '
    "remote's non-secret options: leave an option out to remove it."
)
SECRETS_HELP = (
    "Secret options as a JSON object, write-only: never shown again, not even if the form has errors. "
    "Each one given replaces the stored value; options left out are kept."
)


def is_secret(remote_type: str, option: str) -> bool:
    """configs.remotes.is_secret, failing safe: when rclone cannot say, every option counts as secret."""
    try:
        return remotes.is_secret(remote_type, option)
    except RcloneMissing:
        return True


def stored_settings(remote: RemoteConfig) -> dict | None:
    try:
        value = decrypt_json(remote.settings_encrypted)
    except DecryptionFailed:
        return None
    return value if isinstance(value, dict) else None


def public_view(remote: RemoteConfig) -> dict | None:
    """What the API's getJobConfig shows of the remote (type, non-secret settings, which secrets are set)."""
    settings_ = stored_settings(remote)
    if settings_ is None:
        return None
    try:
        return remotes.public_view(settings_)
    except RcloneMissing:
        return {"type": settings_.get("type", ""), "settings": {}, "secrets": []}


class WriteOnlyTextarea(forms.Textarea):
    """Renders empty whatever it holds: what goes in here is never sent back to a browser."""

    def format_value(self, value):
        return None


class SettingsTextarea(forms.Textarea):
    """JSON of non-secret options. A secret option typed into it is accepted, but never rendered back."""

    remote_type = ""

    def format_value(self, value):
        text = super().format_value(value)
        try:
            data = json.loads(text) if text else None
        except (TypeError, ValueError):
            return text
        if isinstance(data, dict):
            shown = {k: v for k, v in data.items() if not is_secret(self.remote_type or str(data.get("type", "")), k)}
            return json.dumps(shown, indent=2, ensure_ascii=False)
        return text


class RemoteConfigForm(forms.ModelForm):
    """Builds the remote's whole settings from the stored ones and the operator's input, and validates them with
    the service in a savepoint that is rolled back; RemoteConfigAdmin.save_model then saves them for real."""

    settings_json = forms.JSONField(
        label="Settings",
        required=False,
        widget=SettingsTextarea(attrs={"rows": 8, "cols": 80}),
        help_text=SETTINGS_HELP,
    )
    secrets_json = forms.JSONField(
        label="Secrets (JSON)",
        required=False,
        widget=WriteOnlyTextarea(attrs={"rows": 3, "cols": 80, "autocomplete": "off"}),
        help_text=SECRETS_HELP,
    )

    class Meta:
        model = RemoteConfig
        fields = ("resource", "name", "type")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.remote_config: dict | None = None
        editing = self.instance.pk is not None
        remote_type = self.instance.type if editing else (self.data.get("type") or "")
        self.fields["settings_json"].widget.remote_type = remote_type
        if editing and not self.is_bound:
            view = public_view(self.instance)
            self.initial["settings_json"] = view["settings"] if view else {}

    def secret_fields(self) -> list[str]:
        return [name[len(SECRET_PREFIX) :] for name in self.fields if name.startswith(SECRET_PREFIX)]

    def clean(self):
        data = super().clean()
        editing = self.instance.pk is not None
        resource = self.instance.resource if editing else data.get("resource")
        name = self.instance.name if editing else data.get("name")
        remote_type = self.instance.type if editing else data.get("type")
        plain = data.get("settings_json") or {}
        secrets = data.get("secrets_json") or {}
        for field, value in (("settings_json", plain), ("secrets_json", secrets)):
            if not isinstance(value, dict):
                self.add_error(field, "must be a JSON object of option name -> value")
            elif "type" in value:
                self.add_error(field, "give the type in its own field, not here")
        if self.errors or not (resource and name and remote_type):
            return data

        current = {}
        if editing:
            current = stored_settings(self.instance)
            if current is None:
                raise ValidationError(
                    "The stored settings cannot be decrypted with the configured keys; remove the remote and add "
                    "it again."
                )
        # Stored secrets stay unless replaced or removed; the non-secret options are exactly what the box holds.
        config = {"type": remote_type}
        config.update({k: v for k, v in current.items() if k != "type" and is_secret(remote_type, k)})
        config.update(plain)
        for option in self.secret_fields():
            new_value = data.get(SECRET_PREFIX + option) or ""
            if data.get(CLEAR_PREFIX + option):
                if new_value:
                    self.add_error(SECRET_PREFIX + option, "either give a new value or remove it, not both")
                config.pop(option, None)
            elif new_value:
                config[option] = new_value
        config.update(secrets)
        if self.errors:
            return data
        try:
            _dry_run(resource, {name: config})
        except ValidationError as exc:
            self._add_service_errors(exc, name, plain, secrets)
            return data
        self.remote_config = {name: config}
        return data

    def _add_service_errors(self, exc: ValidationError, name: str, plain: dict, secrets: dict) -> None:
        """Puts each of the service's errors ("config.<name>.<option>": messages) on the field it is about."""
        if not hasattr(exc, "error_dict"):
            self.add_error(None, exc.messages)
            return
        prefix = f"config.{name}"
        for path, errors in exc.message_dict.items():
            option = path[len(prefix) + 1 :] if path.startswith(prefix + ".") else ""
            message = "; ".join(errors)
            if path == prefix:
                target = "name" if "name" in self.fields else None
            elif SECRET_PREFIX + option in self.fields:
                target = SECRET_PREFIX + option
            elif option == "type" and "type" in self.fields:
                target = "type"
            elif option in secrets:
                target, message = "secrets_json", f"{option}: {message}"
            elif option in plain or option:
                target, message = "settings_json", f"{option}: {message}"
            else:
                target = None
            self.add_error(target, message)


class _Rollback(Exception):
    pass


def _dry_run(resource, config: dict) -> None:
    """add_job_config, undone: the service's own validation (names, types, options, limits) without a write."""
    try:
        with transaction.atomic():
            add_job_config(resource, config)
            raise _Rollback
    except _Rollback:
        pass


class InstanceFilter(IdFilter):
    title = "instance"
    parameter_name = "instance"
    field_path = "resource__instance_id"


class ResourceFilter(IdFilter):
    title = "resource"
    parameter_name = "resource"
    field_path = "resource_id"


@admin.register(RemoteConfig)
class RemoteConfigAdmin(admin.ModelAdmin):
    """Non-secret settings and which secrets are set; secret values never leave the server."""

    form = RemoteConfigForm
    list_display = ("name", "type", "resource", "instance", "non_secret_settings", "secrets", "updated_at")
    list_select_related = ("resource__instance",)
    list_filter = ("type", InstanceFilter, ResourceFilter)
    search_fields = ("name", "type", "resource__name")
    raw_id_fields = ("resource",)
    ordering = ("resource_id", "name")
    actions = ["test_connection"]

    # A few at a time: each waits for a worker's check (up to configs.checks.WAIT_SECONDS).
    MAX_TESTED = 5

    @admin.action(description="Test connection (a worker lists the remote's root)", permissions=["change"])
    def test_connection(self, request, queryset):
        remotes_ = list(queryset.order_by("resource_id", "name")[: self.MAX_TESTED + 1])
        if len(remotes_) > self.MAX_TESTED:
            self.message_user(request, f"Select at most {self.MAX_TESTED} remotes to test at once.", messages.WARNING)
            return
        for remote in remotes_:
            check = checks.check_remote(remote)
            level = messages.SUCCESS if check.ok else messages.ERROR
            self.message_user(request, f"{remote.name} (resource {remote.resource_id}): {check.message}", level)

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ()
        # Renaming or retyping a remote is removing it and adding another: the secrets would not carry over.
        return ("resource", "instance", "name", "type", "secrets", "created_at", "updated_at")

    def get_fieldsets(self, request, obj=None):
        if obj is None:
            return [
                (None, {"fields": ("resource", "name", "type")}),
                ("Settings", {"fields": ("settings_json",)}),
                ("Secrets (write-only)", {"fields": ("secrets_json",)}),
            ]
        secret_fields = []
        for secret in self._secrets(obj):
            secret_fields.append(SECRET_PREFIX + secret["name"])
            if secret["isSet"]:
                secret_fields.append(CLEAR_PREFIX + secret["name"])
        return [
            (None, {"fields": ("resource", "instance", "name", "type", "secrets")}),
            ("Settings", {"fields": ("settings_json",)}),
            (
                "Secrets (write-only)",
                {
                    "fields": (*secret_fields, "secrets_json"),
                    "description": "Values are never shown. Type a value to replace a secret; leave it blank to "
                    "keep the stored one.",
                },
            ),
            ("Dates", {"classes": ("collapse",), "fields": ("created_at", "updated_at")}),
        ]

    def get_form(self, request, obj=None, change=False, **kwargs):
        # One write-only input per secret of this remote (and a "remove" box for those that are set).
        fields = {}
        for secret in self._secrets(obj) if obj is not None else []:
            state = "set: leave blank to keep it" if secret["isSet"] else "not set"
            fields[SECRET_PREFIX + secret["name"]] = forms.CharField(
                label=secret["name"],
                required=False,
                strip=False,
                widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password", "size": 60}),
                help_text=state,
            )
            if secret["isSet"]:
                fields[CLEAR_PREFIX + secret["name"]] = forms.BooleanField(
                    label=f"Remove {secret['name']}", required=False
                )
        kwargs["form"] = type("RemoteConfigForm", (self.form,), fields)
        return super().get_form(request, obj, change=change, **kwargs)

    @staticmethod
    def _secrets(obj: RemoteConfig) -> list[dict]:
        view = public_view(obj)
        return view["secrets"] if view else []

    # ---- columns

    @admin.display(description="instance", ordering="resource__instance_id")
    def instance(self, remote: RemoteConfig):
        return remote.resource.instance

    @admin.display(description="settings")
    def non_secret_settings(self, remote: RemoteConfig):
        view = public_view(remote)
        if view is None:
            return "cannot be decrypted with the configured keys"
        if not view["settings"]:
            return "—"
        return format_html_join(", ", "<code>{}={}</code>", sorted(view["settings"].items()))

    @admin.display(description="secrets")
    def secrets(self, remote: RemoteConfig):
        view = public_view(remote)
        if view is None or not view["secrets"]:
            return "—"
        return format_html_join(
            ", ",
            '<span title="{}">{} {}</span>',
            (("set" if s["isSet"] else "not set", s["name"], "✓" if s["isSet"] else "✗") for s in view["secrets"]),
        )

    # ---- saving and removing go through the service

    def save_model(self, request, obj, form, change):
        add_job_config(obj.resource, form.remote_config)
        saved = RemoteConfig.objects.get(resource=obj.resource, name=obj.name)
        obj.pk = saved.pk
        obj.refresh_from_db()

    def delete_model(self, request, obj):
        remove_job_config(obj.resource, [obj.name])

    def delete_queryset(self, request, queryset):
        by_resource = {}
        for remote in queryset.select_related("resource"):
            by_resource.setdefault(remote.resource_id, (remote.resource, []))[1].append(remote.name)
        for resource, names in by_resource.values():
            remove_job_config(resource, names)

    def get_changeform_initial_data(self, request):
        return {
            key: value for key, value in super().get_changeform_initial_data(request).items() if key in _SAFE_INITIAL
        }


# Only these may be prefilled from the add page's query string: never a setting, which might be a secret.
_SAFE_INITIAL = {"resource", "name", "type"}
