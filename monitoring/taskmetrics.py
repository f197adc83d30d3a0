"""What the task queue holds now and what tasks did lately, read from the database: the queue
(django-q2's ORM broker, OrmQ: `lock` is when a task became due, moved forward while a worker
holds it) and the task buckets the cluster's monitor writes (monitoring/receivers.py).

Served at /metrics by a collector that reads these at each scrape: the web processes cannot
see the cluster's own counters (another process, with no shared metrics directory)."""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

from django.db import DatabaseError
from django.db.models import Max, Min, Sum
from django.utils import timezone
from django_q.conf import Conf
from django_q.models import OrmQ
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from monitoring.models import TaskBucket

# The window of the recent task figures at /metrics.
RECENT = timedelta(minutes=15)


@dataclass(frozen=True)
class QueueFigures:
    queued: int  # due and waiting for a worker
    in_flight: int  # held by a worker (or a failure waiting for its retry)
    oldest_age_seconds: float  # how long the oldest due task has waited; 0 when none waits


def queue_figures() -> QueueFigures:
    now = timezone.now()
    mine = OrmQ.objects.using(Conf.ORM).filter(key=Conf.CLUSTER_NAME)
    waiting = mine.filter(lock__lte=now)
    oldest = waiting.aggregate(oldest=Min("lock"))["oldest"]
    return QueueFigures(
        queued=waiting.count(),
        in_flight=mine.filter(lock__gt=now).count(),
        oldest_age_seconds=(now - oldest).total_seconds() if oldest else 0.0,
    )


class TaskCollector(Collector):
    """Queue depth and age, and the last 15 minutes of task runs per function and outcome."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            yield from self._collect()
        except DatabaseError:
            # The database is down: the scrape still has the request metrics (in memory) and
            # says the task figures are missing.
            yield GaugeMetricFamily(
                "ledgerguard_task_metrics_up", "The task figures could be read.", value=0
            )

    def _collect(self) -> Iterator[GaugeMetricFamily]:
        queue = queue_figures()
        yield GaugeMetricFamily(
            "ledgerguard_task_queue_depth",
            "Tasks due and waiting for a worker.",
            value=queue.queued,
        )
        yield GaugeMetricFamily(
            "ledgerguard_task_queue_in_flight", "Tasks a worker holds.", value=queue.in_flight
        )
        yield GaugeMetricFamily(
            "ledgerguard_task_queue_oldest_age_seconds",
            "How long the oldest due task has waited.",
            value=queue.oldest_age_seconds,
        )
        runs = GaugeMetricFamily(
            "ledgerguard_task_runs_15m",
            "Task runs finished in the last 15 minutes, by function and outcome.",
            labels=["func", "outcome"],
        )
        seconds = GaugeMetricFamily(
            "ledgerguard_task_run_seconds_15m",
            "Time task runs of the last 15 minutes took, by function and outcome.",
            labels=["func", "outcome"],
        )
        longest = GaugeMetricFamily(
            "ledgerguard_task_run_seconds_max_15m",
            "The longest task run of the last 15 minutes, by function and outcome.",
            labels=["func", "outcome"],
        )
        recent = (
            TaskBucket.objects.filter(minute__gte=timezone.now() - RECENT)
            .values("func", "outcome")
            .annotate(n=Sum("count"), total=Sum("run_seconds_sum"), top=Max("run_seconds_max"))
            .order_by("func", "outcome")
        )
        for row in recent:
            labels = [row["func"], row["outcome"]]
            runs.add_metric(labels, row["n"])
            seconds.add_metric(labels, row["total"])
            longest.add_metric(labels, row["top"])
        yield runs
        yield seconds
        yield longest
