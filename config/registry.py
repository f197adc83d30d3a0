"""The check registry: apps declare checks in `<app>/checks.py` with `@register(...)`.

A check is a function taking a `CheckContext` and yielding `Finding`s. It reads with
set-based SQL (one aggregate or anti-join over the table), never a Python loop over every
row, and reports a count and a sample of offending keys per finding. Running checks, storing
what they found and alerting is `integrity.services.checks_run`.
"""

import hashlib
import json
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings

from config.appconfig import project_modules
from config.errors import UnknownSelection

SEVERITIES = ("warning", "error", "critical")
SEVERITY_RANK = {"info": 0, "warning": 1, "error": 2, "critical": 3}


@dataclass(frozen=True)
class Finding:
    """Something a check found wrong: one object, or a group of rows with a sample of keys.

    `key` names the finding stably between runs (say, a currency or a fiscal year) when it has
    no single object; the fingerprint that explanations attach to also covers the count, the
    sample and the details (amounts, differences), so an explanation never silently covers
    rows that went wrong later or a difference that grew.
    """

    message: str
    count: int = 1
    severity: str | None = None
    object_type: str = ""
    object_id: str = ""
    key: str = ""
    details: dict[str, Any] = field(default_factory=dict)
    sample: list[Any] = field(default_factory=list)
    # What of the details identifies the damage, when not all of them (None: all): a balance
    # finding is the same difference even after postings moved both totals.
    identity: Any = None

    def fingerprint(self, check: str) -> str:
        what = self.details if self.identity is None else self.identity
        ident = [
            check,
            self.object_type,
            str(self.object_id),
            self.key,
            self.count,
            sorted(map(str, self.sample)),
            what,
        ]
        text = json.dumps(ident, default=str, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:40]


@dataclass(frozen=True)
class CheckContext:
    """What a check may read about the run: `since` narrows checks that support a window
    (hourly runs look at recent postings; None is a full scan), `sample_size` caps samples,
    `shared` holds what the run's checks compute once for several of them."""

    since: datetime | None = None
    sample_size: int = 10
    # Results that several checks of one run derive their findings from (one pass over the
    # journal lines serves four finance checks): filled by the first check that needs one and
    # read by the others, so a run reads the ledger once. A new run starts empty.
    shared: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


CheckFunc = Callable[[CheckContext], Iterable[Finding]]


@dataclass(frozen=True)
class Check:
    name: str
    tag: str
    severity: str
    func: CheckFunc
    description: str
    warn_at: int | None = 1
    error_at: int | None = 1
    windowed: bool = False
    alert_source: str = "checks"
    alert_key: str = ""
    explainable: bool = True

    @property
    def thresholds(self) -> tuple[int | None, int | None]:
        """(warn_at, error_at) on the failing count, with CHECK_THRESHOLDS overrides."""
        override = settings.CHECK_THRESHOLDS.get(self.name, {})
        return override.get("warn", self.warn_at), override.get("error", self.error_at)

    @property
    def alert(self) -> tuple[str, str]:
        return self.alert_source, self.alert_key or self.name

    @property
    def runbook_anchor(self) -> str:
        """The GitHub anchor of `## checks/<name>` in docs/runbooks.md."""
        source, key = self.alert
        return f"{source}{key}".replace(".", "").replace("/", "").replace(":", "").lower()


_REGISTRY: dict[str, Check] = {}
_DISCOVERED = False


def register(
    name: str,
    *,
    tag: str,
    severity: str = "error",
    warn_at: int | None = 1,
    error_at: int | None = 1,
    windowed: bool = False,
    alert_source: str = "checks",
    alert_key: str = "",
    explainable: bool = True,
) -> Callable[[CheckFunc], CheckFunc]:
    """Declare a check. `severity` is the alert's when it fails; a warning-severity check
    should set `error_at=None` (it can warn, never fail). `windowed` checks honour
    `ctx.since`. `explainable=False` for conditions that are never "expected" (a dead
    scheduler): their findings cannot be explained away. The docstring's first paragraph is
    the check's description."""
    if severity not in SEVERITIES:
        raise ValueError(f"check {name}: severity must be one of {SEVERITIES}")

    def decorate(func: CheckFunc) -> CheckFunc:
        doc = (func.__doc__ or "").strip().split("\n\n")[0]
        check = Check(
            name=name,
            tag=tag,
            severity=severity,
            func=func,
            description=" ".join(doc.split()),
            warn_at=warn_at,
            error_at=error_at,
            windowed=windowed,
            alert_source=alert_source,
            alert_key=alert_key,
            explainable=explainable,
        )
        existing = _REGISTRY.get(name)
        if existing is not None and existing.func.__qualname__ != func.__qualname__:
            raise ValueError(f"check {name} registered twice")
        _REGISTRY[name] = check
        return func

    return decorate


@contextmanager
def registered(*checks: Check) -> Iterator[None]:
    """`checks` registered for the duration, replacing any of the same name, and the registry
    put back as it was afterwards: a stand-in check (one that fails, one that counts its
    runs) without a module of its own."""
    autodiscover()
    saved = dict(_REGISTRY)
    _REGISTRY.update({check.name: check for check in checks})
    try:
        yield
    finally:
        _REGISTRY.clear()
        _REGISTRY.update(saved)


def autodiscover() -> None:
    """Import `<app>.checks` of each of the project's apps (`config.appconfig.ProjectApp`), once."""
    global _DISCOVERED
    if _DISCOVERED:
        return
    project_modules("checks")
    _DISCOVERED = True


def all_checks() -> dict[str, Check]:
    autodiscover()
    return dict(sorted(_REGISTRY.items()))


def tags() -> list[str]:
    return sorted({c.tag for c in all_checks().values()})


def select(*, tags: Iterable[str] = (), names: Iterable[str] = ()) -> list[Check]:
    """Checks with any of `tags` or any of `names`; all of them when both are empty.

    Raises UnknownSelection for the first unknown tag or check.
    """
    checks = all_checks()
    tags, names = list(tags), list(names)
    known_tags = {c.tag for c in checks.values()}
    for t in tags:
        if t not in known_tags:
            known = ", ".join(sorted(known_tags))
            raise UnknownSelection("tags", f"unknown tag {t!r} (known: {known})")
    for n in names:
        if n not in checks:
            raise UnknownSelection("checks", f"unknown check {n!r}")
    if not tags and not names:
        return list(checks.values())
    return [c for c in checks.values() if c.tag in tags or c.name in names]
