from django.db import migrations

from config.roles import sync_roles


class Migration(migrations.Migration):
    """Auditors, operators and admins see the slow requests and queries."""

    dependencies = [
        ("config", "0006_monitoring_roles"),
        ("monitoring", "0007_slow_requests_and_queries"),
    ]

    operations = [migrations.RunPython(sync_roles, migrations.RunPython.noop)]
