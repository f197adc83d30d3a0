"""The alert contract every control reports through (DESIGN.md, "Contracts that the parts share").

    raise_alert(source=, key=, severity=, title=, details=)
    resolve_alert(source=, key=)

Until the alerting capability lands (routing, escalation, email/SMS/webhook delivery), these
two functions are the single place problems are reported: they write a structured warning to
the `ledgerguard.alerts` logger. Callers do not change when delivery arrives.
"""

import json
import logging
from typing import Any

logger = logging.getLogger("ledgerguard.alerts")

SEVERITIES = ("info", "warning", "error", "critical")
_LEVELS = {"info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR,
           "critical": logging.CRITICAL}  # fmt: skip


def raise_alert(
    *, source: str, key: str, severity: str, title: str, details: dict[str, Any] | None = None
) -> None:
    if severity not in SEVERITIES:
        raise ValueError(f"severity must be one of {SEVERITIES}, not {severity!r}")
    logger.log(
        _LEVELS[severity],
        "ALERT %s [%s/%s] %s %s",
        severity.upper(),
        source,
        key,
        title,
        json.dumps(details or {}, default=str, sort_keys=True),
        extra={
            "alert": {
                "source": source,
                "key": key,
                "severity": severity,
                "title": title,
                "details": details or {},
            }
        },
    )


def resolve_alert(*, source: str, key: str) -> None:
    logger.info(
        "ALERT RESOLVED [%s/%s]", source, key, extra={"alert": {"source": source, "key": key}}
    )
