"""What the request metrics cost: a real endpoint served by gunicorn (gunicorn.conf.py, two
workers) with the metrics on and off, driven by wrk on loopback, in alternating pairs.

    python benchmarks/monitoring_overhead.py [PAIRS] [SECONDS]     (default 15 pairs of 3 s)
    make bench-monitoring BENCH_ARGS="25 3"

Two endpoints: `GET /api/v1/accounts/` with a bearer token (authentication, a permission
check, a paginated query of 40 accounts and their serialization, about 4 queries: a typical
API read) and `GET /health/live` (the lightest route, where the metrics' share is largest). The
database is made for the run and dropped after it (migrated, 40 accounts, an operator with a
token and no password): a SQLite file, or a database of its own on the PostgreSQL server of
DATABASE_URL (unset: SQLite; `scripts/with-postgres.sh python benchmarks/monitoring_overhead.py`
measures PostgreSQL on a throwaway server). Each pair starts both
servers' runs of each endpoint back to back, off first or on first in turn, with two
connections (both sync workers busy, nothing queued); the figures are the medians of the runs
and of the per-pair ratios and differences, so that the machine's drift between runs cancels.
Target (issue 14): at most 3 % fewer requests per second and at most 0.2 ms more median
latency with the metrics on.

Then, in this process, the middleware alone: microseconds per request with the metrics
against a pass-through around the same trivial view (best of 5 rounds of 50,000), which the
machine's load disturbs far less than the served figures.
"""

import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psutil
from _django import ROOT as _ROOT
from _django import figure  # sets Django up: before any of the project's imports

# isort: split
from django.db import connection
from django.http import HttpRequest, HttpResponse
from django.test import RequestFactory
from django.urls import resolve

from monitoring.requestmetrics import AGGREGATOR, RequestMetricsMiddleware

ROOT = _ROOT
REPORT = Path(__file__).resolve().parent / "wrk_report.lua"
PATH = "/api/v1/accounts/"
ACCOUNTS = 40


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def scratch_database(work: Path) -> tuple[str, Callable[[], None]]:
    """A database of the benchmark's own, and how to drop it: a SQLite file in `work`, or a
    new database on the PostgreSQL server of DATABASE_URL (never that database itself)."""
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        return f"sqlite:///{work / 'bench.sqlite3'}", lambda: None
    name = f"ledgerguard_bench_monitoring_{os.getpid()}"
    with connection.cursor() as cursor:  # autocommit: CREATE DATABASE runs outside a transaction
        cursor.execute(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        with connection.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}")), drop


def prepare(env: dict[str, str]) -> str:
    """Migrate the database, make 40 accounts, an operator and a token; the raw token."""
    manage = [sys.executable, str(ROOT / "manage.py")]
    subprocess.run([*manage, "migrate", "--no-input", "-v", "0"], env=env, check=True, cwd=ROOT)
    script = f"""
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from config.tokens import api_token_create
from finance.services import account_create
for n in range({ACCOUNTS}):
    account_create(code=str(1000 + n), name=f"Account {{n}}", type="asset", currency="USD")
user = get_user_model().objects.create_user("bench", password=None)  # a token, no login
user.groups.add(Group.objects.get(name="operator"))
print(api_token_create(user=user, name="bench")[1])
"""
    done = subprocess.run(
        [*manage, "shell", "-c", script], env=env, check=True, cwd=ROOT, capture_output=True
    )
    return done.stdout.decode().strip().splitlines()[-1]


class Server:
    def __init__(self, env: dict[str, str], metrics: bool, work: Path) -> None:
        self.port = free_port()
        label = "on" if metrics else "off"
        self.log = (work / f"gunicorn-{label}.log").open("w")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "--config",
                "gunicorn.conf.py",
                "--bind",
                f"127.0.0.1:{self.port}",
                "--access-logfile",
                "/dev/null",
            ],
            cwd=ROOT,
            env=env
            | {
                "MONITORING_REQUEST_METRICS": "1" if metrics else "0",
                "PROMETHEUS_MULTIPROC_DIR": str(work / f"prometheus-{label}"),
            },
            stdout=self.log,
            stderr=self.log,
            start_new_session=True,
        )
        self.url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health/live", timeout=2)
                return
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise SystemExit(
                        f"gunicorn ({label}) did not start; see {self.log.name}"
                    ) from None
                time.sleep(0.2)

    def cpu_seconds(self) -> float:
        """User and system CPU the workers have used so far."""
        total = 0.0
        for worker in psutil.Process(self.proc.pid).children():
            times = worker.cpu_times()
            total += times.user + times.system
        return total

    def stop(self) -> None:
        os.killpg(self.proc.pid, signal.SIGTERM)
        self.proc.wait(timeout=30)
        self.log.close()


def load(url: str, token: str, seconds: int, connections: int = 2) -> dict[str, float]:
    done = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{seconds}s",
            "-s",
            str(REPORT),
            "-H",
            f"Authorization: Bearer {token}",
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    if figures["errors"]:
        raise SystemExit(f"wrk saw {figures['errors']} errors (non-2xx answers or sockets)")
    figures["rps"] = figures["requests"] / (figures["duration_us"] / 1e6)
    return figures


# The endpoints measured: a typical API read, and the lightest route there is (the metrics'
# share of its time is the largest any route shows).
ENDPOINTS = [
    (PATH, f"GET {PATH} ({ACCOUNTS} accounts, bearer token)"),
    ("/health/live", "GET /health/live"),
]


def main() -> None:
    pairs = int(sys.argv[1]) if len(sys.argv) > 1 else 15
    seconds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    with tempfile.TemporaryDirectory(prefix="ledgerguard-bench-") as tmp:
        work = Path(tmp)
        url, drop = scratch_database(work)
        env = os.environ | {
            "DATABASE_URL": url,
            "DEBUG": "0",
            "SECRET_KEY": os.environ.get("SECRET_KEY", "benchmark-only-not-secret"),
            "AUDIT_SIGNING_KEY": os.environ.get("AUDIT_SIGNING_KEY", "benchmark-only"),
            "WEB_CONCURRENCY": "2",
            # Sync workers (one thread each): they close each connection after its answer, so
            # every request goes to whichever worker is free. With threads (gthread) wrk's
            # kept-alive connections stay on the worker that took them, and when all land on
            # one worker (the kernel decides) the run halves: pairs then measured which worker
            # got the connections, not the metrics.
            "GUNICORN_THREADS": "1",
            "STATIC_MANIFEST": "0",
            "SESSION_COOKIE_SECURE": "0",
            "CSRF_COOKIE_SECURE": "0",
        }
        runs: dict[tuple[str, bool], list[dict[str, float]]] = {}
        ratios: dict[str, list[float]] = {path: [] for path, _ in ENDPOINTS}
        added: dict[str, list[float]] = {path: [] for path, _ in ENDPOINTS}
        cpu_ratios: dict[str, list[float]] = {path: [] for path, _ in ENDPOINTS}
        servers: dict[bool, Server] = {}
        try:
            token = prepare(env)
            for on in (False, True):
                servers[on] = Server(env, on, work)  # each one stopped below, once started
            for server in servers.values():
                for path, _ in ENDPOINTS:
                    load(server.url + path, token, 2)  # warm-up: imports, connections, caches
            for pair in range(pairs):
                order = (False, True) if pair % 2 == 0 else (True, False)
                for path, _ in ENDPOINTS:
                    got = {}
                    for on in order:
                        cpu = servers[on].cpu_seconds()
                        got[on] = load(servers[on].url + path, token, seconds)
                        cpu = servers[on].cpu_seconds() - cpu
                        got[on]["cpu_us"] = cpu / got[on]["requests"] * 1e6
                    cpu_ratios[path].append(got[True]["cpu_us"] / got[False]["cpu_us"])
                    for on in order:
                        runs.setdefault((path, on), []).append(got[on])
                    ratios[path].append(got[True]["rps"] / got[False]["rps"])
                    added[path].append((got[True]["p50_us"] - got[False]["p50_us"]) / 1000)
                print(f"  pair {pair + 1} of {pairs} done", flush=True)
        finally:
            for server in servers.values():
                server.stop()
            drop()
    engine = "PostgreSQL" if url.startswith("postgres") else "SQLite"
    print(
        f"gunicorn 2 sync workers, {engine}; wrk -t1 -c2 on loopback; {pairs} alternating "
        f"pairs of {seconds} s runs per endpoint (medians)"
    )
    for path, label in ENDPOINTS:
        print(label)
        for on, name in ((False, "metrics off"), (True, "metrics on ")):
            rps = statistics.median(r["rps"] for r in runs[(path, on)])
            p50 = statistics.median(r["p50_us"] for r in runs[(path, on)]) / 1000
            p99 = statistics.median(r["p99_us"] for r in runs[(path, on)]) / 1000
            cpu = statistics.median(r["cpu_us"] for r in runs[(path, on)])
            print(
                f"  {name}: {rps:8.0f} req/s, p50 {p50:.3f} ms, p99 {p99:.2f} ms, "
                f"worker CPU {cpu:.0f} us per request"
            )
        ratio = statistics.median(ratios[path])
        spread = statistics.quantiles(ratios[path], n=4) if len(ratios[path]) > 1 else [ratio] * 3
        print(
            f"  throughput with / without (median of pair ratios): {ratio:.3f}x "
            f"({(1 - ratio) * 100:+.1f} % cost; target at most 3 %); quartiles "
            f"{spread[0]:.3f} to {spread[2]:.3f}"
        )
        print(
            f"  median latency added (median of pairs): {statistics.median(added[path]):+.3f} ms "
            "(target at most 0.2 ms)"
        )
        figure(
            f"request metrics on/off, {engine}, {path}",
            ratio,
            "x throughput",
            baseline=1.0,
            baseline_name="metrics off",
            target=">= 0.97x",
        )
        cpu_ratio = statistics.median(cpu_ratios[path])
        quart = statistics.quantiles(cpu_ratios[path], n=4) if len(cpu_ratios[path]) > 1 else []
        print(
            f"  worker CPU per request with / without (median of pair ratios): "
            f"{cpu_ratio:.3f}x ({(cpu_ratio - 1) * 100:+.1f} %)"
            + (f"; quartiles {quart[0]:.3f} to {quart[2]:.3f}" if quart else "")
        )


def middleware_alone(rounds: int = 5, calls: int = 50_000) -> None:
    request = RequestFactory().get(PATH)
    request.resolver_match = resolve(PATH)
    answer = HttpResponse(b"[]")

    def view(_request: HttpRequest) -> HttpResponse:
        return answer

    def passthrough(r: HttpRequest) -> HttpResponse:
        return view(r)

    measured = {}
    for name, call in (("pass-through", passthrough), ("metrics", RequestMetricsMiddleware(view))):
        best = float("inf")
        for _ in range(rounds):
            started = time.perf_counter()
            for _ in range(calls):
                call(request)
            best = min(best, (time.perf_counter() - started) / calls)
        measured[name] = best * 1e6
    AGGREGATOR.discard()
    added = measured["metrics"] - measured["pass-through"]
    print(
        f"  the middleware alone: {measured['metrics']:.1f} us per request against "
        f"{measured['pass-through']:.1f} us for a pass-through: {added:.1f} us added "
        f"({added / 1000:.3f} ms)"
    )


if __name__ == "__main__":
    main()
    middleware_alone()
