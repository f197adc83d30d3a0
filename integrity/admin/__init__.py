"""The integrity admin: each module registers its models when imported here.

- `deadletters`: the dead-letter queue (retry, discard) and the idempotency keys;
- `checks`: check runs, the status and trend panel, findings and their explanations;
- `schedules`: django-q2's schedules (pause, resume, reschedule; nothing else).
"""

from integrity.admin import checks, deadletters, schedules

__all__ = ["checks", "deadletters", "schedules"]
