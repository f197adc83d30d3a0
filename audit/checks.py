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


@register("audit", deploy=True)
def witness_configured(app_configs, **kwargs):
    url = settings.AUDIT_CHECKPOINT_WITNESS_URL
    problems = []
    if url and not url.lower().startswith("https://"):
        problems.append(
            Warning(
                "AUDIT_CHECKPOINT_WITNESS_URL is not an https URL: checkpoint copies travel "
                "unencrypted and unauthenticated to the witness.",
                hint="Use an https endpoint (docs/audit.md, The checkpoint witness).",
                id="audit.W002",
            )
        )
    if url and not settings.AUDIT_CHECKPOINT_WITNESS_SECRET:
        problems.append(
            Warning(
                "AUDIT_CHECKPOINT_WITNESS_SECRET is not set, so checkpoint copies go to the "
                "witness unsigned: it cannot tell them from copies someone else posts.",
                hint="Set AUDIT_CHECKPOINT_WITNESS_SECRET and give it to the witness.",
                id="audit.W003",
            )
        )
    return problems


# Registered integrity checks (integrity/registry.py) ----------------------------------------

from collections.abc import Iterator  # noqa: E402
from datetime import timedelta  # noqa: E402

from django.utils import timezone  # noqa: E402

from audit.selectors import checkpoint_witness_lag  # noqa: E402
from audit.witness import witness_channels  # noqa: E402
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


@register_check("audit.checkpoints_witnessed", tag="audit", severity="error", explainable=False)
def checkpoints_witnessed(ctx: CheckContext) -> Iterator[Finding]:
    """With a checkpoint witness configured, the witness holds a copy of every signed
    checkpoint older than AUDIT_CHECKPOINT_WITNESS_MAX_AGE_HOURS, or of a newer one.

    The copies are sent by audit/witness.py and retried there; this is where a witness that
    stopped taking them (down, refusing, misconfigured) becomes an alert."""
    max_age = timedelta(hours=settings.AUDIT_CHECKPOINT_WITNESS_MAX_AGE_HOURS)
    for lag in checkpoint_witness_lag(channels=witness_channels(), max_age=max_age):
        checkpoint = lag["checkpoint"]
        newest = f"#{lag['newest_witnessed']}" if lag["newest_witnessed"] else "none"
        error = f"; last error: {lag['last_error']}" if lag["last_error"] else ""
        yield Finding(
            message=f"the {lag['channel']} witness ({lag['destination']}) has no copy of "
            f"checkpoint #{checkpoint.sequence} made {checkpoint.created_at:%Y-%m-%d %H:%M} "
            f"UTC or of any later one (newest witnessed: {newest}){error}",
            count=lag["count"],
            object_type=checkpoint._meta.label_lower,
            object_id=str(checkpoint.pk),
            key=lag["channel"],
            details={
                "destination": lag["destination"],
                "last_error": lag["last_error"],
                "newest_witnessed": lag["newest_witnessed"],
            },
        )
