from django.db import migrations

from config.roles import sync_roles


class Migration(migrations.Migration):
    """Auditors, operators and admins see backups and drills; operators and admins take backups
    and run drills; admins download them."""

    dependencies = [
        ("config", "0004_groups_not_editable"),
        ("backups", "0001_initial"),
    ]

    operations = [migrations.RunPython(sync_roles, migrations.RunPython.noop)]
