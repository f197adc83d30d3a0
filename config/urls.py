from django.conf import settings
from django.contrib import admin
from django.urls import include, path, re_path
from django.views.decorators.csrf import csrf_exempt
from django.views.generic import RedirectView

from alerts import views as alert_views
from config import api, apidocs
from config.exceptions import api_not_found
from config.routers import Router
from integrity import health
from monitoring import views as monitoring_views

token_router = Router()
token_router.register("auth/tokens", api.TokenViewSet, basename="token")
token_router.register("auth/sessions", api.SessionViewSet, basename="session")

api_v1 = [
    path("auth/token/", api.TokenObtainView.as_view(), name="token-obtain"),
    *token_router.urls,
    path("", include("finance.api.urls")),
    path("", include("integrity.api.urls")),
    path("", include("alerts.api.urls")),
    path("", include("audit.api.urls")),
    path("", include("backups.api.urls")),
    path("", include("monitoring.api.urls")),
]

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="admin:index", permanent=False)),
    # ADMIN_URL: the admin's path (default admin/); everything else reverses admin:* names.
    path(settings.ADMIN_URL, admin.site.urls),
    path("alerts/ack/<str:token>/", alert_views.acknowledge, name="alert-acknowledge-link"),
    path("alerts/heartbeat/", alert_views.heartbeat, name="alert-heartbeat"),
    # CSRF-exempt: they change nothing, and a POST must get the JSON 405, not the CSRF page.
    re_path(r"^health/live/?$", csrf_exempt(health.LiveView.as_view()), name="health-live"),
    re_path(r"^health/ready/?$", csrf_exempt(health.ReadyView.as_view()), name="health-ready"),
    path("metrics", monitoring_views.metrics, name="metrics"),
    path("api/v1/", include((api_v1, "api"), namespace="v1")),
    # Public or staff-only by API_DOCS_PUBLIC (config/apidocs.py).
    path("api/schema/", apidocs.SchemaView.as_view(), name="schema"),
    path("api/docs/", apidocs.SwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("api/redoc/", apidocs.RedocView.as_view(url_name="schema"), name="api-redoc"),
    # Content Security Policy violation reports (CSP_REPORT_ENDPOINT), into the error log.
    path("csp-report/", monitoring_views.csp_report, name="csp-report"),
    re_path(r"^api/", api_not_found),
]

handler404 = "config.exceptions.handler404"
handler500 = "config.exceptions.handler500"
