"""Demo history declared as data: each app that has history to show lists its seeders in
`<app>/demo.py` as `DEMO`, a list of `DemoHistory`. `manage.py seed_demo` (config's command)
makes the demo users, then runs every seeder in `order` with one `DemoContext`.

A seeder writes its app's history over the context's days, ending today, through its
services where they can back-date and directly where a service cannot (metrics buckets,
past check runs); it returns one line for the command to print. It seeds nothing when its
history is already there, so `seed_demo` can run again after `migrate` without doubling it.
"""

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from config.appconfig import project_modules


@dataclass
class DemoContext:
    today: date
    now: datetime
    days: int
    users: dict[str, Any]  # username -> User: admin, clerk, approver, auditor, operator
    rnd: random.Random = field(default_factory=lambda: random.Random(20261125))

    @property
    def start(self) -> date:
        return date.fromordinal(self.today.toordinal() - self.days)


@dataclass(frozen=True)
class DemoHistory:
    name: str
    order: int
    seed: Callable[[DemoContext], str]


def declared_seeders() -> list[DemoHistory]:
    seeders = [seeder for module in project_modules("demo") for seeder in module.DEMO]
    return sorted(seeders, key=lambda s: (s.order, s.name))


# The plumbing seeds no history of its own (this module is also config's `<app>/demo.py`; the
# users are made by the command).
DEMO: list[DemoHistory] = []
