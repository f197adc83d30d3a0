"""The backups app's errors and their stable codes."""

from config.errors import DomainError


class BackupError(DomainError):
    """Base of the backups app's errors."""

    code = "backup.error"


class BackupCorrupt(BackupError):
    """A packed backup file that does not read back as written: altered, truncated, not a
    backup file at all, or of a format version this code does not know."""

    code = "backup.corrupt"


class BackupKeyMissing(BackupError):
    """The backup is encrypted and BACKUP_ENCRYPTION_KEY is not set."""

    code = "backup.key_missing"


class BackupKeyMismatch(BackupError):
    """The backup was encrypted with another key than the one given (or its header's key id
    was altered)."""

    code = "backup.key_mismatch"


class BackupMisconfigured(BackupError):
    """A backup setting has a value that cannot work; the message names the setting."""

    code = "backup.misconfigured"
    http_status = 503


class BackupKeyInvalid(BackupMisconfigured):
    """BACKUP_ENCRYPTION_KEY is set but is not 32 bytes in base64."""

    code = "backup.key_invalid"


class BackupNameInvalid(BackupError):
    """An object name that could leave the backup location (`..`, an absolute path) or that
    has characters outside the safe set."""

    code = "backup.name_invalid"
    http_status = 400


class BackupObjectMissing(BackupError):
    """No object of that name in the backup storage."""

    code = "backup.object_missing"
    http_status = 404


class BackupObjectExists(BackupError):
    """An object of that name is already stored: backups are never overwritten."""

    code = "backup.object_exists"
    http_status = 409


class BackupStorageFailed(BackupError):
    """The backup storage did not answer or refused the operation (a server down, refused
    credentials, a full or read-only disk)."""

    code = "backup.storage_failed"
    http_status = 503


class BackupFailed(BackupError):
    """A backup, verification, drill or restore did not succeed; the message says why in one
    line (the tool's own last line where a tool failed). The row records it too."""

    code = "backup.failed"


class BackupBusy(BackupError):
    """Another worker holds the backup or drill (its lease runs): this job is tried again."""

    code = "backup.busy"
    http_status = 409
    passes = True


class BackupNotRestorable(BackupError):
    """The backup has no stored object (it failed, or retention removed it)."""

    code = "backup.not_restorable"
    http_status = 409


class RestoreTargetNotEmpty(BackupError):
    """A restore refuses a database that already holds tables, unless forced."""

    code = "restore.target_not_empty"
    http_status = 409
