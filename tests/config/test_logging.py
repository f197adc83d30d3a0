"""The console: each 4xx is one line without a traceback; a 5xx keeps its traceback."""

import io
import logging

import pytest


def warnings_and_up(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno >= logging.WARNING]


@pytest.fixture
def console():
    """Everything our logging configuration writes to a stream, in one buffer."""
    buffer = io.StringIO()
    loggers = [logging.getLogger()] + [
        logger
        for logger in logging.Logger.manager.loggerDict.values()
        if isinstance(logger, logging.Logger)
    ]
    swapped = [
        (handler, handler.setStream(buffer))
        for logger in loggers
        for handler in logger.handlers
        # pytest's own capture handlers are StreamHandlers too; leave them alone.
        if isinstance(handler, logging.StreamHandler)
        and not type(handler).__module__.startswith("_pytest")
    ]
    yield buffer
    for handler, stream in swapped:
        handler.setStream(stream)


def test_admin_403_is_one_record_without_traceback(client, clerk, caplog):
    client.force_login(clerk)
    with caplog.at_level(logging.INFO):
        response = client.get("/admin/auth/user/")
    assert response.status_code == 403
    [record] = warnings_and_up(caplog)
    assert record.name == "django.request" and record.status_code == 403
    assert record.getMessage() == "Forbidden (Permission denied): /admin/auth/user/"
    assert record.exc_info is None and record.exc_text is None


def test_404_is_one_record_without_traceback(client, caplog):
    with caplog.at_level(logging.INFO):
        response = client.get("/no-such-page/")
    assert response.status_code == 404
    [record] = warnings_and_up(caplog)
    assert record.getMessage() == "Not Found: /no-such-page/"
    assert record.exc_info is None


def test_api_403_is_one_record_without_traceback(api, clerk, caplog):
    with caplog.at_level(logging.INFO):
        response = api.as_user(clerk).get("/api/v1/dead-letters/")
    assert response.status_code == 403
    [record] = warnings_and_up(caplog)
    assert record.status_code == 403 and record.exc_info is None


@pytest.mark.urls("tests.monitoring.urls")
def test_500_keeps_its_traceback_once(db, client, caplog):
    client.raise_request_exception = False
    with caplog.at_level(logging.INFO):
        response = client.get("/boom/7/")
    assert response.status_code == 500
    [record] = [r for r in caplog.records if r.exc_info]
    assert record.name == "django.request" and record.levelno == logging.ERROR
    assert record.exc_info[0] is RuntimeError


@pytest.mark.parametrize("debug", [True, False])
def test_the_console_shows_a_4xx_once_without_traceback(client, clerk, settings, console, debug):
    # With DEBUG on, Django's own console handler used to print django.* records a second time.
    settings.DEBUG = debug
    client.force_login(clerk)
    assert client.get("/admin/auth/user/").status_code == 403
    assert client.get("/no-such-page/").status_code == 404
    text = console.getvalue()
    assert text.count("Forbidden (Permission denied): /admin/auth/user/") == 1, text
    assert text.count("Not Found: /no-such-page/") == 1, text
    assert "Traceback" not in text


def test_a_bad_host_header_is_logged_without_traceback(client, console):
    response = client.get("/admin/", HTTP_HOST="evil.example")
    assert response.status_code == 400
    text = console.getvalue()
    assert "Invalid HTTP_HOST header" in text and "Traceback" not in text, text
