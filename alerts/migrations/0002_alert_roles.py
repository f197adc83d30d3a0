from django.db import migrations

from config.roles import sync_roles


class Migration(migrations.Migration):
    """Grant the alert permissions to the roles (config/roles.py)."""

    dependencies = [
        ("alerts", "0001_initial"),
        ("integrity", "0003_recovery_roles"),
    ]

    operations = [migrations.RunPython(sync_roles, migrations.RunPython.noop)]
