from django.db import migrations

from config.roles import sync_roles


class Migration(migrations.Migration):
    """Admins see and clear login lockouts (django-axes)."""

    dependencies = [
        ("config", "0002_roles"),
        ("axes", "0010_accessattemptexpiration"),
    ]

    operations = [migrations.RunPython(sync_roles, migrations.RunPython.noop)]
