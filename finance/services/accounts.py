"""Accounts: open, change and delete them, with their balance row and their trail."""

from typing import Any

from django.db import transaction

from audit.services import audit_record, diff, snapshot
from finance import rules
from finance.models import Account, AccountBalance, JournalLine
from finance.rules import raise_if, violation

__all__ = [
    "ACCOUNT_AUDITED",
    "ACCOUNT_EDITABLE",
    "LOCKED_WHEN_POSTED",
    "account_create",
    "account_delete",
    "account_update",
]

ACCOUNT_EDITABLE = (
    "name",
    "type",
    "currency",
    "parent",
    "is_active",
    "allow_negative",
    "is_control",
    "description",
)
LOCKED_WHEN_POSTED = ("type", "currency")
ACCOUNT_AUDITED = ("code", *ACCOUNT_EDITABLE)


def _has_lines(account: Account) -> bool:
    return JournalLine.objects.filter(account=account).exists()


@transaction.atomic
def account_create(
    *,
    code: str,
    name: str,
    type: str,
    currency: str,
    parent: Account | None = None,
    is_active: bool = True,
    allow_negative: bool = False,
    is_control: bool = False,
    description: str = "",
) -> Account:
    raise_if(rules.validate_account(account=None, type=type, currency=currency, parent=parent))
    account = Account.objects.create(
        code=code,
        name=name,
        type=type,
        currency=currency,
        parent=parent,
        is_active=is_active,
        allow_negative=allow_negative,
        is_control=is_control,
        description=description,
    )
    AccountBalance.objects.create(account=account)
    audit_record(
        action="account.created", obj=account, changes=diff({}, snapshot(account, ACCOUNT_AUDITED))
    )
    return account


@transaction.atomic
def account_update(*, account: Account, **changes: Any) -> Account:
    unknown = set(changes) - set(ACCOUNT_EDITABLE)
    if unknown:
        raise TypeError(f"account_update cannot change {sorted(unknown)}")
    account = Account.objects.select_for_update().get(pk=account.pk)
    changed = [f for f, v in changes.items() if getattr(account, f) != v]
    locked = [f for f in changed if f in LOCKED_WHEN_POSTED]
    if locked and _has_lines(account):
        raise_if(
            [
                violation("account.has_postings", field=f, account=account.code, what=f)
                for f in locked
            ]
        )
    raise_if(
        rules.validate_account(
            account=account,
            type=changes.get("type", account.type),
            currency=changes.get("currency", account.currency),
            parent=changes.get("parent", account.parent),
        )
    )
    before = snapshot(account, changed)
    for f in changed:
        setattr(account, f, changes[f])
    if changed:
        account.save(update_fields=[*changed, "updated_at"])
        audit_record(
            action="account.updated", obj=account, changes=diff(before, snapshot(account, changed))
        )
    return account


@transaction.atomic
def account_delete(*, account: Account) -> None:
    account = Account.objects.select_for_update().get(pk=account.pk)
    if _has_lines(account):
        raise_if([violation("account.has_postings", account=account.code, what="type or currency")])
    if account.children.exists():
        raise_if([violation("account.has_children", account=account.code)])
    audit_record(
        action="account.deleted", obj=account, changes=diff(snapshot(account, ACCOUNT_AUDITED), {})
    )
    AccountBalance.objects.filter(account=account).delete()
    account.delete()
