"""Project glue: API tokens, roles, request context, the error shape."""

from django.apps import AppConfig


class ConfigConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "config"
    verbose_name = "Access"
