"""gunicorn's settings for the production web process (Procfile.production, `make serve`).

Read from the environment, with defaults for one small machine (docs/deployment.md):
PORT (8000), WEB_CONCURRENCY (2 worker processes), GUNICORN_THREADS (4 threads each),
GUNICORN_TIMEOUT (30 seconds). Any other gunicorn flag goes in GUNICORN_CMD_ARGS, which
overrides this file (`GUNICORN_CMD_ARGS="--bind 127.0.0.1:8000"`).
"""

import os
import shutil
import tempfile
from pathlib import Path

# Prometheus's multiprocess mode (monitoring/prometheus.py): each worker writes its samples to
# files in this directory, and /metrics adds them up across the workers. It must be set before
# prometheus_client is first imported (it decides at import), so here, in the master, before
# any worker starts; one directory per server (a second server on the machine has its own).
os.environ.setdefault(
    "PROMETHEUS_MULTIPROC_DIR",
    str(Path(tempfile.gettempdir()) / f"ledgerguard-prometheus-{os.getpid()}"),
)
from prometheus_client import multiprocess  # after the variable above

wsgi_app = "config.wsgi"
bind = [f"0.0.0.0:{os.environ.get('PORT') or 8000}"]
workers = int(os.environ.get("WEB_CONCURRENCY") or 2)
# More than one thread selects the gthread worker: a slow request does not hold a process.
threads = int(os.environ.get("GUNICORN_THREADS") or 4)
# A worker silent for this long is killed and replaced; its request answers 502 at the proxy.
timeout = int(os.environ.get("GUNICORN_TIMEOUT") or 30)
graceful_timeout = timeout

# Access log on stdout, error log on stderr; the request id matches the error log's.
accesslog = "-"
errorlog = "-"
access_log_format = (
    '%(h)s "%(r)s" %(s)s %(b)s %(M)sms "%(f)s" "%(a)s" request_id=%({x-request-id}o)s'
)

# gunicorn 25.1+ opens a control socket at one path per user ($HOME/.gunicorn/gunicorn.ctl):
# two servers on one machine (a test, `make serve`, a deployment) would take it from each other.
control_socket_disable = True


def on_starting(server: object) -> None:
    """Before the first worker: an empty metrics directory (a previous run's files would be
    added in, counting its requests twice)."""
    directory = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True, mode=0o700)


def child_exit(server: object, worker: object) -> None:
    """A worker that exited: its live gauges go (its counters and histograms stay counted)."""
    multiprocess.mark_process_dead(worker.pid)  # type: ignore[attr-defined]
