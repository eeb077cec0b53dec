"""API clients (core's model): which OAuth application may act on which instances, and create new ones."""

from django.contrib import admin

from jobs.admin.site import site
from pointscene.core.models import ApiClient


@admin.register(ApiClient, site=site)
class ApiClientAdmin(admin.ModelAdmin):
    list_display = ("application", "can_create_instances")
    list_select_related = ("application",)
    filter_horizontal = ("instances",)
    raw_id_fields = ("application",)
