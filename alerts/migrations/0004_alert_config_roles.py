from django.db import migrations

from config.roles import sync_roles


class Migration(migrations.Migration):
    """Grant routing, policy and target management to the admin role (config/roles.py)."""

    dependencies = [("alerts", "0003_routing_escalation_delivery")]

    operations = [migrations.RunPython(sync_roles, migrations.RunPython.noop)]
