"""Integrity checks, health, transaction manager, idempotency and dead letters."""

from django.apps import AppConfig


class IntegrityConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "integrity"
