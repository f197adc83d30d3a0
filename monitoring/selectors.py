"""Reads of the monitoring app's metrics (the API and the admin)."""

from django.db.models import QuerySet

from monitoring.models import (
    DailyStatistic,
    RequestBucket,
    SlowQuery,
    SlowRequest,
    TaskBucket,
    Threshold,
)


def request_buckets_list() -> QuerySet[RequestBucket]:
    return RequestBucket.objects.order_by("-minute", "route", "method", "status_class")


def task_buckets_list() -> QuerySet[TaskBucket]:
    return TaskBucket.objects.order_by("-minute", "func", "outcome")


def daily_statistics_list() -> QuerySet[DailyStatistic]:
    return DailyStatistic.objects.order_by("-day", "kind", "name", "method")


def thresholds_list() -> QuerySet[Threshold]:
    return Threshold.objects.order_by("name")


def slow_requests_list() -> QuerySet[SlowRequest]:
    return SlowRequest.objects.order_by("-at", "-id")


def slow_queries_list() -> QuerySet[SlowQuery]:
    return SlowQuery.objects.order_by("-at", "-id")
