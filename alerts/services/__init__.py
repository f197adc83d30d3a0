"""The alert services, by concern: the contract every control reports through (contract),
escalation, delivery, acknowledgement, silences and the heartbeat.

Other apps, views, admin, tasks and tests import from here (`from alerts.services import
raise_alert`, `from alerts import services`). The reads that callers above use
(heartbeat_status, silenced_until) live in alerts.selectors and are named here too.
"""

from alerts.acklinks import ACK_SALT, ack_token
from alerts.selectors import heartbeat_status, route_policy, silenced_until
from alerts.services.acknowledge import (
    ack_link_check,
    alert_acknowledge,
    alert_acknowledge_by_token,
)
from alerts.services.contract import alert_resolve, alert_send_test, raise_alert, resolve_alert
from alerts.services.delivery import (
    delivery_retry_due,
    delivery_run,
    delivery_send,
    delivery_summaries_send,
    target_check,
)
from alerts.services.escalation import alert_escalate_due
from alerts.services.heartbeat import heartbeat_beat
from alerts.services.silences import silence_approve, silence_create, silence_expire

__all__ = [
    "ACK_SALT",
    "ack_link_check",
    "ack_token",
    "alert_acknowledge",
    "alert_acknowledge_by_token",
    "alert_escalate_due",
    "alert_resolve",
    "alert_send_test",
    "delivery_retry_due",
    "delivery_run",
    "delivery_send",
    "delivery_summaries_send",
    "heartbeat_beat",
    "heartbeat_status",
    "raise_alert",
    "resolve_alert",
    "route_policy",
    "silence_approve",
    "silence_create",
    "silence_expire",
    "silenced_until",
    "target_check",
]
