"""A real HTTP receiver for webhooks on 127.0.0.1 that records what it is sent."""

import threading
from collections import deque
from dataclasses import dataclass

from tests.support.httpserver import LocalServer, QuietHandler
from tests.support.waiting import eventually

HANG = -1
"""A scripted status that means: read the request, then never answer."""
TRICKLE = -2
"""A scripted status that means: send the answer's first line one byte a second, so every
read a client makes gets something before its timeout."""
TRICKLE_LINE = b"HTTP/1.1 200 OK, eventually, after a long while\r\n"
TRICKLE_ON = -3
"""A scripted status that means: a byte a second, the status line never ending, until the
receiver stops (at most HANG_LIMIT_SECONDS)."""
HANG_LIMIT_SECONDS = 120


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class WebhookReceiver:
    def __init__(self, statuses: list[int] | None = None) -> None:
        self.received: list[Received] = []
        self.statuses: deque[int] = deque(statuses or [])
        self._stopping = threading.Event()
        receiver = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                receiver.received.append(
                    Received(self.command, self.path, dict(self.headers.items()), body)
                )
                status = receiver.statuses.popleft() if receiver.statuses else 200
                if status == HANG:
                    receiver._stopping.wait(HANG_LIMIT_SECONDS)
                    return
                if status == TRICKLE_ON:
                    for _ in range(HANG_LIMIT_SECONDS):
                        self.wfile.write(b"H")
                        self.wfile.flush()
                        if receiver._stopping.wait(1):
                            return
                    return
                if status == TRICKLE:
                    for byte in TRICKLE_LINE:
                        self.wfile.write(bytes([byte]))
                        self.wfile.flush()
                        if receiver._stopping.wait(1):
                            return
                    return
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"OK")

            do_PUT = do_POST

        self._local = LocalServer(Handler)

    def url(self, path: str) -> str:
        return f"{self._local.base_url}{path}"

    def paths(self) -> list[str]:
        return [request.path for request in self.received]

    def wait_for(self, count: int, seconds: float = 60) -> bool:
        return eventually(lambda: len(self.received) >= count, seconds)

    def __enter__(self) -> "WebhookReceiver":
        self._local.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stopping.set()
        self._local.stop()
