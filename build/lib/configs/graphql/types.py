import graphene

from pointscene.graphql.scalars import JSON


class ConfigSecret(graphene.ObjectType):
    """A secret setting of a remote: only whether it is set, never its value."""

    name = graphene.String(required=True, description="The setting's rclone name, e.g. token or client_secret.")
    is_set = graphene.Boolean(required=True, description="Whether the remote has a value for it.")


class ConfigRemote(graphene.ObjectType):
    """One stored remote of a resource, without its secrets."""

    name = graphene.String(required=True, description="The remote's name, as workflows write it (name:path).")
    type = graphene.String(required=True, description="The remote's type: drive, s3, acc, sftp, ...")
    settings = JSON(required=True, description="Its non-secret settings, by rclone option name.")
    secrets = graphene.List(
        graphene.NonNull(ConfigSecret),
        required=True,
        description="Its secret settings (the type's main ones, and any other that is set), as set or unset.",
    )


class ConfigCheck(graphene.ObjectType):
    """What a worker found when it listed a stored remote's root (testJobConfig)."""

    ok = graphene.Boolean(required=True, description="Whether the remote answered the listing.")
    message = graphene.String(
        required=True, description="In words: how many entries, or rclone's (or Autodesk's) error. Never a secret."
    )
    entries = graphene.Int(description="Entries at the remote's root (files and folders), when it answered.")
    duration_ms = graphene.Int(required=True, description="How long the check took on the worker, in milliseconds.")
