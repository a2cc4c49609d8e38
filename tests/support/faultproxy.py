"""An HTTP proxy in front of the S3 server that can refuse or break chosen requests.

It forwards everything to the real (moto) server unless a rule answers first, so clients see
real S3 behaviour plus exactly the faults a test asks for. Loopback only.
"""

import http.client
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

from tests.support.httpserver import LocalServer, QuietHandler

UPSTREAM_TIMEOUT_SECONDS = 30
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade"}


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes = b""
    content_type: str = "application/xml"


RESET = Reply(-1)
"""A rule's answer meaning: start a reply, then drop the connection half-way through it."""
FORWARD_THEN_RESET = Reply(-2)
"""A rule's answer meaning: pass the request on, then drop the connection instead of
answering (the request took effect; the client never learns it did)."""

FORWARD_HALF = Reply(-3)
"""A rule's answer meaning: pass the request on, send the answer's headers and the first
half of its body, then drop the connection (a download that breaks mid-object)."""

Rule = Callable[[Request], Reply | None]


def s3_error(status: int, code: str, message: str = "injected by the test proxy") -> Reply:
    body = f"<?xml version='1.0' encoding='UTF-8'?><Error><Code>{code}</Code>"
    body += f"<Message>{message}</Message></Error>"
    return Reply(status, body.encode())


@dataclass
class FaultProxy:
    upstream: str
    rules: list[Rule] = field(default_factory=list)
    seen: list[Request] = field(default_factory=list)
    drop_headers: set[str] = field(default_factory=set)
    """Request headers (lower case) not passed on: a store that ignores them (moto does not
    check the signature that covers them)."""

    def __post_init__(self) -> None:
        proxy = self
        target = urlsplit(self.upstream)

        class Handler(QuietHandler):
            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                request = Request(self.command, self.path, dict(self.headers.items()))
                proxy.seen.append(request)
                lose_the_answer = cut_the_answer = False
                for rule in list(proxy.rules):
                    reply = rule(request)
                    if reply is RESET:
                        self._reset()
                        return
                    if reply is FORWARD_THEN_RESET or reply is FORWARD_HALF:
                        lose_the_answer = reply is FORWARD_THEN_RESET
                        cut_the_answer = reply is FORWARD_HALF
                        break
                    if reply is not None:
                        self._send(reply.status, {"Content-Type": reply.content_type}, reply.body)
                        return
                connection = http.client.HTTPConnection(
                    target.hostname, target.port, timeout=UPSTREAM_TIMEOUT_SECONDS
                )
                try:
                    dropped = HOP_BY_HOP | proxy.drop_headers
                    headers = {k: v for k, v in self.headers.items() if k.lower() not in dropped}
                    connection.request(self.command, self.path, body=body, headers=headers)
                    response = connection.getresponse()
                    payload = response.read()
                    if lose_the_answer:
                        self._reset()
                        return
                    forwarded = {
                        k: v for k, v in response.getheaders() if k.lower() not in HOP_BY_HOP
                    }
                    if cut_the_answer:
                        self._send_half(response.status, forwarded, payload)
                        return
                    self._send(response.status, forwarded, payload)
                finally:
                    connection.close()

            def _reset(self) -> None:
                self.send_response(200)
                self.send_header("Content-Length", "1000")
                self.end_headers()
                self.wfile.write(b"<?xml version=")
                self.wfile.flush()
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)

            def _send_half(self, status: int, headers: dict[str, str], body: bytes) -> None:
                self.send_response(status)
                for name, value in headers.items():
                    if name.lower() != "content-length":
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body[: len(body) // 2])
                self.wfile.flush()
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)

            def _send(self, status: int, headers: dict[str, str], body: bytes) -> None:
                self.send_response(status)
                keep_length = self.command == "HEAD"  # a HEAD answer describes the object
                for name, value in headers.items():
                    if keep_length or name.lower() != "content-length":
                        self.send_header(name, value)
                if not keep_length:
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle

        self._local = LocalServer(Handler)

    @property
    def endpoint(self) -> str:
        return self._local.base_url

    def __enter__(self) -> "FaultProxy":
        self._local.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._local.stop()


def backup_write(request: Request, bucket: str) -> str | None:
    """The key, when `request` is the write that makes a backup object appear: a single PUT
    or the completion of a multipart upload."""
    parts = urlsplit(request.path)
    prefix = f"/{bucket}/nightly/"
    if not parts.path.startswith(prefix):
        return None
    single = request.method == "PUT" and "uploadId" not in parts.query
    complete = request.method == "POST" and "uploadId" in parts.query
    return unquote(parts.path.removeprefix(f"/{bucket}/")) if single or complete else None
