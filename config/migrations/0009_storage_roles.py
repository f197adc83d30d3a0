from django.db import migrations

from config.roles import sync_roles


class Migration(migrations.Migration):
    """Auditors, operators and admins see the daily storage figures (database growth)."""

    dependencies = [
        ("config", "0008_snapshot_roles"),
        ("monitoring", "0009_daily_storage"),
    ]

    operations = [migrations.RunPython(sync_roles, migrations.RunPython.noop)]
