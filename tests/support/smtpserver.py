"""A real SMTP server on 127.0.0.1 (aiosmtpd) that keeps every message it is sent."""

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from tests.support.pgserver import free_port


class SmtpReceiver:
    def __init__(self) -> None:
        self.messages: list[str] = []
        self.port = free_port()
        receiver = self

        class Handler:
            async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
                content = envelope.content
                text = (
                    content.decode("utf-8", "replace")
                    if isinstance(content, bytes)
                    else str(content)
                )
                receiver.messages.append(text)
                return "250 OK"

        self._controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)

    def __enter__(self) -> "SmtpReceiver":
        self._controller.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._controller.stop()
