from backups.api import views
from config.routers import Router

router = Router()
router.register("backups", views.BackupViewSet, basename="backup")
router.register("drills", views.RestoreDrillViewSet, basename="drill")

urlpatterns = router.urls
