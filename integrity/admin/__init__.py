"""The integrity admin: each module registers its models when imported here.

- `deadletters`: the dead-letter queue (retry, discard) and the idempotency keys;
- `checks`: check runs, the status and trend panel, findings and their explanations;
- `schedules`: django-q2's schedules (pause, resume, reschedule; nothing else);
- `dashboard`: the Integrity dashboard of the operations console and its Overview tiles.
"""

from integrity.admin import checks, dashboard, deadletters, schedules

__all__ = ["checks", "dashboard", "deadletters", "schedules"]
