import re
from typing import TYPE_CHECKING

from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import BasePagination, CursorPagination, PageNumberPagination

MAX_BIGINT = 2**63 - 1
_DIGITS = re.compile(r"[0-9]{1,19}")

if TYPE_CHECKING:
    _Paginator = BasePagination  # what the mixin is mixed into
else:
    _Paginator = object


class StrictPageSizeMixin(_Paginator):
    """`page_size` is a whole number from 1 (more than max_page_size is cut to it), or absent
    (or empty): DRF quietly used its default for anything else (`page_size=abc`,
    `page_size=0`, `page_size=\\u0665`)."""

    # Set by the classes that mix this in (both have them).
    page_size: int | None
    page_size_query_param: str
    max_page_size: int

    def get_page_size(self, request):
        raw = request.query_params.get(self.page_size_query_param)
        if raw in (None, ""):
            return self.page_size
        if not _DIGITS.fullmatch(raw) or int(raw) < 1:
            raise ValidationError({self.page_size_query_param: ["A whole number from 1."]})
        return min(int(raw), self.max_page_size)

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"] = {
                    "type": "integer",
                    "minimum": 1,
                    "description": f"Items per page; more than {self.max_page_size} is cut to it.",
                }
        return parameters


class Pagination(StrictPageSizeMixin, PageNumberPagination):
    page_size_query_param = "page_size"
    max_page_size = 500
    last_page_strings = ()  # `page` is a number, as documented

    def get_page_number(self, request, paginator):
        raw = request.query_params.get(self.page_query_param) or "1"
        if not _DIGITS.fullmatch(raw):
            raise ValidationError({self.page_query_param: ["A whole number from 1."]})
        return raw

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_query_param:
                parameter["schema"] = {"type": "integer", "minimum": 1}
        return parameters


class IdCursorPagination(StrictPageSizeMixin, CursorPagination):
    """Cursor pagination by a unique, increasing integer id: a page starts after the last id
    seen, so rows added between two fetches neither repeat nor push others off a page.

    A cursor that is not ours (bad encoding, a position that is not an id) is a 400.
    """

    ordering = "-id"
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500
    invalid_cursor_message = "Invalid cursor."

    def decode_cursor(self, request):
        try:
            cursor = super().decode_cursor(request)
        except NotFound as exc:
            raise ValidationError({self.cursor_query_param: [self.invalid_cursor_message]}) from exc
        position = cursor.position if cursor is not None else None
        if position is not None and not (
            re.fullmatch(r"[0-9]{1,19}", str(position)) and int(position) <= MAX_BIGINT
        ):
            raise ValidationError({self.cursor_query_param: [self.invalid_cursor_message]})
        return cursor


class IdAscendingCursorPagination(IdCursorPagination):
    ordering = "id"
