"""A test-only urlconf: views that fail, for the request capture tests."""

from django.http import Http404
from django.urls import path
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView


def boom(request, pk):
    raise RuntimeError(f"boom {pk}")


def missing(request):
    raise Http404("no such thing")


class ApiBoomView(APIView):
    permission_classes = [IsAuthenticated]

    def post(self, request):
        request.data  # parsed, as a real view would
        raise RuntimeError("api boom")

    def get(self, request):
        return Response({"ok": True})


urlpatterns = [
    path("boom/<int:pk>/", boom),
    path("missing/", missing),
    path("api/boom/", ApiBoomView.as_view()),
]
