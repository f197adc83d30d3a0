"""Template filters of the monitoring admin pages."""

from django import template
from django.template.defaultfilters import filesizeformat

register = template.Library()


@register.filter
def signed_size(value: float | None) -> str:
    """A growth in bytes as `+1.2 MB`, `-300 bytes` or `-` when unknown."""
    if value is None:
        return "-"
    sign = "-" if value < 0 else "+"
    return f"{sign}{filesizeformat(abs(value))}"


@register.filter
def ms(seconds: float | None) -> str:
    """Seconds as whole milliseconds (`1,234 ms`), or `-` when unknown."""
    if seconds is None:
        return "-"
    return f"{seconds * 1000:,.0f} ms"
