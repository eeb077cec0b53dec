"""Users: Django's UserAdmin, except that deactivating a user revokes their tokens (core.oauth) after commit, from
the form and from the list's action."""

from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin

from jobs.admin.display import plural
from jobs.admin.site import site
from pointscene.core import oauth

# Importing django.contrib.auth.admin registered the stock UserAdmin; this one replaces it.
site.unregister(get_user_model())


@admin.register(get_user_model(), site=site)
class AccountAdmin(UserAdmin):
    actions = ["deactivate_users"]

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if not obj.is_active:
            oauth.revoke_user_tokens_after_commit(obj.pk)

    @admin.action(description="Deactivate selected users and revoke their tokens", permissions=["change"])
    def deactivate_users(self, request, queryset):
        users = [user for user in queryset if user.pk != request.user.pk]
        for user in users:
            oauth.deactivate_user(user)
        if len(users) < len(queryset):
            self.message_user(request, "You cannot deactivate yourself.", messages.WARNING)
        self.message_user(request, f"Deactivated {plural(len(users), 'user')}; their tokens are revoked.")
