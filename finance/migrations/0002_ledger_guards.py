from django.db import migrations

from finance import db_guards


class Migration(migrations.Migration):
    dependencies = [("finance", "0001_initial")]

    operations = [migrations.RunPython(db_guards.install, db_guards.uninstall)]
