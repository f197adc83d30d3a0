"""Growth trends: a least-squares line through (day, value) points."""

from collections.abc import Sequence


def slope_per_day(points: Sequence[tuple[float, float]]) -> float | None:
    """The slope of the least-squares line through `points` (x in days, y in any unit), in y
    per day; None with fewer than two points or when they all fall on one day."""
    if len(points) < 2:
        return None
    mean_x = sum(x for x, _ in points) / len(points)
    mean_y = sum(y for _, y in points) / len(points)
    spread = sum((x - mean_x) ** 2 for x, _ in points)
    if spread == 0:
        return None
    return sum((x - mean_x) * (y - mean_y) for x, y in points) / spread
