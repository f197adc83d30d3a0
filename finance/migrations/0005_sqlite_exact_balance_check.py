from django.db import migrations

from finance import db_guards


class Migration(migrations.Migration):
    dependencies = [("finance", "0004_balance_checkpoint")]

    operations = [
        migrations.RunPython(db_guards.reinstall_sqlite_balance_check, migrations.RunPython.noop)
    ]
