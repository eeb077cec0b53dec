"""List filters of the jobs, runs and resources pages. The id box (IdFilter) is core's: configs' admin uses it too."""

from django.contrib import admin
from django.db.models import Q

from jobs.models import RunStatus
from pointscene.core.admin import IdFilter
from pointscene.core.models import Instance


class InstanceFilter(IdFilter):
    title = "instance"
    parameter_name = "instance"
    field_path = "instance_id"
    listed = 15

    def lookups(self, request, model_admin):
        selected = self.selected_id()
        rows = Instance.objects.order_by("name", "id")
        if selected is not None:
            rows = rows.filter(Q(pk__in=rows.values("pk")[: self.listed]) | Q(pk=selected))
        else:
            rows = rows[: self.listed]
        return [(str(pk), f"{name} (#{pk})") for pk, name in rows.values_list("pk", "name")]


class JobFilter(IdFilter):
    title = "job"
    parameter_name = "job"
    field_path = "job_id"


class LastOutcomeFilter(admin.SimpleListFilter):
    """Needs the last_status annotation (queries.with_latest_run)."""

    title = "last outcome"
    parameter_name = "last_outcome"
    NEVER = "NEVER"

    def lookups(self, request, model_admin):
        return [*RunStatus.choices, (self.NEVER, "Never run")]

    def queryset(self, request, queryset):
        value = self.value()
        if value == self.NEVER:
            return queryset.filter(last_status__isnull=True)
        if value in RunStatus.values:
            return queryset.filter(last_status=value)
        return queryset
