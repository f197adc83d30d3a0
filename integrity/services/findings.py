"""Explanations of check findings: an explained finding stops counting as failing in this and
later runs while it stays the same; withdrawing the explanation makes it count again."""

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from audit.services import audit_record
from config import registry
from integrity.exceptions import FindingError, FindingNotExplainable
from integrity.models import Finding, FindingExplanation
from integrity.selectors import explanations_in_force


@transaction.atomic
def finding_explain(*, finding: Finding, actor: User, reason: str) -> Finding:
    """Explain a finding: it and the same finding in later runs stop counting as failing.

    Refused for checks whose findings are never expected (a dead scheduler), without a reason,
    and while an explanation of the same finding is in force.
    """
    reason = (reason or "").strip()
    check = registry.all_checks().get(finding.check_name)
    if check is not None and not check.explainable:
        raise FindingNotExplainable(
            f"Findings of {finding.check_name} cannot be explained: fix the cause."
        )
    if not reason:
        raise FindingError("A reason is required.", fields={"reason": ["This field is required."]})
    finding = Finding.objects.select_for_update().get(pk=finding.pk)
    if explanations_in_force(check_name=finding.check_name, fingerprints=[finding.fingerprint]):
        raise FindingError(
            "This finding is already explained.", fields={"reason": ["already explained"]}
        )
    explanation = FindingExplanation.objects.create(
        check_name=finding.check_name,
        fingerprint=finding.fingerprint,
        reason=reason[:5000],
        explained_by=actor,
        explained_at=timezone.now(),
    )
    finding.explanation = explanation
    finding.save(update_fields=["explanation"])
    audit_record(
        action="check_finding.explained",
        obj=finding,
        actor=actor,
        metadata={
            "check": finding.check_name,
            "fingerprint": finding.fingerprint,
            "reason": reason[:1000],
            "run": finding.run_id,
        },
    )
    return finding


@transaction.atomic
def finding_explanation_withdraw(*, finding: Finding, actor: User) -> Finding:
    """Withdraw the explanation in force for a finding: from the next run on it counts again.
    The explanation is kept, so earlier runs still show what was explained and why."""
    finding = Finding.objects.select_for_update().get(pk=finding.pk)
    explanation = (
        FindingExplanation.objects.select_for_update()
        .filter(
            check_name=finding.check_name,
            fingerprint=finding.fingerprint,
            withdrawn_at__isnull=True,
        )
        .first()
    )
    if explanation is None:
        raise FindingError("This finding has no explanation in force.")
    explanation.withdrawn_at = timezone.now()
    explanation.withdrawn_by = actor
    explanation.save(update_fields=["withdrawn_at", "withdrawn_by"])
    audit_record(
        action="check_finding.explanation_withdrawn",
        obj=finding,
        actor=actor,
        metadata={
            "check": finding.check_name,
            "fingerprint": finding.fingerprint,
            "reason": explanation.reason[:1000],
        },
    )
    return finding
