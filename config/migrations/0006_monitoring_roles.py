from django.db import migrations

from config.roles import sync_roles


class Migration(migrations.Migration):
    """Auditors, operators and admins see the metrics' tables and the thresholds; admins edit
    the thresholds."""

    dependencies = [
        ("config", "0005_backup_roles"),
        ("monitoring", "0006_default_thresholds"),
    ]

    operations = [migrations.RunPython(sync_roles, migrations.RunPython.noop)]
