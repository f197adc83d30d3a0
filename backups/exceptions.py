"""Errors of the backups app, with their stable codes (docs/backups.md lists them)."""

from config.errors import Conflict, DomainError


class BackupError(DomainError):
    """A backup, verification, drill or restore could not be done; the message says why in one
    line (the tool's own last line where a tool failed)."""

    code = "backup.failed"
    http_status = 500


class BackupNotRestorable(DomainError):
    """The backup has no stored object (it failed, or retention removed it)."""

    code = "backup.not_restorable"
    http_status = 409


class RestoreTargetNotEmpty(Conflict):
    """A restore refuses a database that already holds tables, unless forced."""

    code = "restore.target_not_empty"


class BackupCorrupt(BackupError):
    """The stored object does not read back as it was written (checksum, tampering, truncation,
    a wrong key)."""

    code = "backup.corrupt"


class BackupKeyMissing(BackupError):
    """The backup is encrypted and BACKUP_ENCRYPTION_KEY is not set (or is not 32 bytes)."""

    code = "backup.key_missing"
