from django.urls import path

from config.routers import Router
from finance.api import views

router = Router()
router.register("accounts", views.AccountViewSet, basename="account")
router.register("periods", views.PeriodViewSet, basename="period")
router.register("entries", views.EntryViewSet, basename="entry")

urlpatterns = [
    path("trial-balance/", views.TrialBalanceView.as_view(), name="trial-balance"),
    path("balances/", views.BalancesView.as_view(), name="balances"),
    *router.urls,
]
