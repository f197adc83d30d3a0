"""Plain writes through the API from several clients at once: drafts created, edited, deleted,
submitted, approved and reversed against the same accounts and period. Every answer is a
success or a documented refusal, never a 500 (on PostgreSQL a deadlock between the audit chain
head and the fiscal period once made some of them 500s)."""

import random
import threading
import time
from collections import Counter

import pytest
from rest_framework.test import APIClient

from audit import services as audit_services
from tests.threads import run_threads

CLIENTS = 4
SECONDS = 4.0


def _lines(ledger, amount: str) -> list[dict]:
    return [
        {"account": ledger.expense.pk, "side": "D", "amount": amount},
        {"account": ledger.overdraft.pk, "side": "C", "amount": amount},
    ]


@pytest.mark.django_db(transaction=True)
def test_concurrent_plain_writes_never_answer_500(ledger, make_user):
    clerks = [make_user("finance_clerk") for _ in range(CLIENTS)]
    approvers = [make_user("finance_approver") for _ in range(CLIENTS)]
    statuses: Counter = Counter()
    problems: list[str] = []
    lock = threading.Lock()
    deadline = time.monotonic() + SECONDS

    def note(step: str, response) -> dict:
        with lock:
            statuses[response.status_code] += 1
            if response.status_code >= 500:
                problems.append(f"{step}: {response.status_code} {response.content[:300]!r}")
        return response.json() if response.content else {}

    def client_loop(i: int) -> None:
        rng = random.Random(i)
        clerk, approver = APIClient(), APIClient()
        clerk.force_authenticate(clerks[i])
        approver.force_authenticate(approvers[i])
        while time.monotonic() < deadline:
            amount = f"{rng.randint(1, 500)}.{rng.randint(0, 99):02d}"
            body = {
                "entry_date": str(ledger.today),
                "description": f"c{i}",
                "lines": _lines(ledger, amount),
            }
            entry = note("create", clerk.post("/api/v1/entries/", body, format="json"))
            if "id" not in entry:
                continue
            url = f"/api/v1/entries/{entry['id']}/"
            choice = rng.random()
            if choice < 0.25:
                note("edit", clerk.patch(url, {"description": "edited"}, format="json"))
                note("delete", clerk.delete(url))
                continue
            note("submit", clerk.post(url + "submit/"))
            if choice < 0.4:
                note("reject", approver.post(url + "reject/", {"reason": "no"}, format="json"))
                continue
            note("approve", approver.post(url + "approve/"))
            if choice < 0.7:
                note("reverse", approver.post(url + "reverse/", {}, format="json"))

    errors = run_threads(client_loop, CLIENTS)
    assert not errors, errors[:3]
    assert not problems, problems[:5]
    assert statuses[201] + statuses[200] > 20, statuses  # real work happened
    assert audit_services.chain_verify(triggered_by="test").status == "ok"
