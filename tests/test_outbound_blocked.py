"""The suite never reaches a real provider, relay or the Internet: only local receivers that a
test started (tests/conftest.py `_outbound_blocked`)."""

import smtplib
import urllib.error
import urllib.request

import pytest

from tests.receivers import OutboundBlocked, Receiver


def test_email_to_a_relay_the_test_did_not_start_is_blocked():
    with pytest.raises(OutboundBlocked):
        smtplib.SMTP("127.0.0.1", 25, timeout=1)


def test_a_webhook_to_the_internet_is_blocked():
    with pytest.raises(urllib.error.URLError) as caught:
        urllib.request.urlopen("http://203.0.113.7/hook", timeout=1)  # TEST-NET-3
    assert isinstance(caught.value.reason, OutboundBlocked)


def test_a_local_receiver_the_test_started_is_reachable():
    receiver = Receiver(status=204, body=b"")
    try:
        with urllib.request.urlopen(f"{receiver.url}/hook", timeout=5) as answer:
            assert answer.status == 204
    finally:
        receiver.stop()
    assert receiver.requests[0]["path"] == "/hook"
