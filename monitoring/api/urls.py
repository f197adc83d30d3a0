from config.routers import Router
from monitoring.api import views

router = Router()
router.register("metrics/requests", views.RequestBucketViewSet, basename="request-bucket")
router.register("metrics/tasks", views.TaskBucketViewSet, basename="task-bucket")
router.register("metrics/daily", views.DailyStatisticViewSet, basename="daily-statistic")
router.register("metrics/thresholds", views.ThresholdViewSet, basename="threshold")
router.register("metrics/slow-requests", views.SlowRequestViewSet, basename="slow-request")
router.register("metrics/slow-queries", views.SlowQueryViewSet, basename="slow-query")
router.register("metrics/storage", views.DailyStorageViewSet, basename="daily-storage")
router.register("metrics/snapshots", views.DatabaseSnapshotViewSet, basename="snapshot")

urlpatterns = router.urls
