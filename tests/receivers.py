"""Real local receivers for outbound tests: an HTTP server and an SMTP server (aiosmtpd)."""

import shutil
import socket
import ssl
import subprocess
import threading
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

# Ports of the local receivers (and servers) tests started: the only places a test process may
# connect to (tests/conftest.py `_outbound_blocked`). Kept for the process, so that a receiver
# of a module-scoped fixture stays reachable; a local port never leads outside.
STARTED: set[int] = set()


class OutboundBlocked(ConnectionRefusedError):
    """A test tried to reach something it did not start (a provider, a relay, the Internet)."""


def allow(port: int) -> int:
    """Let this test connect to 127.0.0.1:port, a server it started."""
    STARTED.add(port)
    return port


def free_port() -> int:
    """A free local port for a receiver the test is about to start (or to leave down)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return allow(s.getsockname()[1])


_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex


def _permitted(sock: socket.socket, address) -> bool:
    if sock.family == socket.AF_UNIX:
        return True
    host, port = address[0], address[1]
    return port in STARTED and host in ("127.0.0.1", "::1", "localhost")


def _guarded_connect(sock: socket.socket, address):
    if not _permitted(sock, address):
        raise OutboundBlocked(
            f"tests may not connect to {address!r}: start a local receiver (tests/receivers.py)"
        )
    return _real_connect(sock, address)


def _guarded_connect_ex(sock: socket.socket, address):
    if not _permitted(sock, address):
        raise OutboundBlocked(
            f"tests may not connect to {address!r}: start a local receiver (tests/receivers.py)"
        )
    return _real_connect_ex(sock, address)


def block_outbound() -> None:
    """Every socket of this process may reach only the receivers a test started. Email
    (smtplib), SMS and webhooks (http.client, requests) all connect through socket.socket;
    the database (libpq, SQLite) does not."""
    socket.socket.connect = _guarded_connect  # type: ignore[method-assign]
    socket.socket.connect_ex = _guarded_connect_ex  # type: ignore[method-assign]


def unblock_outbound() -> None:
    socket.socket.connect = _real_connect  # type: ignore[method-assign]
    socket.socket.connect_ex = _real_connect_ex  # type: ignore[method-assign]


class Receiver:
    """A local HTTP server that records requests and answers with a chosen status, body and
    headers. `tls`: an ssl.SSLContext to serve HTTPS with; `port`: 0 for any free one."""

    def __init__(self, status: int = 200, body: bytes = b'{"sid": "SM123"}', tls=None, port=0):
        self.status = status
        self.body = body
        self.headers: dict[str, str] = {}
        self.requests: list[dict] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                receiver.requests.append(
                    {
                        "method": self.command,
                        "path": self.path,
                        "headers": dict(self.headers),
                        "body": body,
                    }
                )
                self.send_response(receiver.status)
                for name, value in receiver.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(receiver.body)))
                self.end_headers()
                self.wfile.write(receiver.body)

            do_POST = do_GET = _answer  # http.server calls them by these names

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.port = allow(self.server.server_address[1])
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def self_signed(directory, subject_alt_name: str) -> tuple[str, str]:
    """A self-signed certificate valid for one day, made by the openssl command in `directory`,
    for a subject alternative name such as "IP:127.0.0.1" or "DNS:witness.test": (certificate,
    key) paths. Skips the test where the machine has no openssl."""
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command")
    cert, key = f"{directory}/cert.pem", f"{directory}/key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-nodes", "-days", "1"),
            *("-subj", f"/CN={subject_alt_name.split(':', 1)[1]}"),
            *("-addext", f"subjectAltName={subject_alt_name}"),
            *("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"),
            *("-keyout", key, "-out", cert),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return cert, key


def tls_context(certfile: str, keyfile: str) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certfile, keyfile)
    return context


class Inbox:
    """An aiosmtpd handler that keeps every message: (recipients, email.message.Message)."""

    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):  # aiosmtpd calls it by this name
        self.messages.append((envelope.rcpt_tos, message_from_bytes(envelope.content)))
        return "250 OK"
