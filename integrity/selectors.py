from django.db.models import QuerySet

from integrity.models import DeadLetter


def deadletter_list() -> QuerySet[DeadLetter]:
    return DeadLetter.objects.select_related("resolved_by", "discarded_by").prefetch_related(
        "events__actor"
    )
