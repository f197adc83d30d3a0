from django.urls import path

from audit.api import views
from config.routers import Router

router = Router()
router.register("audit/events", views.AuditEventViewSet, basename="audit-event")
router.register("audit/verifications", views.VerificationViewSet, basename="audit-verification")
router.register("audit/checkpoints", views.CheckpointViewSet, basename="audit-checkpoint")

urlpatterns = [
    *router.urls,
    path(
        "audit/objects/<str:object_type>/<path:object_id>/timeline/",
        views.ObjectTimelineView.as_view(),
        name="audit-object-timeline",
    ),
    path(
        "audit/users/<int:user_id>/activity/",
        views.UserActivityView.as_view(),
        name="audit-user-activity",
    ),
    path("audit/status/", views.ChainStatusView.as_view(), name="audit-status"),
    path("audit/export/", views.ExportView.as_view(), name="audit-export"),
]
