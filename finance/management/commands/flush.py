"""Django's flush, with the ledger's row guards stood down for the whole-table wipe.

On PostgreSQL flush uses TRUNCATE, which row triggers never see; on SQLite it deletes rows,
which the immutability triggers would refuse. Wiping everything is what flush is for.
"""

from django.core.management.commands import flush

from finance.db_guards import maintenance


class Command(flush.Command):
    def handle(self, **options):
        with maintenance():
            return super().handle(**options)
