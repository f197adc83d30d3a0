"""Strict input fields shared by every API serializer.

DRF reads an integer with `int(str(data))` and a primary key with the model field's `int()`,
so `1.5` became 1, `true` became 1, and `"\\u0661"` (an Arabic-Indic one), `"1_000"` or `" 7 "`
became numbers. Here an integer, and an id in particular, is a JSON integer or a string of
ASCII digits, and nothing else; ids fit a bigint. Text is a JSON string (not a number turned
into one) and a boolean is true or false (not 0, 1 or "yes"), as the schema says. ModelSerializer
below uses these for every integer, text and boolean column and every foreign key, so an app's
serializers get them by inheriting it.
"""

import re

from django.db import models
from rest_framework import serializers

from config.pagination import MAX_BIGINT

_INTEGER = re.compile(r"-?[0-9]{1,19}")
# As documented (config/schema.py WALL_TIME): no offset, no compact ISO forms.
_WALL_TIME = re.compile(r"([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{1,6})?)?")


def strict_int(data: object) -> int | None:
    """The integer `data` stands for, or None: a JSON integer, or optional '-' and ASCII digits,
    within a bigint's range."""
    if isinstance(data, str) and _INTEGER.fullmatch(data):
        data = int(data)
    if isinstance(data, int) and not isinstance(data, bool) and abs(data) <= MAX_BIGINT:
        return data
    return None


class IntegerField(serializers.IntegerField):
    def to_internal_value(self, data):
        value = strict_int(data)
        if value is None:
            self.fail("invalid")
        return value


class JsonIntegerField(serializers.IntegerField):
    """An integer in a JSON body: a JSON number only (IntegerField also reads the digit strings
    a query string carries; a body that says "5" breaks its schema)."""

    def to_internal_value(self, data):
        if not isinstance(data, int) or isinstance(data, bool) or abs(data) > MAX_BIGINT:
            self.fail("invalid")
        return super().to_internal_value(data)


class PrimaryKeyRelatedField(serializers.PrimaryKeyRelatedField):
    def to_internal_value(self, data):
        value = strict_int(data)
        if value is None and not (isinstance(data, int) and not isinstance(data, bool)):
            self.fail("incorrect_type", data_type=type(data).__name__)
        if value is None or value <= 0:  # an integer no bigint id can have
            self.fail("does_not_exist", pk_value=data)
        return super().to_internal_value(value)


class CharField(serializers.CharField):
    """Text is a JSON string: DRF turned `0` into "0"."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class BooleanField(serializers.BooleanField):
    """true or false: DRF also took 0, 1, "yes", "on", "y"..."""

    def to_internal_value(self, data):
        if isinstance(data, bool):
            return data
        if data in ("true", "false"):  # a query string's spelling
            return data == "true"
        self.fail("invalid", input=data)


class TimeField(serializers.TimeField):
    """A wall-clock time, HH:MM[:SS[.ffffff]]: Python also reads "05:31Z" or "053158", and Django
    then drops the offset without a word."""

    def to_internal_value(self, value):
        if not (isinstance(value, str) and _WALL_TIME.fullmatch(value)):
            self.fail("invalid", format="HH:MM[:SS[.ffffff]]")
        return super().to_internal_value(value)


class ModelSerializer(serializers.ModelSerializer):
    serializer_field_mapping = {
        **serializers.ModelSerializer.serializer_field_mapping,
        models.BooleanField: BooleanField,
        models.CharField: CharField,
        models.TextField: CharField,
        models.TimeField: TimeField,
        models.AutoField: IntegerField,
        models.BigAutoField: IntegerField,
        models.BigIntegerField: IntegerField,
        models.IntegerField: IntegerField,
        models.PositiveBigIntegerField: IntegerField,
        models.PositiveIntegerField: IntegerField,
        models.PositiveSmallIntegerField: IntegerField,
        models.SmallIntegerField: IntegerField,
    }
    serializer_related_field = PrimaryKeyRelatedField
