"""The real-time re-check of the balance cache, run after each posting commits.

A posting schedules it for the accounts it touched (`recheck_on_commit`); where
FINANCE_REALTIME_RECHECK says: "sync" in the posting's process once it has committed, "async" in
a worker (finance.tasks.recheck_accounts), "off" not at all. A mismatch raises the critical
alert of the finance.balance_cache check at once, instead of at the next scheduled run.
"""

import logging
from collections.abc import Collection, Sequence
from functools import partial

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django_q import tasks as django_q_tasks

from alerts import services as alerting
from finance import selectors
from finance.checks import balance_finding
from finance.models import BalanceCheckpoint
from integrity import services as integrity

logger = logging.getLogger("ledgerguard.checks")

BALANCE_CACHE_CHECK = "finance.balance_cache"  # the check whose alert the re-check raises
RECHECK_TASK = "finance.tasks.recheck_accounts"  # a dotted path stored in django-q2's queue


def recheck_on_commit(account_ids: Collection[int]) -> None:
    """Re-check the touched accounts once the posting commits (never if it rolls back), where
    FINANCE_REALTIME_RECHECK says: "sync" in this process, "async" in a worker, "off" not."""
    mode = settings.FINANCE_REALTIME_RECHECK
    if mode != "off":
        transaction.on_commit(partial(_recheck_after_commit, sorted(account_ids), mode))


def recheck_after_commit(account_ids: Collection[int]) -> None:
    """Re-check the accounts in this process once the transaction commits: a mismatch that the
    set-based posting found inside its transaction is confirmed and paged from here."""
    transaction.on_commit(partial(_recheck_after_commit, sorted(account_ids), "sync"))


def _recheck_after_commit(account_ids: list[int], mode: str) -> None:
    # The posting has committed: nothing that goes wrong here may reach its caller, who would
    # take the posting for failed and retry it. Logged, so the error log and its alerts see it.
    try:
        if mode == "async":
            django_q_tasks.async_task(RECHECK_TASK, account_ids)
        else:
            account_balances_recheck(account_ids=account_ids)
    except Exception:
        logger.exception("Real-time balance re-check of accounts %s failed", account_ids)


def account_balances_recheck(*, account_ids: Collection[int]) -> list[selectors.BalanceMismatch]:
    """Compare the accounts' cached balances with their posted lines and, on a mismatch, raise
    the critical alert checks/finance.balance_cache at once.

    Incremental (`selectors.balance_recheck`): from each account's checkpoint per fiscal year,
    only the lines posted since are read, cache and lines in one statement, so a posting
    committing meanwhile cannot produce a false mismatch; a mismatch is confirmed against every
    line before it pages. Checkpoints move forward afterwards (they total lines, not the cache).
    Never resolves the alert: it sees only these accounts, and only a full run of the check
    may say the books are clean. Safe to run twice: the same firing alert counts one more
    occurrence, and a checkpoint only ever moves forward.
    """
    recheck = selectors.balance_recheck(account_ids=account_ids)
    mismatches, wrong = _confirmed(recheck.mismatches)
    mismatches = _unexplained(mismatches)
    if mismatches:
        _raise_alert(mismatches)
    # After the alert: a failure to move checkpoints must never swallow it.
    if wrong:
        BalanceCheckpoint.objects.filter(account_id__in=wrong).delete()
    balance_checkpoints_advance([v for v in recheck.verified if v.account_id not in wrong])
    return mismatches


def _confirmed(
    mismatches: list[selectors.BalanceMismatch],
) -> tuple[list[selectors.BalanceMismatch], list[int]]:
    """The mismatches that every line confirms, and the accounts whose checkpoints are wrong.

    A checkpoint can be wrong when an old line was changed behind the guards and the cache then
    set to match it (the runbook's fix): such an account's checkpoints are dropped, and rebuilt
    next time, before anyone is paged for it.
    """
    if not mismatches:
        return [], []
    confirmed = {
        m.account_id: m
        for m in selectors.balance_mismatches(account_ids=[m.account_id for m in mismatches])
    }
    wrong = [m.account_id for m in mismatches if m.account_id not in confirmed]
    return [confirmed[m.account_id] for m in mismatches if m.account_id in confirmed], wrong


def _unexplained(mismatches: list[selectors.BalanceMismatch]) -> list[selectors.BalanceMismatch]:
    """An explanation given to the check covers the same difference here too."""
    if not mismatches:
        return []
    prints = {m.account_id: balance_finding(m).fingerprint(BALANCE_CACHE_CHECK) for m in mismatches}
    known = integrity.explanations_in_force(
        check_name=BALANCE_CACHE_CHECK, fingerprints=list(prints.values())
    )
    return [m for m in mismatches if prints[m.account_id] not in known]


def _raise_alert(mismatches: list[selectors.BalanceMismatch]) -> None:
    codes = ", ".join(m.code for m in mismatches[:10])
    alerting.raise_alert(
        source="checks",
        key=BALANCE_CACHE_CHECK,
        severity="critical",
        title=f"Cached balance differs from the posted lines of {len(mismatches)} "
        f"account(s): {codes}",
        details={
            "check": BALANCE_CACHE_CHECK,
            "realtime": True,
            "accounts": [m.as_details() for m in mismatches],
            "runbook": f"checks/{BALANCE_CACHE_CHECK}",
        },
    )


def balance_checkpoints_advance(verified: Sequence[selectors.YearTotals]) -> None:
    """Move each (account, year) checkpoint forward to what the re-check verified; a concurrent
    re-check that got further first keeps its own (conditional update)."""
    now = timezone.now()
    for v in verified:
        values = {
            "through_number": v.through_number,
            "debit_total": v.debit,
            "credit_total": v.credit,
            "verified_at": now,
        }
        mine = BalanceCheckpoint.objects.filter(account_id=v.account_id, fiscal_year=v.fiscal_year)
        if mine.filter(through_number__lt=v.through_number).update(**values):
            continue
        try:  # none yet, or one already further on (then the insert is refused)
            with transaction.atomic():
                BalanceCheckpoint.objects.create(
                    account_id=v.account_id, fiscal_year=v.fiscal_year, **values
                )
        except IntegrityError:
            pass  # it exists and is as far or further on
