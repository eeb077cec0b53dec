"""Admin parts every app's admin may use. Django imports this module as core's admin; it registers nothing."""

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters


class IdFilter(admin.SimpleListFilter):
    """Filter by an id typed into a box, plus a short list of choices: no list of every row on big tables."""

    template = "admin/id_filter.html"
    field_path = ""

    def __init__(self, request, params, model, model_admin):
        # The box submits a GET form; the other filters and the search ride along as hidden fields.
        skip = (self.parameter_name, "p", "e")
        self.other_params = [(key, v) for key, values in request.GET.lists() if key not in skip for v in values]
        super().__init__(request, params, model, model_admin)

    def has_output(self) -> bool:
        return True

    def lookups(self, request, model_admin):
        return []

    def selected_id(self) -> int | None:
        value = (self.value() or "").strip().lstrip("#")
        return int(value) if value.isdigit() else None

    def queryset(self, request, queryset):
        if self.value() in (None, ""):
            return queryset
        selected = self.selected_id()
        if selected is None:
            # The changelist answers this with a redirect to ?e=1 ("invalid filter"), not a 500.
            raise IncorrectLookupParameters(f"{self.title} must be an id")
        return queryset.filter(**{self.field_path: selected})
