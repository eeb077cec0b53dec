"""Resources (core's model) in the console, filtered by instance like the jobs and runs pages."""

from django.contrib import admin

from jobs.admin.filters import InstanceFilter
from jobs.admin.queries import search_by_name_or_id
from jobs.admin.site import site
from pointscene.core.models import Resource


@admin.register(Resource, site=site)
class ResourceAdmin(admin.ModelAdmin):
    list_display = ("id", "name", "instance", "created_at")
    list_select_related = ("instance",)
    list_filter = (InstanceFilter,)
    search_fields = ("name", "=id")
    raw_id_fields = ("instance",)

    def get_search_results(self, request, queryset, search_term):
        return search_by_name_or_id(queryset, search_term), False
