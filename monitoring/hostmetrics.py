"""Host and process figures (psutil) for the database snapshots.

CPU: `psutil.cpu_percent(interval=None)` is the CPU use since this process's previous call, and
0.0 on the first. The first reading of a process (or one less than a second after the last)
therefore blocks for 0.1 s and measures that; later ones measure the whole time since the
previous snapshot, which is what a five-minute figure should be. `cpu_window_seconds` says
which.
"""

import os
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import psutil

PRIMER_SECONDS = 0.1
MIN_WINDOW_SECONDS = 1.0

# monotonic time of this process's previous cpu_percent call
_cpu_last_read: float | None = None


def cpu_reading() -> tuple[float, float]:
    """(percent, seconds measured over)."""
    global _cpu_last_read
    now = time.monotonic()
    if _cpu_last_read is None or now - _cpu_last_read < MIN_WINDOW_SECONDS:
        percent, window = psutil.cpu_percent(interval=PRIMER_SECONDS), PRIMER_SECONDS
    else:
        percent, window = psutil.cpu_percent(interval=None), now - _cpu_last_read
    _cpu_last_read = time.monotonic()
    return percent, round(window, 3)


def _existing(path: Path) -> Path:
    """`path`, or its nearest folder that exists (a backup folder not made yet is on the
    volume of its parent)."""
    path = path.absolute()
    while not path.exists() and path.parent != path:
        path = path.parent
    return path


def volumes(places: Iterable[tuple[str, Path]]) -> tuple[list[dict[str, Any]], list[str]]:
    """Disk usage of the volumes holding `places` ((role, path) pairs), one entry per volume
    (paths on one device share it: its roles, and the path measured for each), and notes on
    the paths that could not be read."""
    found: dict[int, dict[str, Any]] = {}
    notes: list[str] = []
    for role, path in places:
        try:
            where = _existing(path)
            device = os.stat(where).st_dev
            if device in found:
                found[device]["roles"].append(role)
                found[device]["paths"][role] = str(where)
                continue
            usage = psutil.disk_usage(str(where))
        except OSError as exc:
            notes.append(f"disk usage of the {role} volume ({path}): {exc.strerror or exc}")
            continue
        found[device] = {
            "roles": [role],
            "paths": {role: str(where)},
            "total_bytes": usage.total,
            "free_bytes": usage.free,
            "used_percent": usage.percent,
            "free_ratio": round(usage.free / usage.total, 4) if usage.total else None,
        }
    return list(found.values()), notes


def host_figures(places: Iterable[tuple[str, Path]]) -> tuple[dict[str, Any], list[str]]:
    """CPU, load average, memory, this process's memory and the disks holding `places`."""
    cpu_percent, cpu_window = cpu_reading()
    memory = psutil.virtual_memory()
    load = psutil.getloadavg()
    disks, notes = volumes(places)
    figures = {
        "cpu_percent": cpu_percent,
        "cpu_window_seconds": cpu_window,
        "cpu_count": psutil.cpu_count(),
        "load_average": [round(x, 2) for x in load],
        "memory_total_bytes": memory.total,
        "memory_available_bytes": memory.available,
        "memory_percent": memory.percent,
        "process_rss_bytes": psutil.Process().memory_info().rss,
        "volumes": disks,
    }
    return figures, notes
