from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError

from jobs import services
from jobs.models import ApiClient, Instance, JobHistory, Resource, ScheduledJob


@admin.register(Instance)
class InstanceAdmin(admin.ModelAdmin):
    list_display = ("id", "name", "created_at")
    search_fields = ("name", "=id")
    filter_horizontal = ("members",)

    def delete_model(self, request, obj):
        services.delete_instance(obj)

    def delete_queryset(self, request, queryset):
        for instance in queryset:
            services.delete_instance(instance)


@admin.register(Resource)
class ResourceAdmin(admin.ModelAdmin):
    list_display = ("id", "name", "instance", "created_at")
    list_select_related = ("instance",)
    search_fields = ("name", "=id")
    raw_id_fields = ("instance",)


@admin.register(ApiClient)
class ApiClientAdmin(admin.ModelAdmin):
    list_display = ("application", "can_create_instances")
    list_select_related = ("application",)
    filter_horizontal = ("instances",)
    raw_id_fields = ("application",)


class ScheduledJobForm(forms.ModelForm):
    class Meta:
        model = ScheduledJob
        fields = "__all__"

    def clean(self):
        data = super().clean()
        candidate = ScheduledJob(**{k: v for k, v in data.items() if k in _JOB_FIELDS})
        candidate.instance_id = data["instance"].pk if data.get("instance") else None
        try:
            services.validate_job(candidate)
        except ValidationError as exc:
            # The API's argument names are not the form's; show the problems above the form.
            raise ValidationError([f"{field}: {'; '.join(msgs)}" for field, msgs in exc.message_dict.items()]) from None
        return data


_JOB_FIELDS = {"frequency_type", "cron_expression", "interval_minutes", "timezone", "workflow", "name", "description"}


@admin.register(ScheduledJob)
class ScheduledJobAdmin(admin.ModelAdmin):
    form = ScheduledJobForm
    list_display = ("id", "name", "instance", "frequency_type", "cron_expression", "interval_minutes", "active")
    list_filter = ("active", "frequency_type")
    list_select_related = ("instance",)
    search_fields = ("name", "=id")
    raw_id_fields = ("instance",)
    readonly_fields = ("schedule_anchor", "last_run_at", "created_at", "updated_at")

    def save_model(self, request, obj, form, change):
        services.save_job(obj)

    def delete_model(self, request, obj):
        services.delete_job(obj)

    def delete_queryset(self, request, queryset):
        for job in queryset:
            services.delete_job(job)


@admin.register(JobHistory)
class JobHistoryAdmin(admin.ModelAdmin):
    list_display = ("id", "job", "instance", "status", "trigger", "scheduled_for", "started_at", "finished_at")
    list_filter = ("status", "trigger")
    list_select_related = ("job", "instance")
    raw_id_fields = ("job", "instance")
    date_hierarchy = "created_at"
