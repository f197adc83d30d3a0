"""Django's flush, with the row guards stood down for the whole-table wipe.

On PostgreSQL flush uses TRUNCATE, which row triggers never see but the audit trail's
statement triggers refuse; on SQLite it deletes rows, which the immutability triggers refuse.
The apps register how their guards stand down (config/db/guards.py): the ledger's for any
flush, the audit trail's only where AUDIT_ALLOW_FLUSH is on (test databases), so a flush of a
production database fails and changes nothing.
"""

from django.core.management.commands import flush
from django.db import connections

from config.db.guards import flush_stand_down


class Command(flush.Command):
    def handle(self, **options):
        with flush_stand_down(connections[options["database"]]):
            return super().handle(**options)
