from django.db import migrations

from config.roles import revoke_roles


class Migration(migrations.Migration):
    """Roles are edited in code: the admin role loses auth.change_group."""

    dependencies = [("config", "0003_lockout_roles")]

    operations = [migrations.RunPython(revoke_roles, migrations.RunPython.noop)]
