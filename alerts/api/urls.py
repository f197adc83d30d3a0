from alerts.api import views
from config.routers import Router

router = Router()
router.register("alerts", views.AlertViewSet, basename="alert")
router.register("silences", views.SilenceViewSet, basename="silence")

urlpatterns = router.urls
