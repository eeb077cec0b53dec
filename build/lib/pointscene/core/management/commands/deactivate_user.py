from django.contrib.auth import get_user_model

from pointscene.core import oauth
from pointscene.core.commands import JsonCommand


class Command(JsonCommand):
    help = (
        "Deactivates a user and revokes every token of theirs (access and refresh, at once). "
        'Prints {"username": ..., "active": false}.'
    )

    def add_arguments(self, parser):
        parser.add_argument("username")

    def run(self, username, **options):
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise ValueError(f"no user named {username!r}")
        oauth.deactivate_user(user)
        return {"username": username, "active": False}
