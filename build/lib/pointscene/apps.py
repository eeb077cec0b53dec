"""The admin app with the operator console's site as admin.site (Django's "overriding the default admin site").

A dotted path, not an import: INSTALLED_APPS loads this before any model, and the site's package needs models."""

from django.contrib.admin.apps import AdminConfig


class OperatorAdminConfig(AdminConfig):
    default_site = "jobs.admin.site.default_site"
