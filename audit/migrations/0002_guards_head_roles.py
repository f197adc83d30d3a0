from django.db import migrations

from audit import db_guards
from config.roles import sync_roles


def create_head(apps, schema_editor):
    apps.get_model("audit", "ChainHead").objects.get_or_create(pk=1)


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0001_initial"),
        ("config", "0002_roles"),
    ]

    operations = [
        migrations.RunPython(create_head, migrations.RunPython.noop),
        migrations.RunPython(db_guards.install, db_guards.uninstall),
        migrations.RunPython(sync_roles, migrations.RunPython.noop),
    ]
