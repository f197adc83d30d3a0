from config.routers import Router
from monitoring.api import views

router = Router()
router.register("metrics/requests", views.RequestBucketViewSet, basename="request-bucket")
router.register("metrics/tasks", views.TaskBucketViewSet, basename="task-bucket")
router.register("metrics/daily", views.DailyStatisticViewSet, basename="daily-statistic")
router.register("metrics/thresholds", views.ThresholdViewSet, basename="threshold")

urlpatterns = router.urls
