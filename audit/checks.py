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


# Registered integrity checks (integrity/registry.py) ----------------------------------------

from collections.abc import Iterator  # noqa: E402
from datetime import timedelta  # noqa: E402

from django.utils import timezone  # noqa: E402

from integrity.registry import CheckContext, Finding  # noqa: E402
from integrity.registry import register as register_check  # noqa: E402


@register_check("audit.verification_recent", tag="audit", severity="error", explainable=False)
def verification_recent(ctx: CheckContext) -> Iterator[Finding]:
    """A full verification of the audit chain passed within AUDIT_VERIFY_MAX_AGE_HOURS.

    The daily job (`audit.verify_chain`) verifies the whole chain; if it stopped running or
    its last run found the chain broken, this says so."""
    from audit.models import Verification, VerificationStatus

    full = Verification.objects.filter(from_id__isnull=True, to_id__isnull=True)
    last = full.order_by("-started_at", "-pk").first()
    limit = timedelta(hours=settings.AUDIT_VERIFY_MAX_AGE_HOURS)
    if last is None:
        # Only once the trail is older than the limit: a new install has had no night yet.
        from audit.models import AuditEvent

        first = AuditEvent.objects.order_by("id").values_list("occurred_at", flat=True).first()
        if first is not None and timezone.now() - first > limit:
            yield Finding(message="the audit chain has never been fully verified", key="never")
        return
    if last.status != VerificationStatus.OK:
        yield Finding(
            message=f"the last full verification ({last.started_at:%Y-%m-%d %H:%M}) found "
            f"{last.status}, first bad event {last.first_bad_id}",
            object_type=Verification._meta.label_lower,
            object_id=str(last.pk),
            key="failed",
        )
    passed = full.filter(status=VerificationStatus.OK).order_by("-started_at").first()
    if passed is None or timezone.now() - passed.started_at > limit:
        when = f"{passed.started_at:%Y-%m-%d %H:%M}" if passed else "never"
        yield Finding(
            message=f"no full verification passed in the last "
            f"{settings.AUDIT_VERIFY_MAX_AGE_HOURS} h (last pass: {when})",
            key="stale",
        )
