from django_q.models import Schedule

from config.schedules import declared_jobs


def test_error_log_purge_runs_daily_at_half_past_three():
    job = next(j for j in declared_jobs() if j.name == "monitoring.purge_error_log")
    assert job.func == "monitoring.tasks.purge_error_log"
    assert job.schedule_type == Schedule.CRON and job.cron == "30 3 * * *"
