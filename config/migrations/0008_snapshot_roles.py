from django.db import migrations

from config.roles import sync_roles


class Migration(migrations.Migration):
    """Auditors, operators and admins see the database and host snapshots."""

    dependencies = [
        ("config", "0007_slow_request_roles"),
        ("monitoring", "0008_database_snapshots"),
    ]

    operations = [migrations.RunPython(sync_roles, migrations.RunPython.noop)]
