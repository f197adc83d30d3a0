"""What each role can do, observed through the real views and admin classes.

tests/config/test_role_matrix.py compares these observations with the declared matrix
(config/rolematrix.py); `ROLE_MATRIX_DUMP=path pytest tests/config/test_role_matrix.py` writes
what it observed, to review a change to the matrix."""

from typing import Any

from django.contrib import admin
from django.contrib.auth.models import AnonymousUser
from django.test import RequestFactory
from django.urls import URLPattern, URLResolver, get_resolver
from drf_spectacular.generators import EndpointEnumerator

DENIED = (401, 403)
# A path parameter with no object in the fixture: model-level permissions are checked first.
MISSING = "999999999"


def api_endpoints() -> list[tuple[str, str]]:
    """Every (method, path) of the API and its schema and docs, as the OpenAPI generator sees it."""
    return sorted((method, path) for path, _, method, _ in EndpointEnumerator().get_api_endpoints())


def other_paths() -> list[str]:
    """Every URL outside the API and the admin, as its route."""
    routes = []
    for pattern in get_resolver().url_patterns:
        route = str(pattern.pattern).lstrip("^").rstrip("$")
        if route.startswith(("api/", "admin/")) or route == "":
            continue
        routes.append("/" + route)
    return sorted(routes)


def admin_custom_views() -> list[str]:
    """Named admin URLs beyond each model's changelist, add, change, delete and history."""

    def walk(patterns: list[Any]) -> list[str]:
        names = []
        for p in patterns:
            if isinstance(p, URLResolver):
                names += walk(p.url_patterns)
            elif isinstance(p, URLPattern) and p.name:
                names.append(p.name)
        return names

    # Exactly each registered model's own names: a suffix alone would also hide pages such as
    # `password_change` and `auth_user_password_change`.
    suffixes = ("_changelist", "_add", "_history", "_delete", "_change", "_simple_history")
    standard = {
        f"{model._meta.app_label}_{model._meta.model_name}{suffix}"
        for model in admin.site._registry
        for suffix in suffixes
    }
    return sorted(
        name for name in walk(admin.site.get_urls()) if name not in standard and name != "app_list"
    )


def fill(path: str, objects: dict[str, Any]) -> str:
    """An API path with its parameters: the fixture's object for the resource, else MISSING."""
    segments = path.removeprefix("/api/v1/").split("/")
    resource = segments[0] if segments[0] not in ("audit", "metrics", "auth") else segments[1]
    values = {
        "pk": objects.get(resource, MISSING),
        "name": "integrity.scheduler_alive",
        "object_type": "finance.journalentry",
        "object_id": objects.get("entries", MISSING),
        "user_id": objects.get("user", MISSING),
    }
    return path.format(**values)


def api_allowed(client: Any, method: str, path: str, objects: dict[str, Any]) -> tuple[bool, int]:
    response = getattr(client, method.lower())(fill(path, objects), {}, format="json")
    to_login = response.status_code == 302 and "/login/" in response["Location"]
    return not (response.status_code in DENIED or to_login), response.status_code


def admin_model_cells(user: Any) -> dict[str, dict[str, Any]]:
    """Per registered model: what the model admin lets `user` do (no object)."""
    request = RequestFactory().get("/")
    request.user = user or AnonymousUser()
    cells = {}
    for model, model_admin in admin.site._registry.items():
        view = model_admin.has_view_or_change_permission(request)
        actions = sorted(model_admin.get_actions(request)) if view else []
        cells[model._meta.label_lower] = {
            "view": bool(view),
            "add": bool(model_admin.has_add_permission(request)),
            "change": bool(model_admin.has_change_permission(request)),
            "delete": bool(model_admin.has_delete_permission(request)),
            "actions": [a for a in actions if a != "delete_selected"],
        }
    return cells
