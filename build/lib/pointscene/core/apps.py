from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "pointscene.core"
    label = "core"
    verbose_name = "Tenants and API access"
