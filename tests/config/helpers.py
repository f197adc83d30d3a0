"""Driving admin forms as a browser would."""

from django.forms import MultiWidget


def form_data(form) -> dict[str, object]:
    """What a browser would post back for an admin form as it was rendered."""
    data: dict[str, object] = {}
    for name in form.fields:
        value = form[name].value()
        widget = form.fields[name].widget
        if isinstance(widget, MultiWidget):
            for i, part in enumerate(widget.decompress(value)):
                if part not in (None, ""):
                    data[f"{name}_{i}"] = part
        elif isinstance(value, bool):
            if value:
                data[name] = "on"
        elif value not in (None, ""):
            data[name] = value
    return data
