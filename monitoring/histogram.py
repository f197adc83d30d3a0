"""Latency histograms with fixed bucket bounds, so that counts from any process, host or minute
add up, and percentiles are read from the sums (as Prometheus's histogram_quantile does).

The bounds are prometheus-client's default buckets, in seconds: the stored minute buckets and
the /metrics histogram count the same way."""

from collections.abc import Sequence

# Upper bounds (inclusive) in seconds; the last bucket is everything above the last bound.
BOUNDS: tuple[float, ...] = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.075,
    0.1,
    0.25,
    0.5,
    0.75,
    1.0,
    2.5,
    5.0,
    7.5,
    10.0,
)
SLOTS = len(BOUNDS) + 1  # one per bound, and one for +Inf


def slot_of(seconds: float) -> int:
    """The bucket a duration falls in: the first bound it does not exceed, else +Inf."""
    for index, bound in enumerate(BOUNDS):
        if seconds <= bound:
            return index
    return len(BOUNDS)


def percentile(counts: Sequence[int], q: float) -> float | None:
    """The q-quantile (0 < q <= 1) in seconds from per-bucket counts (not cumulative), by
    linear interpolation inside the bucket it falls in; None without observations. A quantile
    in the +Inf bucket is reported as the last bound (the histogram cannot say more)."""
    total = sum(counts)
    if total == 0:
        return None
    rank = q * total
    seen = 0
    for index, count in enumerate(counts):
        if count and seen + count >= rank:
            if index == len(BOUNDS):
                return BOUNDS[-1]
            lower = BOUNDS[index - 1] if index else 0.0
            upper = BOUNDS[index]
            return lower + (upper - lower) * (rank - seen) / count
        seen += count
    return BOUNDS[-1]


def add(into: list[int], counts: Sequence[int]) -> list[int]:
    for index, count in enumerate(counts):
        into[index] += count
    return into
