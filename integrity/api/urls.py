from rest_framework.routers import SimpleRouter

from integrity.api import views

router = SimpleRouter()
router.register("dead-letters", views.DeadLetterViewSet, basename="dead-letter")

urlpatterns = router.urls
