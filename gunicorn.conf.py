"""gunicorn's settings for the production web process (Procfile.production, `make serve`).

Read from the environment, with defaults for one small machine (docs/deployment.md):
PORT (8000), WEB_CONCURRENCY (2 worker processes), GUNICORN_THREADS (4 threads each),
GUNICORN_TIMEOUT (30 seconds). Any other gunicorn flag goes in GUNICORN_CMD_ARGS, which
overrides this file (`GUNICORN_CMD_ARGS="--bind 127.0.0.1:8000"`).
"""

import atexit
import os
import shutil
import tempfile
from pathlib import Path

# Prometheus's multiprocess mode (monitoring/prometheus.py): each worker writes its samples to
# files in this directory, and /metrics adds them up across the workers. It must be set before
# prometheus_client is first imported (it decides at import), so here, in the master, before
# any worker starts; one directory per server (a second server on the machine has its own).
# The default is a fresh private directory (mkdtemp: a name nobody can guess or plant ahead, mode
# 0700) that the master removes when it exits.
# (A SIGHUP reads this file again: the marker says the directory is still the master's own.)
if "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="ledgerguard-prometheus-")
    os.environ["LEDGERGUARD_PROMETHEUS_DIR_MADE"] = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    _MASTER = os.getpid()

    def _remove_made_dir(directory: str = os.environ["PROMETHEUS_MULTIPROC_DIR"]) -> None:
        """Also when the master never runs on_exit (--check-config, a port already taken);
        never in a worker, which inherits this hook when it is forked."""
        if os.getpid() == _MASTER:
            shutil.rmtree(directory, ignore_errors=True)

    atexit.register(_remove_made_dir)
MADE_MULTIPROC_DIR = (
    os.environ.get("LEDGERGUARD_PROMETHEUS_DIR_MADE") == os.environ["PROMETHEUS_MULTIPROC_DIR"]
)
from prometheus_client import multiprocess  # noqa: E402 - after the variable above

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
# Signed links in request lines, paths and referrers are masked (config/logfilters.py).
logger_class = "config.logfilters.GunicornLogger"
access_log_format = (
    '%(h)s "%(r)s" %(s)s %(b)s %(M)sms "%(f)s" "%(a)s" request_id=%({x-request-id}o)s'
)

# gunicorn 25.1+ opens a control socket at one path per user ($HOME/.gunicorn/gunicorn.ctl):
# two servers on one machine (a test, `make serve`, a deployment) would take it from each other.
control_socket_disable = True


def on_starting(server: object) -> None:
    """Before the first worker: no samples of an earlier run in the metrics directory (they
    would be added in, counting its requests twice). Only prometheus-client's own files are
    removed from a directory given in PROMETHEUS_MULTIPROC_DIR."""
    directory = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    directory.mkdir(parents=True, mode=0o700, exist_ok=True)
    for samples in directory.glob("*.db"):
        samples.unlink(missing_ok=True)


def on_exit(server: object) -> None:
    """The master is done: remove the directory it made (not one it was given)."""
    if MADE_MULTIPROC_DIR:
        shutil.rmtree(os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)


def worker_exit(server: object, worker: object) -> None:
    """In the worker, as it exits (a restart, a deployment, SIGTERM): write the request
    metrics it still holds in memory, which would be lost otherwise."""
    try:
        from monitoring.requestmetrics import flush_at_exit  # noqa: PLC0415 - Django is set up

        flush_at_exit()
    except Exception as exc:  # noqa: BLE001 - a worker's exit must not fail on its metrics
        server.log.warning("request metrics not written at exit: %s", exc)  # type: ignore[attr-defined]


def child_exit(server: object, worker: object) -> None:
    """A worker that exited: its live gauges go (its counters and histograms stay counted)."""
    multiprocess.mark_process_dead(worker.pid)  # type: ignore[attr-defined]
