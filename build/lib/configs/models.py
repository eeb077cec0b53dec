from django.db import models
from django.utils import timezone

from pointscene.core.models import Resource


class RemoteConfig(models.Model):
    """One named remote of a resource ("gdrive", "bucket", ...), the way rclone names remotes.

    Only the remote's name and type are plaintext. All of its settings, secret or not, are one Fernet
    token in `settings_encrypted`; the worker decrypts it in memory when a run needs it.
    """

    resource = models.ForeignKey(Resource, on_delete=models.CASCADE, related_name="remotes")
    name = models.CharField(max_length=64)
    type = models.CharField(max_length=64)
    settings_encrypted = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["resource", "name"], name="remote_unique_name")]
        ordering = ["resource_id", "name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.type})"
