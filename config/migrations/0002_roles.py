from django.db import migrations

from config.roles import sync_roles


class Migration(migrations.Migration):
    dependencies = [
        ("config", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("finance", "0002_ledger_guards"),
        ("integrity", "0001_initial"),
        ("django_q", "0018_task_success_index"),
    ]

    operations = [migrations.RunPython(sync_roles, migrations.RunPython.noop)]
