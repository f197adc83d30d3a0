"""Time from raise_alert to the message arriving, with a real qcluster worker running.

    DATABASE_URL=postgres://... python benchmarks/alert_latency.py [N]     (default N=20)

Receivers are local: an SMTP server (aiosmtpd) and an HTTP webhook receiver. Each alert is
routed to one email and one webhook target; the worker picks up the dispatch that raise_alert
queues. The baseline is the same email sent directly with smtplib in this process.
"""

import json
import logging
import os
import signal
import smtplib
import socket
import statistics
import subprocess
import sys
import threading
import time
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from _django import (  # sets Django up: before any of the project's imports
    ROOT,
    figure,
    run_benchmark,
)

# isort: split
from aiosmtpd.controller import Controller
from django.db import connection

from alerts.models import EscalationPolicy, EscalationStep, Route, Target
from alerts.services import raise_alert

ARRIVED: dict[str, dict[str, float]] = {}


class Inbox:
    async def handle_DATA(self, server, session, envelope):  # aiosmtpd calls it by this name
        text = envelope.content.decode(errors="replace")
        for line in text.splitlines():
            if line.startswith("Subject:") and "bench-" in line:
                key = line.split("bench-", 1)[1].split()[0]
                ARRIVED.setdefault(key, {})["email"] = time.perf_counter()
        return "250 OK"


class Hook(BaseHTTPRequestHandler):
    def do_POST(self):  # http.server calls it by this name
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        key = body["alert"]["key"].split("bench-", 1)[1]
        ARRIVED.setdefault(key, {})["webhook"] = time.perf_counter()
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def start_receivers() -> tuple[Controller, int, ThreadingHTTPServer]:
    """The local SMTP server (and its port) and the webhook receiver, running."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        smtp_port = probe.getsockname()[1]
    smtp = Controller(Inbox(), hostname="127.0.0.1", port=smtp_port)
    smtp.start()
    hook = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    return smtp, smtp_port, hook


def route_to_receivers(hook: ThreadingHTTPServer) -> None:
    """Every alert to one email target and one webhook target."""
    policy = EscalationPolicy.objects.create(name="bench")
    step = EscalationStep.objects.create(policy=policy, position=0)
    step.targets.add(
        Target.objects.create(name="mail", channel="email", address="oncall@example.com"),
        Target.objects.create(
            name="hook", channel="webhook", address=f"http://127.0.0.1:{hook.server_address[1]}/"
        ),
    )
    Route.objects.create(name="all", policy=policy)


def start_worker(smtp_port: int, n: int) -> subprocess.Popen:
    """A qcluster on this database, sending email to the local SMTP server."""
    s = connection.settings_dict
    url = f"postgres://{s['USER']}@{s['HOST'] or 'localhost'}:{s['PORT'] or 5432}/{s['NAME']}"
    env = os.environ | {
        "DATABASE_URL": url,
        "EMAIL_URL": f"smtp://127.0.0.1:{smtp_port}",
        "Q_POLL": "0.1",
        "Q_WORKERS": "1",
        "SECRET_KEY": os.environ.get("SECRET_KEY", "benchmark-only"),
        "OUTBOUND_ALLOW_PRIVATE_ADDRESSES": "1",  # the webhook receiver is on 127.0.0.1
        # Every probe goes to the same two targets: past the per-target rate limit (10 a
        # window by default) the rest would be held for a summary and never arrive.
        "ALERT_TARGET_MAX_PER_WINDOW": str(n + 1),
    }
    return subprocess.Popen(
        [sys.executable, "manage.py", "qcluster"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def measure_alerts(n: int) -> tuple[list[float], list[float]]:
    """Seconds from raise_alert to arrival of each of n alerts, by email and by webhook."""
    email, webhook = [], []
    for i in range(n):
        key = f"{i}-{time.time_ns()}"
        start = time.perf_counter()
        raise_alert(
            source="bench",
            key=f"bench-{key}",
            severity="error",
            title=f"Latency probe bench-{key}",
        )
        deadline = start + 30
        while time.perf_counter() < deadline and len(ARRIVED.get(key, {})) < 2:
            time.sleep(0.005)
        got = ARRIVED.get(key, {})
        if len(got) < 2:
            sys.exit(f"alert {key} did not arrive on both channels within 30 s: {got}")
        email.append(got["email"] - start)
        webhook.append(got["webhook"] - start)
    return email, webhook


def measure_direct_sends(n: int, smtp_port: int) -> list[float]:
    """Seconds for each of n emails sent directly with smtplib: the baseline."""
    baseline = []
    for _ in range(n):
        message = EmailMessage()
        message["Subject"], message["From"], message["To"] = "direct", "a@b.c", "d@e.f"
        message.set_content("baseline")
        start = time.perf_counter()
        with smtplib.SMTP("127.0.0.1", smtp_port) as client:
            client.send_message(message)
        baseline.append(time.perf_counter() - start)
    return baseline


def ms(v: float) -> str:
    return f"{v * 1000:7.1f} ms"


def report(n: int, email: list[float], webhook: list[float], baseline: list[float]) -> None:
    print(f"alert latency, {n} alerts, raise_alert -> arrival, one qcluster worker (Q_POLL=0.1)")
    print(f"  email   : median {ms(statistics.median(email))}  p99 {ms(pct(email, 99))}")
    print(f"  webhook : median {ms(statistics.median(webhook))}  p99 {ms(pct(webhook, 99))}")
    print(f"  baseline: direct smtplib send, median {ms(statistics.median(baseline))}")
    print(
        f"  ratio (email median / direct send median): "
        f"{statistics.median(email) / statistics.median(baseline):.0f}x"
    )
    direct = statistics.median(baseline) * 1000
    figure(
        "alert to email, median",
        statistics.median(email) * 1000,
        "ms",
        baseline=direct,
        baseline_name="direct smtplib send",
    )
    figure("alert to webhook, median", statistics.median(webhook) * 1000, "ms")


def run(n: int) -> None:
    logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd's per-command log
    smtp, smtp_port, hook = start_receivers()
    route_to_receivers(hook)
    worker = start_worker(smtp_port, n)
    try:
        time.sleep(4)  # the cluster starts
        email, webhook = measure_alerts(n)
        baseline = measure_direct_sends(n, smtp_port)
    finally:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait()
        smtp.stop()
        hook.shutdown()
    report(n, email, webhook, baseline)


if __name__ == "__main__":
    run_benchmark(run, 20)
