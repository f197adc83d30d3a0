from config.routers import Router
from integrity.api import views

router = Router()
router.register("dead-letters", views.DeadLetterViewSet, basename="dead-letter")
router.register("checks", views.CheckViewSet, basename="check")
router.register("check-runs", views.CheckRunViewSet, basename="check-run")
router.register("check-findings", views.FindingViewSet, basename="check-finding")

urlpatterns = router.urls
