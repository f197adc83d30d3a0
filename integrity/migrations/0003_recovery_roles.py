from django.db import migrations

from config.roles import sync_roles


class Migration(migrations.Migration):
    """Grant the dead-letter and error-log permissions to the roles (config/roles.py)."""

    dependencies = [
        ("integrity", "0002_dead_letters"),
        ("monitoring", "0001_initial"),
        ("config", "0002_roles"),
    ]

    operations = [migrations.RunPython(sync_roles, migrations.RunPython.noop)]
