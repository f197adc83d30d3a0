"""The admin's "Sessions" page (linked from the user tools): your signed-in sessions, where
from and in which browser, and a button to end any other one or all the others. Every staff
user sees their own and no one else's; the endings go through config/sessions.py."""

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin import AdminSite
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, URLResolver, path, reverse
from django.views.decorators.http import require_POST

from config.models import UserSession
from config.sessions import (
    SessionIsCurrent,
    current_digest,
    user_session_end_own,
    user_session_list,
    user_sessions_end_others,
)


def sessions_page(request: HttpRequest) -> HttpResponse:
    current = current_digest(request)
    sessions = [
        {"row": row, "current": row.digest == current}
        for row in user_session_list(user=request.user)
    ]
    context = {
        **admin.site.each_context(request),
        "title": "Your sessions",
        "sessions": sessions,
        "others": sum(1 for s in sessions if not s["current"]),
        "idle_minutes": settings.SESSION_IDLE_TIMEOUT_MINUTES,
        "max_hours": settings.SESSION_MAX_AGE_HOURS,
    }
    return TemplateResponse(request, "admin/config/sessions.html", context)


@require_POST
def session_end(request: HttpRequest, pk: int) -> HttpResponse:
    try:
        user_session_end_own(request=request, session_id=pk)
        messages.success(request, "The session was ended.")
    except UserSession.DoesNotExist:
        messages.error(request, "That session has already ended.")
    except SessionIsCurrent as exc:
        messages.error(request, exc.message)
    return HttpResponseRedirect(reverse("admin:my_sessions"))


@require_POST
def sessions_end_others(request: HttpRequest) -> HttpResponse:
    ended = user_sessions_end_others(
        user=request.user,
        keep_digest=current_digest(request),
        reason="others_ended_by_user",
        actor=request.user,
    )
    messages.success(request, f"Ended {ended} other session(s).")
    return HttpResponseRedirect(reverse("admin:my_sessions"))


def install(site: AdminSite) -> None:
    """Adds the pages to the site's URLs (admin:my_sessions, ...), staff only as every admin
    view (admin_view: login, CSRF, no caching)."""
    site_urls = site.get_urls

    def get_urls() -> list[URLResolver | URLPattern]:
        return [
            path("my-sessions/", site.admin_view(sessions_page), name="my_sessions"),
            path(
                "my-sessions/<int:pk>/end/",
                site.admin_view(session_end),
                name="my_session_end",
            ),
            path(
                "my-sessions/end-others/",
                site.admin_view(sessions_end_others),
                name="my_sessions_end_others",
            ),
            *site_urls(),
        ]

    site.get_urls = get_urls  # type: ignore[method-assign]
