"""The audit dashboard's forms (audit/dashboard.py): the search, an object's timeline and the
export. Every value is hostile until one of these has read it: bad values become form errors,
never a query that fails."""

import datetime as dt
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator

from audit.actions import catalogue
from audit.export import FORMATS

OBJECT_TYPE = RegexValidator(
    r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$",
    "An object type is app_label.model, e.g. finance.journalentry.",
)
DATETIME_INPUT = forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")
# What the model's columns hold (audit/models.py): longer cannot match anything.
USERNAME_MAX, OBJECT_TYPE_MAX, OBJECT_ID_MAX = 150, 100, 64


class _UtcDateTimeField(forms.DateTimeField):
    """A date and time that has a UTC equivalent: "0001-01-01T00:00+14:00" parses, but the
    database layer's conversion to UTC overflows (a 500 where a form error belongs)."""

    def to_python(self, value: Any) -> dt.datetime | None:
        result = super().to_python(value)
        if result is not None:
            try:
                result.astimezone(dt.UTC)
            except OverflowError:
                raise ValidationError(
                    "Enter a date and time between years 1 and 9999 in UTC.", code="invalid"
                ) from None
        return result


class _Window(forms.Form):
    """`since` inclusive and `until` exclusive, ISO 8601 or the browser's datetime-local value
    (in the site's time zone when it has no offset)."""

    since = _UtcDateTimeField(required=False, widget=DATETIME_INPUT)
    until = _UtcDateTimeField(required=False, widget=DATETIME_INPUT)

    def clean(self) -> dict[str, Any]:
        data: dict[str, Any] = super().clean() or {}
        since, until = data.get("since"), data.get("until")
        if since is not None and until is not None and until <= since:
            self.add_error("until", "Until must be later than since.")
        return data


class EventSearchForm(_Window):
    actor = forms.CharField(
        required=False, max_length=USERNAME_MAX, label="Actor (username)", strip=True
    )
    action = forms.ChoiceField(required=False)
    object_type = forms.CharField(
        required=False, max_length=OBJECT_TYPE_MAX, validators=[OBJECT_TYPE], strip=True
    )
    object_id = forms.CharField(required=False, max_length=OBJECT_ID_MAX, strip=True)

    field_order = ["actor", "action", "object_type", "object_id", "since", "until"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        choices = [("", "any action"), *((code, code) for code in catalogue())]
        self.fields["action"].choices = choices  # type: ignore[attr-defined]  # a ChoiceField

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("object_id") and not data.get("object_type"):
            self.add_error("object_type", "An object id needs its object type.")
        return data


class TimelineForm(forms.Form):
    object_type = forms.CharField(max_length=OBJECT_TYPE_MAX, validators=[OBJECT_TYPE], strip=True)
    object_id = forms.CharField(max_length=OBJECT_ID_MAX, strip=True)


class ExportForm(_Window):
    format = forms.ChoiceField(choices=[(f, f) for f in FORMATS])
