"""The API's one request parser: JSON, refused with a 400 `parse_error` unless it is sound.

DRF's JSONParser answers a 400 for malformed JSON, but a deeply nested body (`[` a thousand
times, 2 KB) made the decoder raise RecursionError, a 500, even on the unauthenticated token
endpoint; and a string holding a lone surrogate (`"\\ud800"`) decodes fine and fails later,
when something encodes it as UTF-8. Here every failure to decode is a ParseError, and the
decoded value is walked once, without recursion, before anything else reads it: deeper than
MAX_DEPTH nested arrays/objects, or a string (or key) that is not valid Unicode, is refused.
"""

import re

from rest_framework import parsers
from rest_framework.exceptions import ParseError

# Arrays and objects nested deeper than this are refused (the API's deepest body is 3).
MAX_DEPTH = 32
_SURROGATE = re.compile("[\ud800-\udfff]")


def check_parsed(data: object, *, max_depth: int = MAX_DEPTH) -> None:
    """Raise ParseError for nesting deeper than `max_depth` or a string with a surrogate."""
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, str):
            if _SURROGATE.search(value):
                raise ParseError("JSON parse error - a string is not valid Unicode.")
            continue
        if isinstance(value, dict):
            children = [*value.keys(), *value.values()]
        elif isinstance(value, list):
            children = value
        else:
            continue
        if depth > max_depth:
            raise ParseError(f"JSON parse error - nested deeper than {max_depth} levels.")
        stack.extend((child, depth + 1) for child in children)


class JSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError(f"JSON parse error - nested deeper than {MAX_DEPTH} levels.") from None
        check_parsed(data)
        return data
