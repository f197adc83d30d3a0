from django.db import migrations

from config.roles import sync_roles


class Migration(migrations.Migration):
    """Operators and admins manage silences (config/roles.py)."""

    dependencies = [("alerts", "0006_silences")]

    operations = [migrations.RunPython(sync_roles, migrations.RunPython.noop)]
