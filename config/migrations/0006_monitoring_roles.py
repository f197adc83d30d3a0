from django.db import migrations

from config.roles import sync_roles


class Migration(migrations.Migration):
    """Auditors, operators and admins see the database snapshots."""

    dependencies = [
        ("config", "0005_backup_roles"),
        ("monitoring", "0003_database_snapshots"),
    ]

    operations = [migrations.RunPython(sync_roles, migrations.RunPython.noop)]
