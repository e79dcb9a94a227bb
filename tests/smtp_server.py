"""A real SMTP server for the tests (aiosmtpd, on a loop in a thread of its own), and what arrived at it."""

import asyncio
import logging
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any
from urllib.parse import parse_qs, urlsplit

from aiosmtpd.controller import Controller

from tests.servers import free_port

LINK = re.compile(r"https?://\S+")
# Deadline for mail from another process, not a speed requirement.
ARRIVAL_SECONDS = 30


@dataclass(frozen=True)
class Received:
    sender: str
    recipients: list[str]
    message: EmailMessage

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    @property
    def text(self) -> str:
        part = self.message.get_body(preferencelist=("plain",))
        assert isinstance(part, EmailMessage), "the mail has no plain-text part"
        return part.get_content()

    @property
    def link(self) -> str:
        (link,) = LINK.findall(self.text)
        return link

    @property
    def token(self) -> str:
        """The token of the plain-text part's link (the default templates carry it as `?token=`)."""
        (token,) = parse_qs(urlsplit(self.link).query)["token"]
        return token


class Inbox:
    """The aiosmtpd handler: keeps every message it accepts; can refuse them, or hold them until released."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.refuse = False
        self.held = threading.Event()
        self.held.set()
        self.holding = threading.Event()
        self._arrived = threading.Condition()

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:  # noqa: N802 (aiosmtpd's name)
        # A held server has taken the message in, and answers only when released.
        if not self.held.is_set():
            self.holding.set()
            await asyncio.to_thread(self.held.wait)
        if self.refuse:
            return "554 Transaction failed: refused by the test"
        message = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(message, EmailMessage)
        with self._arrived:
            self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), message))
            self._arrived.notify_all()
        return "250 Message accepted for delivery"

    def to(self, address: str) -> list[Received]:
        return [mail for mail in self.received if address in mail.recipients]

    def wait_for(self, address: str, count: int = 1) -> list[Received]:
        """Block until `count` messages to `address` arrived (mail sent by other processes), then return them."""
        deadline = time.monotonic() + ARRIVAL_SECONDS
        with self._arrived:
            while len(self.to(address)) < count and time.monotonic() < deadline:
                self._arrived.wait(timeout=0.1)
            arrived = self.to(address)
        assert len(arrived) >= count, f"{len(arrived)} of {count} mails to {address} arrived"
        return arrived


@dataclass(frozen=True)
class SmtpServer:
    inbox: Inbox
    port: int

    @property
    def settings(self) -> dict[str, Any]:
        """Settings that point the app at this server (which offers no STARTTLS unless it was given a context)."""
        return {"smtp_host": "127.0.0.1", "smtp_port": self.port, "smtp_starttls": False}


@contextmanager
def smtp_server(**smtp_parameters: Any) -> Iterator[SmtpServer]:
    """A running server; `smtp_parameters` go to aiosmtpd's SMTP class (TLS context, authenticator...)."""
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port, **smtp_parameters)
    # aiosmtpd logs every line it receives at DEBUG, tokens included; it is the test's server, not the service.
    server_log = logging.getLogger("mail.log")
    level = server_log.level
    server_log.setLevel(logging.WARNING)
    controller.start()
    try:
        yield SmtpServer(inbox, port)
    finally:
        inbox.held.set()
        controller.stop()
        server_log.setLevel(level)
