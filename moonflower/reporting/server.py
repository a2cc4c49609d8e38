"""The HTTP side of `run` (METRICS_ADDRESS): `/metrics` for Prometheus, `/healthz` with the
meaning of `moonflower health`, and `/`, the status page. Read-only; with METRICS_TOKEN every
request needs it (as a bearer token, or as the password of basic auth)."""

import base64
import binascii
import hmac
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from prometheus_client.exposition import CONTENT_TYPE_LATEST

from moonflower.config.model import Config
from moonflower.core.errors import ConfigError
from moonflower.core.logs import log
from moonflower.reporting.cluster_health import overall
from moonflower.reporting.metrics import exposition
from moonflower.reporting.page_clusters import page_of

REALM = 'Basic realm="moonflower", charset="UTF-8"'


def token_matches(header: str, token: str) -> bool:
    scheme, _, value = header.partition(" ")
    given = ""
    if scheme.lower() == "bearer":
        given = value.strip()
    elif scheme.lower() == "basic":
        try:
            given = base64.b64decode(value.strip(), validate=True).decode().partition(":")[2]
        except (binascii.Error, UnicodeDecodeError):
            return False
    return hmac.compare_digest(given.encode(), token.encode())


HEADER_SECONDS = 10.0
"""How long a connection may take to send its request (and idle between reads): a client
that opens connections and never finishes its request holds no file descriptor longer."""
MAX_CONNECTIONS = 32
"""Connections served at once; more are closed at once, so a flood of them can never take
the file descriptors a backup needs (pipes, spool files, sockets to S3)."""


class BoundedServer(ThreadingHTTPServer):
    """The standard threading server with an address family taken from the host (IPv6
    literals and names work), a bound on connections, and errors kept out of stderr."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]) -> None:
        self.address_family = family_of(address[0])
        self.slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
        super().__init__(address, handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self.slots.acquire(blocking=False):
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self.slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("status server: a request from %s failed", client_address)


def family_of(host: str) -> socket.AddressFamily:
    """AF_INET6 for an IPv6 literal (`::1`) or a name that resolves only to IPv6."""
    if ":" in host:
        return socket.AF_INET6
    try:
        found = socket.getaddrinfo(host or None, None, type=socket.SOCK_STREAM)
    except OSError:
        return socket.AF_INET
    families = {entry[0] for entry in found}
    return socket.AF_INET if socket.AF_INET in families or not families else socket.AF_INET6


class StatusServer:
    """For the one server, or for every cluster (`configs`: their configurations; the
    metrics labelled by cluster, health unhealthy if any is, the page a section each)."""

    def __init__(self, config: Config, configs: list[Config]) -> None:
        self.config = config
        self.configs = configs
        monitoring = config.monitoring
        assert monitoring.metrics_host is not None
        self.address = (monitoring.metrics_host, monitoring.metrics_port)
        handler = self.handler_class()
        try:
            self.server = BoundedServer(self.address, handler)
        except OSError as error:
            raise ConfigError(
                [f"METRICS_ADDRESS: cannot listen on {self.shown}: {error.strerror or error}"]
            ) from None
        self.thread = threading.Thread(
            target=self.server.serve_forever, name="status-server", daemon=True
        )

    @property
    def shown(self) -> str:
        host, port = self.address
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    def __enter__(self) -> "StatusServer":
        self.thread.start()
        log.info("serving /metrics, /healthz and the status page on http://%s/", self.shown)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.server.shutdown()
        self.server.server_close()

    def handler_class(self) -> type[BaseHTTPRequestHandler]:
        config, configs = self.config, self.configs
        token = config.monitoring.metrics_token
        pages = page_of(configs)

        class Handler(BaseHTTPRequestHandler):
            server_version = "moonflower"
            sys_version = ""
            timeout = HEADER_SECONDS

            def log_message(self, format: str, *args: object) -> None:
                return  # scrapes every few seconds would drown the backup log

            def do_GET(self) -> None:
                if token is not None and not token_matches(
                    self.headers.get("Authorization", ""), token
                ):
                    self.answer(401, "text/plain", b"a token is required\n", REALM)
                    return
                path = self.path.split("?", 1)[0]
                if path == "/metrics":
                    self.answer(200, CONTENT_TYPE_LATEST, exposition(configs))
                elif path == "/healthz":
                    verdict = overall(configs)
                    text = ("healthy: " if verdict.ok else "unhealthy: ") + verdict.reason
                    self.answer(200 if verdict.ok else 503, "text/plain", text.encode() + b"\n")
                elif path == "/":
                    body = pages.render().encode()
                    self.answer(200, "text/html; charset=utf-8", body)
                else:
                    self.answer(404, "text/plain", b"not found\n")

            def answer(
                self, status: int, content_type: str, body: bytes, challenge: str | None = None
            ) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.send_header(
                    "Content-Security-Policy",
                    "default-src 'none'; style-src 'unsafe-inline'; img-src data:",
                )
                if challenge:
                    self.send_header("WWW-Authenticate", challenge)
                self.end_headers()
                self.wfile.write(body)

        return Handler
