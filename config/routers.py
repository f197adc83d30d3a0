"""The API's router: ids in URLs are integers.

DRF's default lookup pattern takes any text, so `/entries/abc/submit/` reached the view and
failed in the database layer with a 500. Here a viewset's id matches only 1 to 19 ASCII
digits (a bigint), unless the viewset names its own `lookup_value_regex`; anything else falls
through to the JSON 404 of `config.urls`.
"""

from rest_framework.routers import SimpleRouter

ID_PATTERN = "[0-9]{1,19}"


class Router(SimpleRouter):
    def get_lookup_regex(self, viewset, lookup_prefix=""):
        lookup_field = getattr(viewset, "lookup_field", "pk")
        kwarg = getattr(viewset, "lookup_url_kwarg", None) or lookup_field
        value = getattr(viewset, "lookup_value_regex", ID_PATTERN)
        return f"(?P<{lookup_prefix}{kwarg}>{value})"
