"""The operator console: jobs, runs, log deletions, bisync listings, instances, resources, API clients and users in
Django's admin.

site.py is the admin site (admin.site, through pointscene.apps.OperatorAdminConfig) with the dashboard
(dashboard.py); display.py, filters.py and queries.py are what the pages share; each other module is one model's
admin, registered on the site when Django imports this package. Instances, resources and API clients are core's
models, but their admins live here: deleting an instance goes through jobs.services.
"""

from jobs.admin import clients, instances, jobs, listings, purges, resources, runs, users

__all__ = ["clients", "instances", "jobs", "listings", "purges", "resources", "runs", "users"]
