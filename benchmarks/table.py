"""Print the figures the benchmarks recorded (`figure()` in _django.py) as one table.

    python benchmarks/table.py FIGURES.jsonl

`make bench` runs every benchmark with BENCH_FIGURES set to one file, then this. Ratio is the
figure over its baseline, both measured in the same run; target is the issue's, where it set
one. Plain Python: no Django, no database.
"""

import json
import sys


def fmt(value: float | None) -> str:
    if value is None:
        return ""
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.3g}" if abs(value) < 10 else f"{value:.1f}"


def main(path: str) -> None:
    with open(path, encoding="utf-8") as source:
        rows = [json.loads(line) for line in source if line.strip()]
    header = ("benchmark", "figure", "value", "unit", "baseline", "ratio", "target")
    table = [
        (
            r["benchmark"],
            r["figure"],
            fmt(r["value"]),
            r["unit"],
            f"{fmt(r['baseline'])} ({r['baseline_name']})" if r["baseline"] else "",
            f"{r['ratio']:.2f}x" if r["ratio"] is not None else "",
            r["target"],
        )
        for r in rows
    ]
    widths = [max(len(str(c)) for c in column) for column in zip(header, *table, strict=True)]
    for line in (header, tuple("-" * w for w in widths), *table):
        print("  ".join(str(c).ljust(w) for c, w in zip(line, widths, strict=True)).rstrip())


if __name__ == "__main__":
    main(sys.argv[1])
