"""System checks (`manage.py check --deploy`) for the audit trail's configuration."""

from django.conf import settings
from django.core.checks import Warning, register


@register("audit", deploy=True)
def signing_key_set(app_configs, **kwargs):
    if settings.AUDIT_SIGNING_KEY:
        return []
    return [
        Warning(
            "AUDIT_SIGNING_KEY is not set, so audit checkpoints cannot be signed and a rewrite "
            "of the whole audit table would go unnoticed.",
            hint="Set AUDIT_SIGNING_KEY to a long random value kept outside the database "
            "(docs/audit.md).",
            id="audit.W001",
        )
    ]
