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


class ExplodingMiddleware:
    """Fails outside any view, for the capture test."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path == "/explode/":
            raise RuntimeError("middleware exploded")
        return self.get_response(request)
