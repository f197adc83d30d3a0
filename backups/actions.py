"""The backups control's audit actions:
`<entity>.<verb>`, past tense, each with what it records.

Part of the catalogue of every action, `audit.actions.catalogue()`."""

ACTIONS: dict[str, str] = {
    # backups/services/
    "backup.started": "a backup was started (trigger)",
    "backup.completed": "a backup was stored (location, size, SHA-256, seconds)",
    "backup.failed": "a backup failed (the reason)",
    "backup.retaken": "a backup whose worker died is taken again; what that worker stored "
    "was removed (names)",
    "backup.verified": "a stored backup read back as written (checksum and archive)",
    "backup.verification_failed": "a stored backup failed verification (step, reason)",
    "backup.drill_started": "a restore drill of a backup was started",
    "backup.drill_passed": "a restore drill passed (restore and check seconds)",
    "backup.drill_failed": "a restore drill failed (step, reason)",
    "backup.restored": "a backup was restored into a database (target, forced, unverified, "
    "seconds)",
    "backup.restore_failed": "a restore was refused or failed (target, the reason)",
    "backup.verify_requested": "a person asked for a backup's verification (run on a worker)",
    "backup.pruned": "retention removed a backup's stored object",
    "backup.downloaded": "an admin downloaded a stored backup",
}
