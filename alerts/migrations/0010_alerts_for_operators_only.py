from django.db import migrations

from config.roles import revoke_roles


class Migration(migrations.Migration):
    """Alerts are for operators and admins only: auditors lose the view permissions."""

    dependencies = [("alerts", "0009_delivery_summaries")]

    operations = [migrations.RunPython(revoke_roles, migrations.RunPython.noop)]
