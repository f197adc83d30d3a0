"""The outbound rules (config/outbound.py) against real local HTTP and HTTPS receivers."""

import socket
import ssl

import pytest

from config import outbound
from tests.receivers import Receiver, self_signed, tls_context


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.stop()


@pytest.fixture
def fake_dns(monkeypatch):
    """Names ending in .test resolve to the addresses given here; every lookup is counted."""
    answers: dict[str, list[list[str]]] = {}
    lookups: list[str] = []
    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        if not str(host).endswith(".test"):
            return real(host, port, *args, **kwargs)
        lookups.append(host)
        if host not in answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        # Each lookup takes the next answer: a rebinding resolver.
        addresses = answers[host].pop(0) if len(answers[host]) > 1 else answers[host][0]
        return [
            (socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port))
            for a in addresses
        ]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return answers, lookups


def refused_code(url: str) -> str:
    with pytest.raises(outbound.URLRefused) as caught:
        outbound.check_url(url)
    assert caught.value.http_status == 400
    return caught.value.code


@pytest.mark.parametrize(
    "url",
    [
        "file:///proc/self/environ",
        "ftp://example.com/x",
        "gopher://example.com:70/_x",
        "dict://127.0.0.1:6379/info",
        "javascript:alert(1)",
        "data:text/plain,hello",
        "//example.com/no-scheme",
    ],
)
def test_only_http_and_https_are_allowed(url):
    assert refused_code(url) == "outbound.scheme_not_allowed"


@pytest.mark.parametrize(
    "url",
    [
        "http://user:password@example.com/hook",
        "https://hooks.example.com@127.0.0.1/",
        "https://@example.com/",
    ],
)
def test_credentials_in_the_url_are_refused(url):
    assert refused_code(url) == "outbound.credentials_in_url"


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("http:///just/a/path", "outbound.host_missing"),
        ("https://", "outbound.host_missing"),
        ("http://example.com:0/", "outbound.url_invalid"),
        ("http://example.com:99999/", "outbound.url_invalid"),
        ("http://example.com/a b", "outbound.url_invalid"),
        ("http://example.com\\@127.0.0.1/", "outbound.url_invalid"),
        ("http://example.com/\r\nX-Injected: 1", "outbound.url_invalid"),
        ("", "outbound.url_invalid"),
        ("https://example.com/caf\u00e9", "outbound.url_invalid"),
        ("https://example.com/" + "a" * 3000, "outbound.url_invalid"),
    ],
)
def test_malformed_urls_are_refused(url, code):
    assert refused_code(url) == code


@pytest.mark.parametrize(
    "host", ["2130706433", "0177.0.0.1", "0x7f.0.0.1", "0x7f000001", "127.1", "017700000001"]
)
def test_numbers_that_resolvers_read_as_loopback_are_refused(host):
    assert refused_code(f"http://{host}/") == "outbound.host_invalid"


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "127.255.0.9",
        "[::1]",
        "10.0.0.1",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",  # cloud metadata
        "100.64.0.1",  # shared address space
        "0.0.0.0",
        "[::]",
        "224.0.0.1",
        "[ff02::1]",
        "[fe80::1]",
        "[fc00::1]",
        "[::ffff:127.0.0.1]",  # IPv4-mapped
        "[::ffff:10.0.0.1]",
        "[::ffff:7f00:1]",
        "[64:ff9b::7f00:1]",  # NAT64 of 127.0.0.1
        "[2002:7f00:1::1]",  # 6to4 of 127.0.0.1
        "240.0.0.1",
        "255.255.255.255",
        "192.0.2.1",  # documentation
        "[2001:db8::1]",
    ],
)
def test_non_public_addresses_are_refused(host):
    assert refused_code(f"https://{host}/hook") == "outbound.address_not_allowed"


@pytest.mark.parametrize(
    "host", ["93.184.215.14", "[2606:4700:4700::1111]", "[::ffff:8.8.8.8]", "[64:ff9b::808:808]"]
)
def test_public_addresses_pass(host):
    destination = outbound.check_url(f"https://{host}:8443/hook?token=x#frag")
    assert destination.port == 8443 and destination.target == "/hook?token=x"
    assert str(destination) == f"https://{host}:8443"  # messages never carry the path


def test_a_name_is_refused_when_any_of_its_addresses_is_not_public(fake_dns):
    answers, _ = fake_dns
    answers["mixed.test"] = [["93.184.215.14", "10.1.2.3"]]
    answers["public.test"] = [["93.184.215.14", "2606:4700:4700::1111"]]
    assert refused_code("https://mixed.test/") == "outbound.address_not_allowed"
    assert outbound.check_url("https://public.test/").addresses == (
        "93.184.215.14",
        "2606:4700:4700::1111",
    )
    assert refused_code("http://localhost/") == "outbound.address_not_allowed"
    assert refused_code("https://nowhere.test/") == "outbound.host_unresolvable"


def test_private_addresses_pass_when_allowed(settings):
    settings.OUTBOUND_ALLOW_PRIVATE_ADDRESSES = True
    assert outbound.check_url("http://127.0.0.1:8000/").addresses == ("127.0.0.1",)
    # The scheme and URL rules hold whatever the address setting says.
    assert refused_code("file:///etc/passwd") == "outbound.scheme_not_allowed"
    assert refused_code("http://2130706433/") == "outbound.host_invalid"


def test_allowed_networks_open_only_themselves(settings):
    settings.OUTBOUND_ALLOWED_NETWORKS = ["127.0.0.0/8", "fd00:1::/64"]
    assert outbound.check_url("http://127.0.0.2/").addresses == ("127.0.0.2",)
    assert outbound.check_url("http://[fd00:1::5]/").addresses == ("fd00:1::5",)
    assert refused_code("http://10.0.0.1/") == "outbound.address_not_allowed"


def test_a_request_refused_by_the_rules_is_permanent_and_sends_nothing(receiver):
    with pytest.raises(outbound.OutboundError) as caught:
        outbound.request(receiver.url + "/hook", body=b"{}", timeout=2)
    assert caught.value.permanent and caught.value.code == "outbound.address_not_allowed"
    assert receiver.requests == []


def test_the_connection_goes_to_the_checked_address_not_a_second_lookup(
    fake_dns, receiver, settings
):
    """DNS rebinding: the first answer passes the check, any later one would be private."""
    settings.OUTBOUND_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    answers, lookups = fake_dns
    answers["rebind.test"] = [["127.0.0.1"], ["10.9.9.9"]]
    answer = outbound.request(f"http://rebind.test:{receiver.port}/in?x=1", body=b"{}", timeout=2)
    assert answer.status == 200 and lookups == ["rebind.test"]
    (request,) = receiver.requests
    assert (
        request["path"] == "/in?x=1"
        and request["headers"]["Host"] == f"rebind.test:{receiver.port}"
    )


def test_redirects_are_not_followed(settings):
    settings.OUTBOUND_ALLOW_PRIVATE_ADDRESSES = True
    inner = Receiver()
    outer = Receiver(status=302)
    outer.headers["Location"] = inner.url + "/secret"
    try:
        with pytest.raises(outbound.OutboundError) as caught:
            outbound.request(outer.url, body=b"{}", timeout=2)
        assert caught.value.permanent and caught.value.code == "outbound.redirect"
        assert len(outer.requests) == 1 and inner.requests == []
        outer.headers["Location"] = "file:///proc/self/environ"
        with pytest.raises(outbound.OutboundError):
            outbound.request(outer.url, body=b"{}", timeout=2)
    finally:
        inner.stop()
        outer.stop()


@pytest.mark.parametrize(
    ("status", "permanent"), [(400, True), (404, True), (408, False), (429, False), (503, False)]
)
def test_error_answers_are_permanent_only_for_4xx(settings, status, permanent):
    settings.OUTBOUND_ALLOW_PRIVATE_ADDRESSES = True
    r = Receiver(status=status, body=b"SECRET_KEY=abc")
    try:
        with pytest.raises(outbound.OutboundError) as caught:
            outbound.request(r.url, body=b"{}", timeout=2)
    finally:
        r.stop()
    assert caught.value.permanent is permanent
    assert "abc" not in str(caught.value)  # an error answer's body is never kept


def test_only_a_short_masked_excerpt_of_the_answer_is_kept(receiver, settings):
    settings.OUTBOUND_ALLOW_PRIVATE_ADDRESSES = True
    receiver.body = (
        b'{"ok": true, "token": "tok_live_123", "api_key": "k-99"}\n\x1b[31mSECRET_KEY=s3\x00'
        + b"x" * 10_000
    )
    answer = outbound.request(receiver.url, body=b"{}", timeout=2)
    assert len(answer.excerpt) <= outbound.EXCERPT_LENGTH
    assert answer.excerpt.startswith('{"ok": true, "token": [redacted], "api_key": [redacted]}')
    for leaked in ("tok_live_123", "k-99", "s3", "\x1b", "\x00", "\n"):
        assert leaked not in answer.excerpt


def test_get_requests_for_pings(receiver, settings):
    settings.OUTBOUND_ALLOW_PRIVATE_ADDRESSES = True
    assert str(outbound.request(receiver.url + "/ping", method="GET", timeout=2)).startswith("200")
    assert receiver.requests[0]["method"] == "GET"


def test_an_unreachable_receiver_is_worth_another_try(settings):
    settings.OUTBOUND_ALLOW_PRIVATE_ADDRESSES = True
    r = Receiver()
    r.stop()
    with pytest.raises(outbound.OutboundError) as caught:
        outbound.request(r.url, body=b"{}", timeout=2)
    assert not caught.value.permanent and caught.value.code == "outbound.unreachable"


def test_an_unresolvable_host_is_worth_another_try(fake_dns):
    with pytest.raises(outbound.OutboundError) as caught:
        outbound.request("https://gone.test/hook", body=b"{}", timeout=2)
    assert not caught.value.permanent and caught.value.code == "outbound.host_unresolvable"


@pytest.fixture
def certificate(tmp_path):
    """A self-signed certificate for witness.test: (certificate, key) paths."""
    return self_signed(tmp_path, "DNS:witness.test")


def test_https_to_a_checked_address_still_verifies_the_host_name(
    fake_dns, certificate, settings, monkeypatch
):
    settings.OUTBOUND_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    cert, key = certificate
    answers, _ = fake_dns
    answers["witness.test"] = answers["impostor.test"] = [["127.0.0.1"]]
    server = Receiver(tls=tls_context(cert, key))
    trusting = ssl.create_default_context(cafile=cert)
    try:
        with pytest.raises(outbound.OutboundError) as caught:  # not trusted by default
            outbound.request(f"https://witness.test:{server.port}/", body=b"{}", timeout=2)
        assert not caught.value.permanent and "CERTIFICATE_VERIFY_FAILED" in str(caught.value)
        monkeypatch.setattr(ssl, "create_default_context", lambda *a, **k: trusting)
        answer = outbound.request(f"https://witness.test:{server.port}/", body=b"{}", timeout=2)
        assert answer.status == 200
        with pytest.raises(outbound.OutboundError) as caught:  # same address, wrong name
            outbound.request(f"https://impostor.test:{server.port}/", body=b"{}", timeout=2)
        assert "impostor.test" in str(caught.value) or "match" in str(caught.value)
    finally:
        server.stop()
    assert len(server.requests) == 1
