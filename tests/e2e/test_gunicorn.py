"""The production web process: gunicorn with gunicorn.conf.py, DEBUG off, static files from
WhiteNoise out of a collected STATIC_ROOT with its manifest."""

import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from monitoring.models import RequestBucket
from tests.e2e.test_scheduler import test_database_url
from tests.receivers import free_port

ROOT = Path(__file__).resolve().parents[2]


def fetch(url: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


@pytest.fixture
def gunicorn(tmp_path, transactional_db):
    """gunicorn on a free port against the test database, as Procfile.production starts it."""
    yield from serve(tmp_path, workers=1)


@pytest.fixture
def gunicorn_two_workers(tmp_path, transactional_db):
    yield from serve(tmp_path, workers=2)


def serve(tmp_path: Path, *, workers: int, **changes: str | None):
    """`changes` override the environment (None: unset)."""
    env = os.environ | {
        "DATABASE_URL": test_database_url(),
        "DEBUG": "0",
        "STATIC_ROOT": str(tmp_path / "static"),
        "STATIC_MANIFEST": "1",
        "WEB_CONCURRENCY": str(workers),
        "GUNICORN_THREADS": "2",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prometheus"),
        "MONITORING_FLUSH_SECONDS": "0",
        "MONITORING_WRITE_AFTER_RESPONSE": "1",
    }
    for name, value in changes.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    # The admin's files only: compressing Swagger UI and ReDoc would triple the test's time.
    collect = "collectstatic --noinput --ignore drf_spectacular_sidecar --ignore rest_framework"
    run = {"cwd": ROOT, "env": env}
    subprocess.run([sys.executable, "manage.py", *collect.split()], **run, check=True)
    port = free_port()
    log = (tmp_path / "gunicorn.log").open("w+")
    serve = f"-m gunicorn --config gunicorn.conf.py --bind 127.0.0.1:{port}"
    proc = subprocess.Popen(
        [sys.executable, *serve.split()], **run, stdout=log, stderr=log, start_new_session=True
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, "gunicorn exited early"
            try:
                fetch(f"{base}/health/live")
                break
            except OSError:
                assert time.monotonic() < deadline, "gunicorn did not answer within 30 s"
                time.sleep(0.1)
        yield base, proc, log
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        log.seek(0)
        print(log.read()[-5000:])  # shown by pytest when the test failed
        log.close()


@pytest.mark.e2e
def test_gunicorn_serves_pages_and_static_files_with_debug_off(gunicorn):
    base, proc, log = gunicorn

    status, _, body = fetch(f"{base}/health/live")
    assert status == 200 and b'"status"' in body

    status, headers, body = fetch(f"{base}/admin/login/")
    assert status == 200 and headers["Server"] == "gunicorn"
    page = body.decode()
    # The manifest's hashed name: the file can be cached for good.
    css = re.search(r'href="(/static/admin/css/base\.[0-9a-f]{12}\.css)"', page)
    assert css, page[:2000]

    status, headers, body = fetch(base + css.group(1), **{"Accept-Encoding": "gzip"})
    assert status == 200 and headers["Content-Type"].startswith("text/css")
    assert headers["Cache-Control"] == "max-age=315360000, public, immutable"
    assert headers["Content-Encoding"] == "gzip" and body[:2] == b"\x1f\x8b"
    status, headers, _ = fetch(f"{base}/static/admin/css/base.css")
    assert status == 200 and "immutable" not in headers["Cache-Control"]

    status, _, body = fetch(f"{base}/no-such-page/")
    assert status == 404 and b"URLconf" not in body  # not the DEBUG page

    # A graceful stop on SIGTERM, as honcho and supervisors send it.
    os.killpg(proc.pid, signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
    log.seek(0)
    output = log.read()
    assert re.search(r'"GET /admin/login/ HTTP/1.1" 200 .* request_id=[0-9a-f]{32}', output)
    assert output.count("Not Found: /no-such-page/") == 1


@pytest.mark.e2e
def test_metrics_add_up_across_two_gunicorn_workers(gunicorn_two_workers, tmp_path):
    """Prometheus's multiprocess mode: /metrics counts every request, whichever worker served
    it, and the stored minute buckets hold the same count."""
    base, _proc, _log = gunicorn_two_workers

    def writers() -> set[str]:
        return {p.name.rsplit("_", 1)[-1] for p in (tmp_path / "prometheus").glob("histogram_*")}

    # Until both workers have served (the kernel hands connections to either), at least 60.
    served = 0
    while served < 60 or (len(writers()) < 2 and served < 2000):
        assert fetch(f"{base}/health/live")[0] == 200
        served += 1
    assert len(writers()) == 2, writers()  # both workers served and wrote their samples
    status, headers, body = fetch(f"{base}/metrics")
    assert status == 200 and headers["Content-Type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(body.decode())}
    counted = sum(
        s.value
        for s in families["ledgerguard_http_request_duration_seconds"].samples
        if s.name.endswith("_count") and s.labels["route"] == "health-live"
    )
    # The polling that waited for the server to answer counts too (one or more requests).
    assert served < counted <= served + 300

    # Each worker wrote its minute buckets once its responses went out (flush every request).
    deadline = time.monotonic() + 10
    while True:
        stored = sum(
            RequestBucket.objects.filter(route="health-live").values_list("count", flat=True)
        )
        if stored == counted or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert stored == counted


@pytest.fixture
def gunicorn_holding_metrics(tmp_path, transactional_db):
    """Two workers that hold their tallies an hour before writing, with gunicorn's own private
    metrics directory."""
    (tmp_path / "tmp").mkdir()
    yield from serve(
        tmp_path,
        workers=2,
        MONITORING_FLUSH_SECONDS="3600",
        PROMETHEUS_MULTIPROC_DIR=None,
        LEDGERGUARD_PROMETHEUS_DIR_MADE=None,
        TMPDIR=str(tmp_path / "tmp"),
    )


@pytest.mark.e2e
def test_a_stopping_worker_writes_the_metrics_it_holds(gunicorn_holding_metrics, tmp_path):
    """A deployment's SIGTERM: what the workers held in memory is in the minute buckets after
    they exit, not lost; the private metrics directory goes with the master."""
    base, proc, _log = gunicorn_holding_metrics
    made = list((tmp_path / "tmp").glob("ledgerguard-prometheus-*"))
    assert len(made) == 1 and (made[0].stat().st_mode & 0o777) == 0o700
    for _ in range(50):  # a route nothing else asks for (the start-up polling asks health/live)
        assert fetch(f"{base}/no-such-page/")[0] == 404
    unmatched = RequestBucket.objects.filter(route="<unmatched>")
    assert not unmatched.exists()  # held in memory

    os.killpg(proc.pid, signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
    assert sum(unmatched.values_list("count", flat=True)) == 50
    assert not made[0].exists()


@pytest.mark.e2e
def test_a_server_that_never_starts_leaves_no_metrics_directory(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    env["TMPDIR"] = str(tmp_path)
    checked = subprocess.run(
        [sys.executable, "-m", "gunicorn", "--config", "gunicorn.conf.py", "--check-config"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert checked.returncode == 0, checked.stderr
    assert not list(tmp_path.glob("ledgerguard-prometheus-*"))
