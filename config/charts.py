"""Charts for the dashboards: SVG drawn on the server by pygal, shown as an image.

Each chart is a `Chart`: the picture as a `data:` URL (the Content Security Policy allows
`img-src 'self' data:` and no inline script or style, and an SVG shown as an image runs no
script and keeps its own styles to itself) and its text alternative, a one-sentence summary
for `alt` plus the figures as a table (`templates/admin/dashboards/_chart.html` puts them
under the picture in a <details>). No JavaScript, no CDN, nothing to build.

Series values are floats or None (a gap); money is turned into float here only for drawing,
the table beside it keeps the figures as the caller formatted them.
"""

import base64
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal

import pygal
from pygal.style import Style

# Series that mean no status take these in turn: the stock admin's blue first, then colours
# that keep a 3:1 contrast on white and are none of the status colours below.
PALETTE = ("#417690", "#6a4c93", "#00727a", "#5b6770", "#7a5c2e", "#264b6e")
STYLE_OPTIONS: dict[str, object] = dict(
    background="#ffffff",
    plot_background="#ffffff",
    foreground="#333333",
    foreground_strong="#333333",
    foreground_subtle="#767676",
    opacity="0.85",
    opacity_hover="1",
    font_family="-apple-system, 'Segoe UI', system-ui, Roboto, 'Helvetica Neue', Arial, sans-serif",
    label_font_size=11,
    major_label_font_size=11,
    value_font_size=11,
    legend_font_size=12,
    title_font_size=14,
)

Number = float | int | Decimal | None

# Series whose name is a status or a severity take that status's colour, the same as the
# tiles' (a failed run is never drawn green); an objective is a grey line; the rest take the
# palette in turn.
MEANINGS = {
    "pass": "#2e6b30",
    "passed": "#2e6b30",
    "ok": "#2e6b30",
    "info": "#417690",
    "warn": "#b35c00",
    "warning": "#b35c00",
    "fail": "#ba2121",
    "failed": "#ba2121",
    "error": "#8b1a1a",
    "critical": "#5a0a0a",
}
OBJECTIVE = "#767676"


def _colours(names: Sequence[str]) -> tuple[str, ...]:
    free = list(PALETTE)
    colours = []
    for name in names:
        word = name.lower().split(" (")[0].strip()
        if word in MEANINGS:
            colours.append(MEANINGS[word])
        elif word.startswith("objective"):
            colours.append(OBJECTIVE)
        else:
            colours.append(free.pop(0) if free else PALETTE[len(colours) % len(PALETTE)])
    return tuple(colours) or PALETTE


@dataclass(frozen=True)
class Chart:
    """A drawn chart and its text alternative."""

    title: str
    data_uri: str
    alt: str
    headers: tuple[str, ...] = ()
    rows: tuple[tuple[str, ...], ...] = field(default_factory=tuple)
    width: int = 720
    height: int = 240


def _number(value: Number) -> float | None:
    return None if value is None else float(value)


def _cell(value: Number) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.2f}" if abs(value) < 1000 else f"{value:,.0f}"
    return f"{value:,}"


# pygal always writes its configuration as a script element (for its tooltips): an image runs
# no script, but the bytes are dropped so the picture carries none. So are its comments.
_SCRIPT = re.compile(rb"<script\b.*?</script>", re.S)
_COMMENT = re.compile(rb"<!--.*?-->", re.S)


def _encode(chart: pygal.graph.graph.Graph) -> str:
    svg = _COMMENT.sub(b"", _SCRIPT.sub(b"", chart.render(is_unicode=False)))
    return "data:image/svg+xml;base64," + base64.b64encode(svg).decode("ascii")


def _configure(
    kind: type, *, names: Sequence[str], y_title: str, width: int, height: int, **options
):
    return kind(
        js=[],  # pygal's tooltips come from its CDN; an image runs no script anyway
        style=Style(**STYLE_OPTIONS, colors=_colours(names)),
        title=None,  # the page's heading names the chart; the figure caption repeats it
        y_title=y_title or None,
        width=width,
        height=height,
        legend_at_bottom=True,
        legend_at_bottom_columns=4,
        truncate_legend=-1,
        show_minor_x_labels=False,
        truncate_label=-1,  # the labels shown are few (major ones): whole, never "20..."
        margin=8,
        margin_bottom=36,  # pygal leaves the legend too little room under leaning labels
        print_values=False,
        no_data_text="No data yet",
        **options,
    )


def _label(chart: pygal.graph.graph.Graph, x_labels: Sequence[str]) -> None:
    """Long labels (a date and a time) lean, so that the few shown never overlap."""
    chart.x_labels = list(x_labels)
    longest = max(map(len, x_labels), default=0)
    crowded = longest > 10 or (longest >= 8 and len(x_labels) > 8)
    chart.config.x_label_rotation = 20 if crowded else 0


def _table(
    x_labels: Sequence[str], series: dict[str, Sequence[Number]]
) -> tuple[tuple[str, ...], tuple[tuple[str, ...], ...]]:
    names = tuple(series)
    rows = tuple(
        (label, *(_cell(series[name][i]) for name in names)) for i, label in enumerate(x_labels)
    )
    return ("", *names), rows


def _summary(title: str, x_labels: Sequence[str], series: dict[str, Sequence[Number]]) -> str:
    if not x_labels or not series:
        return f"{title}: no data yet."
    parts = []
    for name, values in series.items():
        present = [v for v in values if v is not None]
        if not present:
            parts.append(f"{name}: no data")
            continue
        parts.append(
            f"{name} from {_cell(present[0])} to {_cell(present[-1])} "
            f"(lowest {_cell(min(present))}, highest {_cell(max(present))})"
        )
    return f"{title}, {x_labels[0]} to {x_labels[-1]}: " + "; ".join(parts) + "."


def _drawn(
    chart: pygal.graph.graph.Graph,
    title: str,
    x_labels: Sequence[str],
    series: dict[str, Sequence[Number]],
) -> Chart:
    """The configured chart with its labels and series, drawn, and its text alternative."""
    _label(chart, x_labels)
    for name, values in series.items():
        chart.add(name, [_number(v) for v in values])
    headers, rows = _table(x_labels, series)
    return Chart(
        title=title,
        data_uri=_encode(chart),
        alt=_summary(title, x_labels, series),
        headers=headers,
        rows=rows,
        width=chart.config.width,
        height=chart.config.height,
    )


def line_chart(
    *,
    title: str,
    x_labels: Sequence[str],
    series: dict[str, Sequence[Number]],
    y_title: str = "",
    width: int = 720,
    height: int = 280,
    stacked: bool = False,
) -> Chart:
    """A line per series over the x labels (times or dates, oldest first)."""
    kind = pygal.StackedLine if stacked else pygal.Line
    chart = _configure(
        kind,
        names=list(series),
        y_title=y_title,
        width=width,
        height=height,
        show_dots=len(x_labels) <= 60,
        dots_size=2,
        fill=stacked,
        x_labels_major_count=min(len(x_labels), 8) or None,
        allow_interruptions=True,
    )
    return _drawn(chart, title, x_labels, series)


def bar_chart(
    *,
    title: str,
    x_labels: Sequence[str],
    series: dict[str, Sequence[Number]],
    y_title: str = "",
    width: int = 720,
    height: int = 280,
    stacked: bool = False,
    horizontal: bool = False,
) -> Chart:
    """Bars per x label, a colour per series (stacked when asked)."""
    if horizontal:
        kind = pygal.HorizontalStackedBar if stacked else pygal.HorizontalBar
    else:
        kind = pygal.StackedBar if stacked else pygal.Bar
    chart = _configure(
        kind,
        names=list(series),
        y_title=y_title,
        width=width,
        height=height,
        x_labels_major_count=min(len(x_labels), 12) or None,
    )
    return _drawn(chart, title, x_labels, series)
