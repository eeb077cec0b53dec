"""Tenancy: instances (tenants), their resources, and the API clients that may reach them.

Every app builds on these; they were the jobs app's until tenancy became the bottom layer (the layers contract
in pyproject.toml).
"""

from django.conf import settings
from django.db import models
from django.utils.timezone import now


class Instance(models.Model):
    """A tenant. Everything an API client reaches belongs to one."""

    name = models.CharField(max_length=200)
    created_at = models.DateTimeField(default=now)
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL,
        blank=True,
        related_name="instances",
        help_text="Users who may act on this instance with a password-grant token.",
    )
    history_retention_days = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Days of run history kept (with the runs' logs); empty: the server's JOBS_HISTORY_RETENTION_DAYS. "
        "The last JOBS_HISTORY_KEEP_RUNS runs of each job are kept whatever their age.",
    )

    class Meta:
        # Created by the jobs app before tenancy became its own layer; the tables kept their names.
        db_table = "jobs_instance"

    def __str__(self) -> str:
        return f"{self.name} (#{self.pk})"


class Resource(models.Model):
    """Something inside an instance that owns remote configs and a storage area."""

    instance = models.ForeignKey(Instance, on_delete=models.CASCADE, related_name="resources")
    name = models.CharField(max_length=200)
    created_at = models.DateTimeField(default=now)

    class Meta:
        db_table = "jobs_resource"

    def __str__(self) -> str:
        return f"{self.name} (#{self.pk})"


class ApiClient(models.Model):
    """Our side of an OAuth2 application: which instances its tokens may reach."""

    application = models.OneToOneField(
        settings.OAUTH2_PROVIDER_APPLICATION_MODEL, on_delete=models.CASCADE, related_name="api_client"
    )
    instances = models.ManyToManyField(Instance, blank=True, related_name="api_clients")
    can_create_instances = models.BooleanField(default=False, help_text="May ask for the instance-create scope.")

    class Meta:
        db_table = "jobs_apiclient"

    def __str__(self) -> str:
        return self.application.name or self.application.client_id
