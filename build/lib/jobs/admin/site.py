"""The operator console's admin site: Django's, plus the jobs dashboard (/admin/dashboard/) and an index page that
links to it.

pointscene.apps.OperatorAdminConfig makes it admin.site, through default_site() below. It hands Django one
instance made here rather than the class: Django builds admin.site on first use, and the first use comes while it
imports this package (jobs.admin registers its models, and importing django.contrib.auth.admin registers User),
so a class would be instantiated twice, and the models registered on the first instance lost.
"""

from django.contrib.admin import AdminSite
from django.http import HttpRequest, HttpResponse
from django.urls import URLPattern, URLResolver, path

from jobs.admin import dashboard


class OperatorSite(AdminSite):
    # The admin app comes first in INSTALLED_APPS, so an app's admin/index.html would never be found; name ours.
    index_template = "admin/jobs/index.html"

    def get_urls(self) -> list[URLPattern | URLResolver]:
        return [path("dashboard/", self.admin_view(self.dashboard), name="jobs_dashboard"), *super().get_urls()]

    def dashboard(self, request: HttpRequest) -> HttpResponse:
        return dashboard.dashboard(request, self.each_context(request))


site = OperatorSite()


def default_site() -> OperatorSite:
    """AdminConfig.default_site: "a callable that returns a site instance" (Django's docs), always this one."""
    return site
