"""run_operation: all or nothing, retried on transient errors, else dead-lettered."""

import threading
import time
from decimal import Decimal

import psycopg
import pytest
from django.db import InterfaceError, OperationalError, connection, transaction
from django.db.utils import DatabaseError

from config.errors import DomainError
from finance import services as finance
from finance.models import Account, AccountBalance, AccountType
from integrity import services
from integrity.models import DeadLetter, OperationRecord
from integrity.transactions import (
    OperationFailed,
    OperationKeyReused,
    OperationUnavailable,
    backoff,
    is_transient,
    register_operation,
    run_operation,
)

BROKEN = {"on": True}


def make_account(ctx):
    return finance.account_create(
        code=ctx.payload["code"],
        name="Made by an operation",
        type=AccountType.ASSET,
        currency="USD",
    )


def flaky_step(ctx):
    if BROKEN["on"]:
        raise RuntimeError("downstream is broken")
    return ctx.previous.pk  # the account make_account returned


register_operation("test.make_account_then_flaky", make_account, flaky_step)


class Transient(OperationalError):
    sqlstate = "40001"


@pytest.fixture(autouse=True)
def _fixed():
    BROKEN["on"] = True
    yield
    BROKEN["on"] = True


def test_all_steps_commit_together_and_result_is_recorded(db):
    BROKEN["on"] = False
    pk = run_operation("test.make_account_then_flaky", payload={"code": "7001"})
    assert Account.objects.get(pk=pk).code == "7001"
    record = OperationRecord.objects.get(name="test.make_account_then_flaky")
    assert record.result == pk and record.attempts == 1


def test_permanent_failure_leaves_no_trace_and_a_full_dead_letter(db, alerts):
    with pytest.raises(OperationFailed) as exc:
        run_operation("test.make_account_then_flaky", payload={"code": "7002", "note": "é€"})
    assert not Account.objects.filter(code="7002").exists()  # step 1 rolled back
    assert not OperationRecord.objects.exists()
    letter = DeadLetter.objects.get(pk=exc.value.fields["dead_letter"])
    assert letter.operation == "test.make_account_then_flaky"
    assert letter.payload == {"code": "7002", "note": "é€"}
    assert letter.status == "pending" and letter.idempotency_key.startswith("op-")
    assert "downstream is broken" in letter.error and "flaky_step" in letter.traceback
    assert [e.action for e in letter.events.all()] == ["created"]
    assert ("operations", "test.make_account_then_flaky") in [
        (a["source"], a["key"]) for a in alerts
    ]


def test_retry_after_the_fix_completes_exactly_once(db, operator):
    with pytest.raises(OperationFailed) as exc:
        run_operation("test.make_account_then_flaky", payload={"code": "7003"})
    letter = DeadLetter.objects.get(pk=exc.value.fields["dead_letter"])
    failed = services.deadletter_retry(dead_letter=letter, actor=operator)
    assert failed.status == "pending" and failed.attempts == 1
    BROKEN["on"] = False
    done = services.deadletter_retry(dead_letter=letter, actor=operator)
    assert done.status == "resolved" and done.resolved_by == operator
    assert Account.objects.filter(code="7003").count() == 1
    with pytest.raises(DomainError) as again:
        services.deadletter_retry(dead_letter=letter, actor=operator)
    assert again.value.code == "deadletter.invalid_state"
    assert Account.objects.filter(code="7003").count() == 1
    assert [e.action for e in done.events.all()] == [
        "created",
        "retry",
        "retry_failed",
        "retry",
        "resolved",
    ]


def test_business_rule_errors_are_not_retried_or_dead_lettered(db):
    calls = []

    def refuse(ctx):
        calls.append(1)
        raise DomainError("No.", code="test.refused")

    with pytest.raises(DomainError) as exc:
        run_operation("test.refuse", [refuse])
    assert exc.value.code == "test.refused" and calls == [1]
    assert not DeadLetter.objects.exists()


def test_transient_errors_are_retried_with_backoff(db, settings):
    settings.OPERATION_RETRY_BASE_SECONDS = 0.01
    attempts = []

    def shaky(ctx):
        attempts.append(ctx.attempt)
        Account.objects.filter(code="none").update(name="x")  # some real work
        if ctx.attempt < 3:
            raise Transient("could not serialize access")
        return "ok"

    assert run_operation("test.shaky", [shaky]) == "ok"
    assert attempts == [1, 2, 3]
    assert OperationRecord.objects.get(name="test.shaky").attempts == 3


def test_exhausted_transient_errors_dead_letter_as_unavailable(db, settings):
    settings.OPERATION_RETRY_BASE_SECONDS = 0
    settings.OPERATION_MAX_ATTEMPTS = 2

    def always(ctx):
        raise Transient("deadlock detected")

    with pytest.raises(OperationUnavailable) as exc:
        run_operation("test.always_transient", [always], {"x": 1})
    assert exc.value.http_status == 503
    assert DeadLetter.objects.get().payload == {"x": 1}


def test_compensations_run_in_reverse_order_on_failure(db):
    undone = []

    def one(ctx):
        ctx.on_rollback(lambda: undone.append("one"))

    def two(ctx):
        ctx.on_rollback(lambda: undone.append("two"))
        raise RuntimeError("boom")

    with pytest.raises(OperationFailed):
        run_operation("test.compensate", [one, two])
    assert undone == ["two", "one"]


def test_idempotency_key_returns_first_result_and_refuses_other_payloads(db):
    BROKEN["on"] = False
    first = run_operation(
        "test.make_account_then_flaky", payload={"code": "7004"}, idempotency_key="k-1"
    )
    second = run_operation(
        "test.make_account_then_flaky", payload={"code": "7004"}, idempotency_key="k-1"
    )
    assert first == second and Account.objects.filter(code="7004").count() == 1
    with pytest.raises(OperationKeyReused):
        run_operation(
            "test.make_account_then_flaky", payload={"code": "7005"}, idempotency_key="k-1"
        )


def test_must_not_run_inside_another_transaction(transactional_db):
    with transaction.atomic(), pytest.raises(RuntimeError):
        run_operation("test.nested", [lambda ctx: None])


def test_classification():
    assert is_transient(Transient("x"))
    assert not is_transient(DomainError("rule"))
    assert not is_transient(ValueError("bug"))
    assert not is_transient(DatabaseError("syntax"))


# Real faults on PostgreSQL ------------------------------------------------------


def _killer(pid: int, delay: float) -> threading.Thread:
    s = connection.settings_dict
    dsn = psycopg.conninfo.make_conninfo(
        dbname=s["NAME"],
        user=s["USER"],
        password=s["PASSWORD"] or None,
        host=s["HOST"] or None,
        port=s["PORT"] or None,
    )

    def kill():
        time.sleep(delay)
        with psycopg.connect(dsn, autocommit=True) as other:
            other.execute("SELECT pg_terminate_backend(%s)", [pid])

    thread = threading.Thread(target=kill)
    thread.start()
    return thread


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_terminated_backend_is_retried_and_completes_once(settings):
    settings.OPERATION_RETRY_BASE_SECONDS = 0.01
    threads = []

    def slow_write(ctx):
        finance.account_create(
            code=f"71{ctx.attempt:02d}", name="attempt", type="asset", currency="USD"
        )
        if ctx.attempt == 1:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                threads.append(_killer(cursor.fetchone()[0], 0.3))
                cursor.execute("SELECT pg_sleep(5)")  # terminated mid-way
        return ctx.attempt

    assert run_operation("test.killed_backend", [slow_write]) == 2
    for t in threads:
        t.join()
    # The first attempt's write died with its backend; the second committed.
    assert list(Account.objects.filter(code__startswith="71").values_list("code", flat=True)) == [
        "7102"
    ]
    assert not DeadLetter.objects.exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_serialization_failure_between_two_transactions_is_retried(ledger, settings):
    """Write skew under SERIALIZABLE: both read, both write; one must retry."""
    settings.OPERATION_RETRY_BASE_SECONDS = 0.01
    barrier = threading.Barrier(2, timeout=10)
    attempts: list[tuple[str, int]] = []
    errors: list[BaseException] = []

    def skew(ctx):
        me, other = ctx.payload["me"], ctx.payload["other"]
        attempts.append((me, ctx.attempt))
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT sum(debit_total) FROM finance_accountbalance WHERE account_id IN (%s, %s)",
                [me, other],
            )
            total = cursor.fetchone()[0]
            if ctx.attempt == 1:
                barrier.wait()  # both have read before either writes
            cursor.execute(
                "UPDATE finance_accountbalance SET debit_total = %s + 1 WHERE account_id = %s",
                [total, me],
            )
        return total

    def run(me, other):
        try:
            run_operation("test.skew", [skew], {"me": me, "other": other}, isolation="SERIALIZABLE")
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    a, b = ledger.cash.pk, ledger.expense.pk
    threads = [threading.Thread(target=run, args=(a, b)), threading.Thread(target=run, args=(b, a))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    assert sorted(n for _, n in attempts).count(2) == 1  # exactly one retry
    balances = sorted([finance_balance(a), finance_balance(b)])
    assert balances == [1, 2]  # the retried one saw the other's write


def finance_balance(account_id):
    return int(AccountBalance.objects.get(account_id=account_id).debit_total)


@pytest.mark.django_db(transaction=True)
def test_lost_answer_to_a_commit_returns_the_committed_result_without_compensating(monkeypatch):
    """The COMMIT went through but the connection died before its answer arrived."""
    real_commit, lost, undone = connection.commit, [], []

    def commit_then_lose_the_answer():
        real_commit()
        if not lost:
            lost.append(1)
            raise InterfaceError("connection already closed")

    def refundable(ctx):
        ctx.on_rollback(lambda: undone.append("refund"))
        return ctx.previous.pk

    monkeypatch.setattr(connection, "commit", commit_then_lose_the_answer)
    pk = run_operation("test.lost_answer", [make_account, refundable], {"code": "7010"})
    assert lost == [1]
    assert Account.objects.get(pk=pk).code == "7010"
    assert Account.objects.filter(code="7010").count() == 1
    assert undone == [] and not DeadLetter.objects.exists()


def test_dict_results_with_models_are_stored(db):
    def make(ctx):
        return {"account": make_account(ctx), "note": "ok"}

    result = run_operation("test.dict_result", [make], {"code": "7011"}, idempotency_key="d-1")
    again = run_operation("test.dict_result", [make], {"code": "7011"}, idempotency_key="d-1")
    assert again == result and again["account"].code == "7011"


def test_payload_must_be_json(db):
    with pytest.raises(TypeError):
        run_operation("test.bad_payload", [lambda ctx: None], {"amount": Decimal("1")})


def test_lookups_that_fail_are_not_dead_lettered(db):
    def missing(ctx):
        return Account.objects.get(code="nope")

    with pytest.raises(Account.DoesNotExist):
        run_operation("test.missing", [missing])
    assert not DeadLetter.objects.exists()


def test_backoff_is_exponential_with_full_jitter_and_capped(settings):
    settings.OPERATION_RETRY_BASE_SECONDS = 0.1
    settings.OPERATION_RETRY_MAX_SECONDS = 1.0
    for attempt, ceiling in [(1, 0.1), (2, 0.2), (3, 0.4), (6, 1.0), (20, 1.0)]:
        samples = [backoff(attempt) for _ in range(300)]
        assert all(0 <= s <= ceiling for s in samples)
        assert max(samples) > ceiling * 0.8 and min(samples) < ceiling * 0.2  # jittered
