"""The console's frame: charts drawn as SVG images with a text alternative, the range selector
that never fails on a hand-edited URL, and the dashboard registry."""

import base64
from decimal import Decimal
from pathlib import Path

import pytest
from django.test import RequestFactory

from config import charts, dashboards


def _svg(chart: charts.Chart) -> str:
    prefix = "data:image/svg+xml;base64,"
    assert chart.data_uri.startswith(prefix)
    return base64.b64decode(chart.data_uri[len(prefix) :]).decode()


def test_a_line_chart_is_an_svg_image_with_its_figures_in_words_and_a_table():
    chart = charts.line_chart(
        title="p95 latency",
        x_labels=["Mon", "Tue", "Wed"],
        series={"p95 (ms)": [120.0, None, 95.5], "p50 (ms)": [40, 42, 38]},
    )
    svg = _svg(chart)
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg
    assert "<script" not in svg  # an image runs none anyway; pygal's CDN script is off
    assert chart.alt.startswith("p95 latency, Mon to Wed: p95 (ms) from 120.00 to 95.50")
    assert chart.headers == ("", "p95 (ms)", "p50 (ms)")
    assert chart.rows[1] == ("Tue", "-", "42")  # a gap stays a gap


def test_an_empty_chart_says_so():
    chart = charts.bar_chart(title="Backups", x_labels=[], series={})
    assert chart.alt == "Backups: no data yet."
    assert "No data yet" in _svg(chart)


def test_money_is_drawn_from_decimals_and_shown_as_given():
    chart = charts.bar_chart(
        title="Income", x_labels=["Jan"], series={"Income": [Decimal("1234567.89")]}
    )
    assert chart.rows == (("Jan", "1,234,567.89"),)


@pytest.mark.parametrize("value", ["", "zzz", "year%00", "<script>", "day" * 100])
def test_an_unknown_range_falls_back_to_the_default(value):
    request = RequestFactory().get("/", {"range": value})
    assert dashboards.selected_range(request, default="week").key == "week"


def test_a_range_outside_the_allowed_ones_falls_back():
    request = RequestFactory().get("/", {"range": "year"})
    chosen = dashboards.selected_range(request, default="day", allowed=("hour", "day"))
    assert chosen.key == "day"
    context = dashboards.range_context(request, chosen, allowed=("hour", "day"))
    assert [r["key"] for r in context["ranges"]] == ["hour", "day"]


def test_a_dashboard_key_cannot_be_registered_twice_with_another_page():
    first = dashboards.Dashboard(
        key="test-only", title="Test", order=1, visible=lambda u: True, urls=lambda s: []
    )
    dashboards.register(first)
    dashboards.register(first)  # the same page again (a module imported twice) is fine
    with pytest.raises(ValueError, match="registered twice"):
        dashboards.register(
            dashboards.Dashboard(
                key=first.key, title="Other", order=1, visible=lambda u: True, urls=lambda s: []
            )
        )
    dashboards.unregister("test-only")


def test_non_staff_see_no_dashboard(django_user_model):
    user = django_user_model(username="someone", is_staff=False, is_superuser=True)
    assert dashboards.visible_dashboards(user) == []


def test_counts_stay_whole_numbers_in_the_text_alternative():
    chart = charts.bar_chart(title="Runs", x_labels=["a", "b"], series={"passed": [2, 5]})
    assert chart.alt == "Runs, a to b: passed from 2 to 5 (lowest 2, highest 5)."


def test_a_status_is_drawn_in_its_own_colour_whatever_the_order():
    chart = charts.bar_chart(
        title="Runs", x_labels=["a"], series={"Fail": [1], "Pass": [2], "Warn": [3]}, stacked=True
    )
    svg = _svg(chart)
    fail, ok, warn = (svg.index(c) for c in ("#ba2121", "#2e6b30", "#b35c00"))
    assert fail < ok < warn  # pygal writes the series' colours in the order they were added


def test_the_stylesheet_has_every_rule_closed():
    """Merging the apps' style blocks once dropped closing braces: every rule after the first
    unclosed one was silently ignored by the browser."""
    css = (Path(__file__).resolve().parents[2] / "config/static/ledgerguard/admin.css").read_text()
    depth = 0
    for number, line in enumerate(css.splitlines(), 1):
        depth += line.count("{") - line.count("}")
        assert 0 <= depth <= 1, f"admin.css:{number}: a rule inside a rule"
    assert depth == 0
