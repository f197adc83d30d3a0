"""Records exceptions that escape a (non-DRF) view into the error log.

Placed right after config.middleware.RequestContextMiddleware, so the request id is bound.
DRF views handle their own exceptions; those are recorded by config.exceptions'
api_exception_handler instead.
"""

from monitoring.capture import record_request_exception


class ErrorCaptureMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        record_request_exception(request=request, exc=exception)
        return None  # Django goes on to answer with its 500 handler
