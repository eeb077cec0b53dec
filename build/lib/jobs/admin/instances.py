"""Instances (core's model) in the console. Deleting one goes through jobs.services, which also removes the
schedule entries of its jobs after commit; that is why this admin lives in jobs, not in core."""

from django.contrib import admin

from jobs import services
from jobs.admin.queries import search_by_name_or_id
from jobs.admin.site import site
from pointscene.core.models import Instance


@admin.register(Instance, site=site)
class InstanceAdmin(admin.ModelAdmin):
    list_display = ("id", "name", "created_at")
    search_fields = ("name", "=id")
    filter_horizontal = ("members",)

    def get_search_results(self, request, queryset, search_term):
        return search_by_name_or_id(queryset, search_term), False

    def delete_model(self, request, obj):
        services.delete_instance(obj)

    def delete_queryset(self, request, queryset):
        for instance in queryset:
            services.delete_instance(instance)
