"""Query filters with strict integers and ids (see config/serializers.py for why).

django-filter reads a number filter as a decimal (`?fiscal_year=2026.5`, `?number=\\u0661`)
and a foreign key by handing the text to the model field's `int()`. Every filter set of the
API inherits FilterSet below, and FilterBackend builds the automatic ones (`filterset_fields`)
from it, so integers and ids in query strings are ASCII digits only.
"""

from datetime import UTC

from django import forms
from django.core.exceptions import ValidationError
from django.db import models
from django_filters import fields, filters
from django_filters import rest_framework as drf_filters

from config.serializers import strict_int


class IntegerFormField(forms.IntegerField):
    def to_python(self, value):
        if value in self.empty_values:
            return None
        number = strict_int(value)
        if number is None:
            raise ValidationError(self.error_messages["invalid"], code="invalid")
        return number


class IdChoiceField(fields.ModelChoiceField):
    def to_python(self, value):
        if value in self.empty_values or (self.null_label is not None and value == self.null_value):
            return super().to_python(value)
        number = strict_int(value)
        if number is None or number <= 0:
            raise ValidationError(self.error_messages["invalid_choice"], code="invalid_choice")
        return super().to_python(str(number))


class BooleanFormField(forms.NullBooleanField):
    """`true` or `false` (what the schema documents); Django's reads anything else as unset."""

    widget = forms.TextInput

    def to_python(self, value):
        if value in (None, ""):
            return None
        if value in ("true", "false"):
            return value == "true"
        raise ValidationError("Must be true or false.", code="invalid")


class UtcDateTimeFormField(fields.IsoDateTimeField):
    """An ISO 8601 time, as UTC: an offset the database cannot hold (Python takes up to 24
    hours, PostgreSQL 15:59) is converted away before any query sees it, and a time that
    leaves the calendar once converted is refused."""

    def to_python(self, value):
        moment = super().to_python(value)
        if moment is None:
            return None
        try:
            return moment.astimezone(UTC)
        except (OverflowError, ValueError):
            raise ValidationError("Enter a time within years 1 to 9999.", code="invalid") from None


class UtcDateTimeFilter(filters.IsoDateTimeFilter):
    field_class = UtcDateTimeFormField


class BooleanFilter(filters.BooleanFilter):
    field_class = BooleanFormField


class IntegerFilter(filters.NumberFilter):
    field_class = IntegerFormField


class IdFilter(filters.ModelChoiceFilter):
    field_class = IdChoiceField


_DEFAULTS = drf_filters.FilterSet.FILTER_DEFAULTS
_INTEGER_FIELDS = (
    models.AutoField,
    models.BigAutoField,
    models.SmallIntegerField,
    models.IntegerField,
    models.BigIntegerField,
    models.PositiveIntegerField,
    models.PositiveSmallIntegerField,
    models.PositiveBigIntegerField,
)


class FilterSet(drf_filters.FilterSet):
    FILTER_DEFAULTS = {
        **_DEFAULTS,
        **{field: {"filter_class": IntegerFilter} for field in _INTEGER_FIELDS},
        models.BooleanField: {"filter_class": BooleanFilter},
        models.NullBooleanField: {"filter_class": BooleanFilter},
        models.ForeignKey: {**_DEFAULTS[models.ForeignKey], "filter_class": IdFilter},
        models.OneToOneField: {**_DEFAULTS[models.OneToOneField], "filter_class": IdFilter},
    }


class FilterBackend(drf_filters.DjangoFilterBackend):
    filterset_base = FilterSet
