from django.contrib import admin

from configs.models import RemoteConfig


@admin.register(RemoteConfig)
class RemoteConfigAdmin(admin.ModelAdmin):
    """Names and types only: settings are ciphertext and are never shown, not even encrypted."""

    list_display = ("name", "type", "resource", "updated_at")
    list_select_related = ("resource",)
    search_fields = ("name", "type")
    fields = ("resource", "name", "type", "created_at", "updated_at")
    readonly_fields = fields

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
