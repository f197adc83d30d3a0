from django.db import migrations

# The shipped queue-backlog threshold held its 300 s breach for 5 more minutes, so it fired
# when a task had waited about 10 minutes. A waiting task's age only grows: the age itself is
# the hold, and the alert is due at 5 minutes. Changed only where the row is still exactly as
# shipped (an admin's edit of any of its settings or its description is left alone).
SHIPPED = {
    "name": "queue-backlog",
    "metric": "queue_oldest_age_seconds",
    "comparison": "above",
    "value": 300,
    "clear_value": 60,
    "severity": "error",
}
BEFORE = "A queued task has waited more than 5 minutes for a worker."
AFTER = "A due task has waited more than 5 minutes for a worker."


def forwards(apps, schema_editor):
    Threshold = apps.get_model("monitoring", "Threshold")
    Threshold.objects.filter(**SHIPPED, for_minutes=5, description=BEFORE).update(
        for_minutes=0, description=AFTER
    )


def backwards(apps, schema_editor):
    Threshold = apps.get_model("monitoring", "Threshold")
    Threshold.objects.filter(**SHIPPED, for_minutes=0, description=AFTER).update(
        for_minutes=5, description=BEFORE
    )


class Migration(migrations.Migration):
    dependencies = [("monitoring", "0009_daily_storage")]

    operations = [migrations.RunPython(forwards, backwards)]
