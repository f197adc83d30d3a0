from django.db import migrations

from audit import db_guards


class Migration(migrations.Migration):
    dependencies = [("audit", "0002_guards_head_roles")]

    operations = [
        migrations.RunPython(
            db_guards.install_sqlite_replace_guards, db_guards.uninstall_sqlite_replace_guards
        )
    ]
