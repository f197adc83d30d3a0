"""Immutable, hash-chained audit log."""

from audit import db_guards

# config.appconfig as a module, not its class: see config/apps.py.
from config import appconfig
from config.events import Recorder, register_recorder


class AuditConfig(appconfig.ProjectApp):
    name = "audit"
    verbose_name = "Audit trail"

    def ready(self) -> None:
        # Imported here, not at the top: these modules reach the models, which Django loads
        # after the app configs.
        import audit.checks  # noqa: F401, PLC0415 - registers the system checks
        from audit import pending, services  # noqa: PLC0415
        from audit.receivers import connect  # noqa: PLC0415

        connect()  # the authentication signals
        # The plumbing (config/) records events, holds them until commit and guards the
        # database through these registrations; it never imports the trail.
        register_recorder(
            Recorder(
                record=services.audit_record,
                record_repeatable=services.audit_record_repeatable,
                diff=services.diff,
                snapshot=services.snapshot,
            )
        )
        pending.register()
        db_guards.register()
