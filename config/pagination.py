import re

from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import CursorPagination, PageNumberPagination

MAX_BIGINT = 2**63 - 1


class Pagination(PageNumberPagination):
    page_size_query_param = "page_size"
    max_page_size = 500


class IdCursorPagination(CursorPagination):
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
            re.fullmatch(r"[0-9]{1,19}", position) and int(position) <= MAX_BIGINT
        ):
            raise ValidationError({self.cursor_query_param: [self.invalid_cursor_message]})
        return cursor


class IdAscendingCursorPagination(IdCursorPagination):
    ordering = "id"
