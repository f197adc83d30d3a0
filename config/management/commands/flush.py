"""Django's flush, with the row guards stood down for the whole-table wipe.

On PostgreSQL flush uses TRUNCATE, which row triggers never see but the audit trail's
statement triggers refuse; on SQLite it deletes rows, which the immutability triggers refuse.
The ledger's guards stand down for a flush; the audit trail's only where AUDIT_ALLOW_FLUSH is
on (test databases), so a flush of a production database fails and changes nothing.
"""

from django.core.management.commands import flush
from django.db import connections

from audit.db_guards import stand_down_for_flush
from config.db.maintenance import maintenance


class Command(flush.Command):
    def handle(self, **options):
        connection = connections[options["database"]]
        with maintenance(), stand_down_for_flush(connection):
            return super().handle(**options)
