from django.contrib import admin
from django.urls import include, path, re_path
from django.views.decorators.csrf import csrf_exempt
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from alerts import views as alert_views
from config import api
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
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    path("admin/", admin.site.urls),
    path("alerts/ack/<str:token>/", alert_views.acknowledge, name="alert-acknowledge-link"),
    path("alerts/heartbeat/", alert_views.heartbeat, name="alert-heartbeat"),
    # CSRF-exempt: they change nothing, and a POST must get the JSON 405, not the CSRF page.
    re_path(r"^health/live/?$", csrf_exempt(health.LiveView.as_view()), name="health-live"),
    re_path(r"^health/ready/?$", csrf_exempt(health.ReadyView.as_view()), name="health-ready"),
    path("metrics", monitoring_views.metrics, name="metrics"),
    path("api/v1/", include((api_v1, "api"), namespace="v1")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="schema"), name="api-redoc"),
    re_path(r"^api/", api_not_found),
]

handler404 = "config.exceptions.handler404"
handler500 = "config.exceptions.handler500"
