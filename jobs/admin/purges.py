"""Log deletions (jobs.running.purge) in the console: the log files of pruned runs and the log folders of deleted
jobs still to be deleted from storage, with how often storage refused and why. Read only: the sweeper retries them;
an operator only needs to see one that keeps failing."""

from django.contrib import admin

from jobs.admin.display import when
from jobs.admin.site import site
from jobs.models import LogDeletion


@admin.register(LogDeletion, site=site)
class LogDeletionAdmin(admin.ModelAdmin):
    list_display = ("id", "path", "attempts", "last_error", "next_attempt", "created_at")
    ordering = ("next_attempt_at",)
    readonly_fields = ("path", "attempts", "last_error", "next_attempt_at", "created_at")

    @admin.display(description="next attempt", ordering="next_attempt_at")
    def next_attempt(self, row: LogDeletion):
        return when(row.next_attempt_at)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        # Deleting the row would forget the files: they would stay in storage with nothing left to delete them.
        return False
