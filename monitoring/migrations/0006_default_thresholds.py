from django.db import migrations

# The thresholds shipped as defaults (docs/monitoring.md, Thresholds); admins edit them.
DEFAULTS = [
    {
        "name": "p95-latency",
        "metric": "latency_p95_ms",
        "comparison": "above",
        "value": 500,
        "clear_value": 400,
        "for_minutes": 10,
        "severity": "error",
        "description": "Requests got slow: the p95 latency of all requests above 500 ms.",
    },
    {
        "name": "error-rate",
        "metric": "error_rate_percent",
        "comparison": "above",
        "value": 2,
        "clear_value": 1,
        "for_minutes": 5,
        "severity": "critical",
        "description": "More than 2 percent of requests are answered 5xx.",
    },
    {
        "name": "disk-free",
        "metric": "disk_free_percent",
        "comparison": "below",
        "value": 10,
        "clear_value": 15,
        "for_minutes": 5,
        "severity": "critical",
        "description": "The database volume has less than 10 percent free.",
    },
    {
        "name": "days-until-disk-full",
        "metric": "days_until_disk_full",
        "comparison": "below",
        "value": 14,
        "clear_value": 21,
        "for_minutes": 60,
        "severity": "warning",
        "description": "At the current growth the database volume is full in under 14 days.",
    },
    {
        "name": "queue-backlog",
        "metric": "queue_oldest_age_seconds",
        "comparison": "above",
        "value": 300,
        "clear_value": 60,
        "for_minutes": 5,
        "severity": "error",
        "description": "A queued task has waited more than 5 minutes for a worker.",
    },
    {
        "name": "deadlocks-rising",
        "metric": "deadlocks_per_hour",
        "comparison": "above",
        "value": 0,
        "clear_value": 0,
        "for_minutes": 0,
        "severity": "warning",
        "description": "PostgreSQL reported deadlocks in the last hour.",
    },
]


def add_defaults(apps, schema_editor):
    Threshold = apps.get_model("monitoring", "Threshold")
    for values in DEFAULTS:
        Threshold.objects.get_or_create(name=values["name"], defaults=values)


class Migration(migrations.Migration):
    dependencies = [("monitoring", "0005_thresholds")]

    operations = [migrations.RunPython(add_defaults, migrations.RunPython.noop)]
