"""Alerting's audit actions: `<entity>.<verb>`, past tense, each with what it records.

Part of the catalogue of every action, `audit.actions.catalogue()`."""

ACTIONS: dict[str, str] = {
    # alerts/services/
    "alert.opened": "a new alert was raised (repeats are counted, not recorded)",
    "alert.escalated": "an open alert's severity was raised",
    "alert.acknowledged": "an alert was acknowledged (by a user or an emailed link)",
    "alert.ack_expired": "an acknowledged alert was not resolved in time and fires again",
    "alert.resolved": "an alert was resolved (by a user or by its source)",
    "alert.test_sent": "a test alert was delivered (manage.py send_test_alert)",
    "silence.created": "a silence was created",
    "silence.approved": "a silence was approved by a second operator",
    "silence.expired": "a silence was ended early",
}
