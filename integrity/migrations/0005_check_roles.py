from django.db import migrations

from config.roles import sync_roles


class Migration(migrations.Migration):
    """Grant the check permissions to the roles (config/roles.py)."""

    dependencies = [("integrity", "0004_check_runs"), ("config", "0003_lockout_roles")]

    operations = [migrations.RunPython(sync_roles, migrations.RunPython.noop)]
