"""The monitoring app's audit actions: `<entity>.<verb>`, past tense, each with what it records.

Part of the catalogue of every action, `audit.actions.catalogue()`."""

ACTIONS: dict[str, str] = {
    # monitoring/services.py
    "error_group.resolved": "an error group was marked fixed",
    "error_group.ignored": "an error group was ignored (counted, never alerted)",
    "error_group.reopened": "an error group was set back to unresolved",
    # monitoring/services/thresholds.py
    "threshold.created": "an admin added a threshold (its fields)",
    "threshold.changed": "an admin changed a threshold (what changed, before and after)",
    "threshold.deleted": "an admin deleted a threshold",
}
