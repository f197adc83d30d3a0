"""What every engine's database metrics give: the figures kept as columns, the rest as JSON."""

from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass
class DatabaseFigures:
    """One reading of a database. `volume_path` is a local directory on the database's volume
    (None when the database is on another host or its directory cannot be read), for the host
    figures' disk usage; `notes` say what could not be read and why."""

    engine: str
    database_bytes: int
    connections_total: int | None = None
    cache_hit_ratio: float | None = None
    deadlocks: int | None = None
    volume_path: str | None = None
    figures: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


class DatabaseMetrics(Protocol):
    """Reads one engine's figures through a Django connection; never writes."""

    engine: str

    def collect(self, connection: Any) -> DatabaseFigures: ...
