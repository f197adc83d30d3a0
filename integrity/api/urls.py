from rest_framework.routers import SimpleRouter

from integrity.api import views

router = SimpleRouter()
router.register("dead-letters", views.DeadLetterViewSet, basename="dead-letter")
router.register("checks", views.CheckViewSet, basename="check")
router.register("check-runs", views.CheckRunViewSet, basename="check-run")
router.register("check-findings", views.FindingViewSet, basename="check-finding")

urlpatterns = router.urls
