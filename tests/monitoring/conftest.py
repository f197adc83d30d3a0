from dataclasses import dataclass, field
from threading import Lock
from typing import Any

import pytest

from monitoring.services import errors as services


@dataclass
class AlertLog:
    raised: list[dict[str, Any]] = field(default_factory=list)
    resolved: list[dict[str, Any]] = field(default_factory=list)
    lock: Lock = field(default_factory=Lock)

    def titles(self) -> list[str]:
        return [a["title"] for a in self.raised]


@pytest.fixture
def alerts(monkeypatch) -> AlertLog:
    """Alerts sent through the contract by the error log (thread-safe)."""
    log = AlertLog()

    def raise_alert(**kwargs):
        with log.lock:
            log.raised.append(kwargs)

    def resolve_alert(**kwargs):
        with log.lock:
            log.resolved.append(kwargs)

    monkeypatch.setattr(services, "raise_alert", raise_alert)
    monkeypatch.setattr(services, "resolve_alert", resolve_alert)
    return log
