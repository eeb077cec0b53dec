"""bisync listings (jobs.sync.state) in the console: which job's bisync steps have listings stored, how big, and
which run stored them last. Deleting one makes that step's next run start over with --resync (merges both sides;
deletes nothing), the operator's way out when a bisync job reports its listings as unusable."""

from django.contrib import admin
from django.db.models.functions import Length

from jobs.admin.display import when
from jobs.admin.site import site
from jobs.models import BisyncListings


@admin.register(BisyncListings, site=site)
class BisyncListingsAdmin(admin.ModelAdmin):
    list_display = ("job", "task", "size", "stored_by_run", "updated")
    list_select_related = ("job",)
    ordering = ("-updated_at",)
    fields = ("job", "task", "size", "stored_by_run", "updated_at")
    readonly_fields = fields

    def get_queryset(self, request):
        # The archive itself never leaves the database for a page: only its length.
        return super().get_queryset(request).defer("archive").annotate(archive_bytes=Length("archive"))

    @admin.display(description="size (bytes)", ordering="archive_bytes")
    def size(self, listings: BisyncListings):
        return listings.archive_bytes

    @admin.display(description="stored", ordering="updated_at")
    def updated(self, listings: BisyncListings):
        return when(listings.updated_at)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
