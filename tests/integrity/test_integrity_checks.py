"""The integrity checks against data corrupted the way it happens: rows deleted or edited by
raw SQL around the services, constraints and indexes missing, migrations not applied."""

from contextlib import contextmanager
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.db.migrations.recorder import MigrationRecorder
from django.utils import timezone

from alerts.models import Alert
from audit.models import AuditEvent
from audit.services import audit_record, chain_verify
from finance import services as finance
from finance.models import Account, JournalEntry, JournalLine
from integrity import services
from integrity.constraints import check_enforced, unique_enforced
from integrity.models import DeadLetter
from tests.factories import UserFactory
from tests.integrity.factories import DeadLetterFactory

pytestmark = pytest.mark.django_db


def run(*names):
    return services.checks_run(trigger="command", checks=list(names))


def result(check_run, name):
    r = check_run.results.get(check_name=name)
    return r, list(check_run.findings.filter(check_name=name).order_by("id"))


def firing(key, source="checks"):
    return Alert.objects.filter(source=source, key=key, state="firing").exists()


def sql(statement, params=None):
    with connection.cursor() as cursor:
        cursor.execute(statement, params)


@contextmanager
def no_check_constraints(table: str, name: str):
    """Let rows break a CHECK constraint, as a load with constraints off would."""
    if connection.features.guard_dialect == "postgresql":
        sql("SET CONSTRAINTS ALL IMMEDIATE")  # no deferred FK checks pending on the table
        sql(f"ALTER TABLE {table} DROP CONSTRAINT {name}")
        yield
    else:
        sql("PRAGMA ignore_check_constraints = 1")
        try:
            yield
        finally:
            sql("PRAGMA ignore_check_constraints = 0")


def drop_index(name: str) -> None:
    """A unique index lost (a table rebuilt or restored without it)."""
    sql(f"DROP INDEX {name}")


def test_every_integrity_check_passes_on_a_healthy_database(ledger, post, clerk, approver, beat):
    post(ledger.cash, ledger.revenue, "10.00")
    beat()
    check_run = services.checks_run(trigger="command", tags=["integrity"])
    failing = {r.check_name: r.status for r in check_run.results.exclude(status="pass")}
    assert failing == {}


def test_row_deleted_around_the_trail_is_an_orphan_audit_reference(admin_user):
    account = finance.account_create(code="1990", name="Petty cash", type="asset", currency="USD")
    kept = finance.account_create(
        code="1991", name="Deleted properly", type="asset", currency="USD"
    )
    finance.account_delete(account=kept)  # recorded as account.deleted: not an orphan
    sql("DELETE FROM finance_accountbalance WHERE account_id = %s", [account.pk])
    sql("DELETE FROM finance_account WHERE id = %s", [account.pk])
    r, findings = result(run("integrity.audit_references"), "integrity.audit_references")
    assert r.status == "fail"
    [finding] = findings
    assert finding.object_type == "finance.account" and finding.sample == [str(account.pk)]
    assert firing("integrity.audit_references")
    with pytest.raises(CommandError) as exc:
        call_command("run_checks", "--check", "integrity.audit_references")
    assert exc.value.returncode == 1


def test_user_deleted_by_raw_sql_leaves_an_orphan_actor():
    user = UserFactory(username="ghost")
    audit_record(action="auth.login", obj=user, actor=user)
    sql("DELETE FROM auth_user WHERE id = %s", [user.pk])
    r, findings = result(run("integrity.audit_references"), "integrity.audit_references")
    assert r.status == "fail"
    assert {(f.key, tuple(f.sample)) for f in findings} == {
        ("object", (str(user.pk),)),
        ("actor", (user.pk,)),
    }


def test_dead_letter_pointing_at_a_missing_entry(ledger):
    waiting = DeadLetterFactory(
        operation="finance.journal_entry_post", payload={"entry_id": 987654, "actor_id": 1}
    )
    DeadLetterFactory(
        operation="finance.journal_entry_post",
        status="discarded",
        discarded_at=timezone.now(),
        payload={"entry_id": 9876},
    )
    garbled = DeadLetterFactory(
        operation="finance.journal_entry_post", payload={"entry_id": "12; DROP TABLE x"}
    )
    r, findings = result(run("integrity.json_references"), "integrity.json_references")
    assert r.status == "fail"
    by_key = {f.key: f.sample for f in findings}
    assert by_key["entry_id"] == [waiting.pk, garbled.pk]  # not a number: cannot point at a row
    DeadLetter.objects.filter(pk=garbled.pk).delete()
    DeadLetter.objects.filter(pk=waiting.pk).update(status="discarded", discarded_at=timezone.now())
    assert result(run("integrity.json_references"), "integrity.json_references")[0].status == "pass"
    assert not firing("integrity.json_references")


def test_row_breaking_a_check_constraint(ledger):
    with no_check_constraints("finance_account", "finance_account_type_valid"):
        sql("UPDATE finance_account SET type = 'bogus' WHERE id = %s", [ledger.cash.pk])
        r, findings = result(run("integrity.model_constraints"), "integrity.model_constraints")
        assert r.status == "fail"
        [finding] = findings
        assert finding.key == "finance_account_type_valid" and finding.sample == [ledger.cash.pk]
        assert firing("integrity.model_constraints")
        sql("UPDATE finance_account SET type = 'asset' WHERE id = %s", [ledger.cash.pk])
        assert (
            result(run("integrity.model_constraints"), "integrity.model_constraints")[0].status
            == "pass"
        )
    assert not firing("integrity.model_constraints")


def test_duplicate_business_key_after_a_unique_index_went_missing(ledger, clerk):
    drop_index("finance_entry_number_unique_per_year")
    drafts = [
        finance.journal_entry_create(
            entry_date=ledger.today,
            description="d",
            created_by=clerk,
            lines=[
                {"account": ledger.cash, "side": "D", "amount": Decimal("1")},
                {"account": ledger.revenue, "side": "C", "amount": Decimal("1")},
            ],
        ).pk
        for _ in range(2)
    ]
    sql(
        "UPDATE finance_journalentry SET fiscal_year = 2001, number = 7 WHERE id IN (%s, %s)",
        drafts,
    )
    r, findings = result(run("integrity.duplicate_keys"), "integrity.duplicate_keys")
    assert r.status == "fail"
    [finding] = findings
    assert finding.object_type == "finance.journalentry"
    assert finding.key == "finance_entry_number_unique_per_year"
    assert finding.sample == [{"fiscal_year": 2001, "number": 7, "rows": 2}]


def test_unapplied_migration_is_found():
    newest = MigrationRecorder.Migration.objects.filter(app="integrity").latest("id")
    newest.delete()  # as after a deploy that skipped `migrate`
    r, findings = result(run("integrity.migrations_applied"), "integrity.migrations_applied")
    assert r.status == "fail" and findings[0].sample == [f"integrity.{newest.name}"]
    assert Alert.objects.get(source="checks", key="integrity.migrations_applied").severity == (
        "critical"
    )


def test_impossible_states_of_operations_rows():
    letter = DeadLetterFactory(operation="x", status="resolved")
    r, findings = result(run("integrity.impossible_states"), "integrity.impossible_states")
    assert r.status == "fail"
    assert [(f.key, f.sample) for f in findings] == [("resolved without resolved_at", [letter.pk])]


def test_scheduler_heartbeat_missing_then_stale_then_fresh(settings, beat):
    assert result(run("integrity.scheduler_alive"), "integrity.scheduler_alive")[0].status == "fail"
    beat(age=settings.ALERT_HEARTBEAT_MAX_AGE_SECONDS + 60)
    r, findings = result(run("integrity.scheduler_alive"), "integrity.scheduler_alive")
    assert r.status == "fail" and "last scheduler heartbeat" in findings[0].message
    assert firing("integrity.scheduler_alive")
    beat()
    assert result(run("integrity.scheduler_alive"), "integrity.scheduler_alive")[0].status == "pass"
    assert not firing("integrity.scheduler_alive")


def test_dead_letter_queue_check_shares_the_queue_alert(settings):
    settings.DEADLETTER_ALERT_COUNT = 2
    for _ in range(2):
        DeadLetterFactory(operation="x", status="pending")
    r, _ = result(run("integrity.deadletter_queue"), "integrity.deadletter_queue")
    assert r.status == "warn"  # a warning check: it never fails
    assert firing("queue", source="deadletters")
    services.deadletter_queue_check()  # the five-minute job: the same alert, not a second one
    assert Alert.objects.filter(source="deadletters", key="queue").count() == 1
    DeadLetter.objects.update(status="discarded", discarded_at=timezone.now())
    run("integrity.deadletter_queue")
    assert not firing("queue", source="deadletters")


def test_audit_verification_recent(settings):
    # A new install (trail younger than the limit) has had no night to verify in yet.
    audit_record(action="auth.login")
    assert result(run("audit.verification_recent"), "audit.verification_recent")[0].status == (
        "pass"
    )
    settings.AUDIT_VERIFY_MAX_AGE_HOURS = 0
    r, findings = result(run("audit.verification_recent"), "audit.verification_recent")
    assert r.status == "fail" and findings[0].key == "never"
    settings.AUDIT_VERIFY_MAX_AGE_HOURS = 26
    chain_verify()
    assert result(run("audit.verification_recent"), "audit.verification_recent")[0].status == (
        "pass"
    )


def test_keys_and_check_constraints_the_database_enforces_are_trusted_not_rescanned():
    assert unique_enforced(AuditEvent, ["hash"])
    assert unique_enforced(JournalLine, ["entry_id", "line_no"])
    # The partial index counts for its own conditional constraint only.
    number = ["fiscal_year", "number"]
    name = "finance_entry_number_unique_per_year"
    assert unique_enforced(JournalEntry, number, name=name, conditional=True)
    assert not unique_enforced(JournalEntry, number)
    assert not unique_enforced(JournalEntry, number, name="another", conditional=True)
    drop_index(name)
    assert not unique_enforced(JournalEntry, number, name=name, conditional=True)
    postgres = connection.features.guard_dialect == "postgresql"
    # SQLite can be told to ignore CHECK constraints, so they are never trusted there.
    assert check_enforced(JournalLine, "finance_line_amount_positive") is postgres


def test_a_check_constraint_re_added_not_valid_is_scanned_again(ledger):
    with no_check_constraints("finance_account", "finance_account_type_valid"):
        sql("UPDATE finance_account SET type = 'bogus' WHERE id = %s", [ledger.cash.pk])
        if connection.features.guard_dialect == "postgresql":
            sql(
                "ALTER TABLE finance_account ADD CONSTRAINT finance_account_type_valid "
                "CHECK (type = 'asset') NOT VALID"
            )
        assert not check_enforced(Account, "finance_account_type_valid")
        r, findings = result(run("integrity.model_constraints"), "integrity.model_constraints")
        assert r.status == "fail" and findings[0].sample == [ledger.cash.pk]


def test_orphan_actors_are_found_among_many_actors_whatever_their_order():
    """The actors are visited one distinct id at a time (a loose index scan): an unrecorded
    deletion is found between and after kept actors, a recorded one is not, and events without
    an actor are skipped."""
    first, gone, kept, last = (UserFactory(username=n) for n in ("a1", "a2", "a3", "a4"))
    for user in (first, gone, kept, last, first, gone):
        audit_record(action="auth.login", actor=user)
    audit_record(action="auth.login")  # no actor
    audit_record(action="admin.deleted", obj=kept, actor=first)  # its deletion is recorded
    for user in (gone, kept, last):
        sql("DELETE FROM auth_user WHERE id = %s", [user.pk])
    r, findings = result(run("integrity.audit_references"), "integrity.audit_references")
    assert r.status == "fail"
    actors = [f for f in findings if f.key == "actor"]
    assert [(f.count, f.sample) for f in actors] == [(2, [gone.pk, last.pk])]
