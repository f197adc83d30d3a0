"""Health endpoints for probes and load balancers, on django-health-check (docs/health.md).

`/health/live` runs no check at all; `/health/ready` checks the database, migrations, cache,
scheduler heartbeat and backup storage. Both always answer JSON:
{"status": "ok"|"degraded"|"fail", "checks": {name: {"status": "ok"|"warn"|"fail",
"time_ms": 1.2}}}. A failing component makes the answer 503 "fail"; a warning leaves it 200
"degraded". Only a logged-in staff user sees the components' messages.

`component_health()` is the same knowledge for people: the Overview's "System health" tile and
the Integrity dashboard (integrity/admin/dashboard.py) show a row per component.
"""

import asyncio
import contextlib
import dataclasses
import smtplib
import socket
import threading
import time
import uuid
from typing import Any, Literal

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.cache import cache
from django.core.files.storage import FileSystemStorage
from django.core.mail.backends.smtp import EmailBackend as SMTPBackend
from django.db import DatabaseError, connection
from django.db.migrations.executor import MigrationExecutor
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from health_check.base import HealthCheck, HealthCheckResult
from health_check.checks import Cache, Database, Storage
from health_check.exceptions import HealthCheckException, ServiceUnavailable, ServiceWarning
from health_check.views import HealthCheckView

from alerts.selectors import heartbeat_status
from config.errors import error_body
from integrity.scheduling import schedules_held_back


def _unapplied_migration_count() -> int:
    executor = MigrationExecutor(connection)
    return len(executor.migration_plan(executor.loader.graph.leaf_nodes()))


@dataclasses.dataclass
class Migrations(HealthCheck):
    """Every migration on disk is applied to the default database."""

    async def run(self) -> None:
        try:
            # Thread-sensitive: the request's own connection (in tests, the test's transaction).
            count = await sync_to_async(_unapplied_migration_count, thread_sensitive=True)()
        except DatabaseError as exc:
            raise ServiceUnavailable("Could not read the migration history") from exc
        if count:
            raise ServiceUnavailable(f"{count} unapplied migration(s)")


@dataclasses.dataclass
class SchedulerHeartbeat(HealthCheck):
    """The django-q2 heartbeat job (alerts.heartbeat) ran within ALERT_HEARTBEAT_MAX_AGE_SECONDS,
    so the scheduler and a worker are alive. Only a warning unless HEALTH_READY_REQUIRE_SCHEDULER:
    taking the web instances out of service does not bring a dead worker back."""

    async def run(self) -> None:
        failure = ServiceUnavailable if settings.HEALTH_READY_REQUIRE_SCHEDULER else ServiceWarning
        try:
            status = await sync_to_async(heartbeat_status, thread_sensitive=True)()
        except DatabaseError as exc:
            raise failure("Could not read the scheduler heartbeat") from exc
        if status["ok"]:
            return
        if status["last_beat"] is None:
            raise failure("No scheduler heartbeat recorded yet")
        raise failure(
            f"Last scheduler heartbeat {status['age_seconds']:.0f} s ago "
            f"(limit {settings.ALERT_HEARTBEAT_MAX_AGE_SECONDS} s)"
        )


@dataclasses.dataclass
class BackupStorage(Storage):
    """The backup location (STORAGES["backups"], BACKUP_DIR) takes a file: write, read, delete."""

    alias: str = "backups"

    @property
    def storage(self) -> FileSystemStorage:
        # Built from BACKUP_DIR at check time: the storages registry keeps the location it had at
        # startup, and tests move BACKUP_DIR per test.
        return FileSystemStorage(location=settings.BACKUP_DIR)

    def get_file_name(self) -> str:
        return f".health-check-{uuid.uuid4().hex}.txt"  # no directory left behind

    def run(self) -> None:
        try:
            super().run()
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            raise ServiceUnavailable(f"Backup storage is not writable ({reason})") from exc


def _component_status(result: HealthCheckResult) -> str:
    if result.error is None:
        return "ok"
    return "warn" if isinstance(result.error, ServiceWarning) else "fail"


async def _is_staff(request: HttpRequest) -> bool:
    try:
        user = await request.auser()
    except DatabaseError:
        return False  # the sessions live in the database: with it down, nobody is known
    return user.is_active and user.is_staff


class HealthView(HealthCheckView):
    """Runs `components` ({name: check}) and answers JSON whatever the Accept header says.

    Reads the session only when a component is not ok, so a healthy probe costs no query
    beyond the checks' own."""

    http_method_names = ["get", "head"]
    components: dict[str, type[HealthCheck] | tuple[type[HealthCheck], dict[str, Any]]] = {}

    @property
    def checks(self):  # what the library's get_checks() instantiates
        return tuple(self.components.values())

    async def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> JsonResponse:
        with self.get_executor() as executor:
            results = await asyncio.gather(
                *(check.get_result(executor) for check in self.get_checks())
            )
        show_messages = any(result.error for result in results) and await _is_staff(request)
        checks: dict[str, dict[str, Any]] = {}
        for name, result in zip(self.components, results, strict=True):
            entry: dict[str, Any] = {
                "status": _component_status(result),
                "time_ms": round(result.time_taken * 1000, 1),
            }
            if show_messages and result.error is not None:
                entry["message"] = str(result.error.message)
            checks[name] = entry
        statuses = {entry["status"] for entry in checks.values()}
        overall = "fail" if "fail" in statuses else "degraded" if "warn" in statuses else "ok"
        return JsonResponse(
            {"status": overall, "checks": checks}, status=503 if overall == "fail" else 200
        )

    async def http_method_not_allowed(
        self, request: HttpRequest, *args: Any, **kwargs: Any
    ) -> JsonResponse:
        response = JsonResponse(
            error_body("method_not_allowed", "Only GET and HEAD are allowed."), status=405
        )
        response["Allow"] = "GET, HEAD"
        return response


@dataclasses.dataclass
class Schedules(HealthCheck):
    """Every declared job will run when declared (integrity.scheduling.schedules_held_back): a
    paused or postponed one is a warning that an outside monitor sees even when the checks
    that would report it are the jobs held back."""

    async def run(self) -> None:
        try:
            held = await sync_to_async(schedules_held_back, thread_sensitive=True)()
        except DatabaseError as exc:
            raise ServiceWarning("Could not read the schedules") from exc
        held = [h for h in held if h["state"] != "missing"]  # missing: sync_schedules, checks
        if held:
            names = ", ".join(f"{h['name']} ({h['state']})" for h in held[:5])
            raise ServiceWarning(f"{len(held)} schedule(s) held back: {names}")


class LiveView(HealthView):
    """The process is up and answers; no dependency is checked."""

    components = {}


class ReadyView(HealthView):
    """Everything a request needs is there; a failing component takes the instance out."""

    components = {
        "database": Database,
        "migrations": Migrations,
        "cache": Cache,
        "scheduler": SchedulerHeartbeat,
        "schedules": Schedules,
        "storage": BackupStorage,
    }


# --- the components as the console shows them ---------------------------------------------

ComponentStatus = Literal["ok", "warn", "bad"]
_RANK = {"ok": 0, "warn": 1, "bad": 2}
# The probes that touch something outside the database (the mail server, the backup
# location) are cached in the shared cache (the database cache by default) for this long, so
# a page view costs a cache read, and at most one view a minute waits for a probe.
PROBE_CACHE_SECONDS = 60
# Each step of the SMTP probe (connect, greeting, NOOP, QUIT) waits at most this long, and the
# whole probe at most SMTP_PROBE_DEADLINE: a server that answers a byte at a time, each just
# inside the step's timeout, is cut off there instead of holding the page view.
SMTP_PROBE_TIMEOUT = 2.0
SMTP_PROBE_DEADLINE = 5.0
_PROBE_KEYS = {"email": "integrity:health:email", "storage": "integrity:health:storage"}
# The last answer, shown while another request runs the probe; and how long a probe's lock
# is held at most (a request that died while probing frees it then).
PROBE_LAST_SECONDS = 3600
PROBE_LOCK_SECONDS = 30
# Django's backends that keep mail on this machine: nothing reaches anybody.
_LOCAL_MAIL = {
    "django.core.mail.backends.console.EmailBackend": "printed to the console",
    "django.core.mail.backends.locmem.EmailBackend": "kept in memory",
    "django.core.mail.backends.dummy.EmailBackend": "thrown away",
    "django.core.mail.backends.filebased.EmailBackend": "written to files",
}
_SMTP = "django.core.mail.backends.smtp.EmailBackend"


@dataclasses.dataclass(frozen=True)
class Component:
    """One part of the system the console watches: its state and, in words, why."""

    name: str
    status: ComponentStatus
    detail: str


def worst_status(components: list[Component]) -> ComponentStatus:
    return max((c.status for c in components), key=_RANK.__getitem__, default="ok")


def component_health() -> list[Component]:
    """The database, the worker and scheduler (the heartbeat job), email and the backup
    storage. A few queries: the database answers a SELECT, the heartbeat row is read, and the
    cached probes are one cache read; a probe runs only when its cached answer has expired,
    and then in one request only (a lock in the cache): the others meanwhile show the last
    answer (kept for PROBE_LAST_SECONDS), so a slow mail server does not hold every view."""
    keys = [key for name in _PROBES for key in (_PROBE_KEYS[name], _last(name))]
    cached: dict[str, Any] = cache.get_many(keys)
    answers: dict[str, tuple[ComponentStatus, str]] = {}
    for name, probe in _PROBES.items():
        key = _PROBE_KEYS[name]
        if key in cached:
            answers[name] = cached[key]
        elif cache.add(f"{key}:probing", True, PROBE_LOCK_SECONDS):
            try:
                answers[name] = probe()
                cache.set(key, answers[name], PROBE_CACHE_SECONDS)
                cache.set(_last(name), answers[name], PROBE_LAST_SECONDS)
            finally:
                cache.delete(f"{key}:probing")
        elif _last(name) in cached:
            answers[name] = cached[_last(name)]
        else:
            answers[name] = ("warn", f"Being checked by another request ({_checked()})")
    return [
        _database(),
        _scheduler(),
        Component("Email", *answers["email"]),
        Component("Backup storage", *answers["storage"]),
    ]


def _last(name: str) -> str:
    return f"{_PROBE_KEYS[name]}:last"


def _database() -> Component:
    started = time.perf_counter()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError as exc:
        return Component("Database", "bad", f"Does not answer: {exc}")
    ms = (time.perf_counter() - started) * 1000
    return Component("Database", "ok", f"{connection.display_name} answered in {ms:.0f} ms")


def _scheduler() -> Component:
    """The heartbeat job (alerts.heartbeat) is scheduled by the django-q2 cluster and run by
    one of its workers: a recent beat shows both alive."""
    name = "Worker and scheduler"
    try:
        beat = heartbeat_status()
    except DatabaseError:
        return Component(name, "bad", "Could not read the scheduler heartbeat")
    if beat["last_beat"] is None:
        return Component(name, "bad", "No heartbeat recorded yet: is the qcluster running?")
    age = float(beat["age_seconds"])
    if not beat["ok"]:
        limit = settings.ALERT_HEARTBEAT_MAX_AGE_SECONDS
        return Component(
            name, "bad", f"Last heartbeat {_age(age)} ago (limit {limit} s): no jobs are running"
        )
    return Component(name, "ok", f"Last heartbeat {_age(age)} ago")


def _age(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.0f} h"
    return f"{seconds / 86400:.0f} days"


def _checked() -> str:
    return timezone.localtime().strftime("%H:%M:%S")


def _email_probe() -> tuple[ComponentStatus, str]:
    """What the configured backend is; for SMTP, whether the server greets and answers a NOOP
    (no login, no mail sent); a provider's HTTP API is not probed."""
    backend = settings.EMAIL_BACKEND
    if backend in _LOCAL_MAIL:
        return "warn", f"Not configured: mail is {_LOCAL_MAIL[backend]} (set EMAIL_URL)"
    if backend != _SMTP:
        return "ok", f"Provider backend {backend.rsplit('.', 2)[-2]} configured (not probed)"
    host, port = settings.EMAIL_HOST, int(settings.EMAIL_PORT)
    started = time.perf_counter()
    try:
        code = _smtp_noop(host, port)
    except (OSError, smtplib.SMTPException, ValueError) as exc:  # ValueError: a bad name
        reason = f"{type(exc).__name__}: {exc}"[:200]
        return "bad", f"SMTP server {host}:{port} unreachable ({reason}; checked {_checked()})"
    ms = (time.perf_counter() - started) * 1000
    if code != 250:
        return "warn", f"SMTP server {host}:{port} answered NOOP with {code} ({_checked()})"
    return "ok", f"SMTP server {host}:{port} answered in {ms:.0f} ms (checked {_checked()})"


def _smtp_noop(host: str, port: int) -> int:
    """Connects as Django's SMTP backend would (TLS from the first byte with EMAIL_USE_SSL,
    STARTTLS with EMAIL_USE_TLS, its certificate checks), sends NOOP and QUIT, and returns
    NOOP's code; raises TimeoutError when the whole talk takes longer than
    SMTP_PROBE_DEADLINE. The talk runs in a thread that is cut off by shutting its socket down,
    because a socket's timeout bounds each read, not a reply that arrives a byte at a time."""
    context = SMTPBackend(fail_silently=False).ssl_context  # what sending mail will check
    servers: list[smtplib.SMTP] = []
    answers: list[int | Exception] = []

    def talk() -> None:
        try:
            # The greeting of our own (EHLO, for STARTTLS) needs no name looked up.
            if settings.EMAIL_USE_SSL:
                server: smtplib.SMTP = smtplib.SMTP_SSL(
                    local_hostname="localhost", timeout=SMTP_PROBE_TIMEOUT, context=context
                )
            else:
                server = smtplib.SMTP(local_hostname="localhost", timeout=SMTP_PROBE_TIMEOUT)
            servers.append(server)
            # TLS checks the certificate against the host given to __init__, which would
            # connect there and then, out of this deadline's reach; so it is set here.
            server._host = host  # type: ignore[attr-defined]
            server.connect(host, port)
            if settings.EMAIL_USE_TLS:
                server.ehlo()
                server.starttls(context=context)
            answers.append(server.noop()[0])
            server.quit()
        except Exception as exc:  # noqa: BLE001 - raised again below, in the caller's thread
            answers.append(exc)  # after NOOP's code, a failed QUIT does not count
        finally:
            if servers:
                servers[0].close()

    thread = threading.Thread(target=talk, name="smtp-probe", daemon=True)
    thread.start()
    thread.join(SMTP_PROBE_DEADLINE)
    if thread.is_alive():
        if servers and (sock := servers[0].sock) is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)  # wakes the thread's read; it closes and ends
        raise TimeoutError(f"no answer within {SMTP_PROBE_DEADLINE:g} s")
    if isinstance(answer := answers[0], Exception):
        raise answer
    return answer


def _storage_probe() -> tuple[ComponentStatus, str]:
    """BackupStorage: a file written, read back and deleted in the backup location."""
    try:
        BackupStorage().run()
    except (HealthCheckException, OSError) as exc:
        message = exc.message if isinstance(exc, HealthCheckException) else str(exc)
        return "bad", f"{message} (checked {_checked()})"
    return "ok", f"Writable (checked {_checked()})"


_PROBES = {"email": _email_probe, "storage": _storage_probe}
