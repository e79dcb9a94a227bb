"""Outgoing mail, sent after the response: over SMTP (aiosmtplib), or onto standard output in development.

Requests never wait for a mail server. They leave a job on a bounded in-process queue, and a few worker tasks
compose each mail (which may take a database lookup and a token write) and send it. A mail that cannot be sent is
logged without its content and counted in `shop_mail_failures_total`; what was queued and not yet sent when the
process stops is lost, as an unanswered request would be.

The queue is written here rather than taken from a library: asyncio.Queue already bounds it, and the rest is a
loop, the counting and the shutdown.
"""

import asyncio
import contextlib
import logging
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Protocol, TextIO

import aiosmtplib

from config import Settings
from observability.metrics import MAIL_FAILURES, MAILS_SENT

logger = logging.getLogger(__name__)

# A server that accepts the connection and then stalls ties up one worker for this long at most.
SMTP_TIMEOUT_SECONDS = 30.0
WORKERS = 2
# Jobs beyond this are dropped (and counted) rather than held in memory without bound.
QUEUE_CAPACITY = 1_000
# At shutdown, how long what is queued may still take to go out.
DRAIN_SECONDS = 10.0


@dataclass(frozen=True, slots=True)
class Mail:
    to: str
    subject: str
    text: str
    html: str | None = None


# A queued job: decides whether a mail is due (None: nobody gets one) and writes it.
Compose = Callable[[], Awaitable[Mail | None]]


class Transport(Protocol):
    async def deliver(self, message: EmailMessage) -> None: ...


class SmtpTransport:
    """One SMTP connection per message: mails are rare, and a fresh connection never finds a stale one."""

    def __init__(self, settings: Settings) -> None:
        self._host = settings.smtp_host
        self._port = settings.smtp_port
        self._username = settings.smtp_username
        self._password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
        # True: STARTTLS is required before anything else (credentials included) is sent; False: never tried.
        self._starttls = settings.smtp_starttls

    async def deliver(self, message: EmailMessage) -> None:
        await aiosmtplib.send(
            message,
            hostname=self._host,
            port=self._port,
            username=self._username,
            password=self._password,
            start_tls=self._starttls,
            timeout=SMTP_TIMEOUT_SECONDS,
        )


class ConsoleTransport:
    """Development without SMTP_HOST: each message's text on standard output, so its link can be followed."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream

    async def deliver(self, message: EmailMessage) -> None:
        body = message.get_body(preferencelist=("plain",))
        text = body.get_content() if isinstance(body, EmailMessage) else ""
        # Not a log record: the text holds a live token, which logs must never carry.
        print(
            f"----- mail (not sent: SMTP_HOST is not set)\nTo: {message['To']}\nSubject: {message['Subject']}\n\n"
            f"{text.rstrip()}\n-----",
            file=self._stream or sys.stdout,
            flush=True,
        )


class Mailer:
    """The queue of mails to send after the response, and the workers that send them."""

    def __init__(self, transport: Transport, *, sender: str) -> None:
        self._transport = transport
        self._sender = sender
        # make_msgid would otherwise ask the resolver for this host's name, a blocking call, for every message.
        self._domain = sender.rpartition("@")[2] or "localhost"
        self._queue: asyncio.Queue[tuple[str, Compose]] = asyncio.Queue(QUEUE_CAPACITY)
        self._workers: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._workers = [asyncio.create_task(self._work(), name=f"mailer-{n}") for n in range(WORKERS)]

    def submit(self, kind: str, compose: Compose) -> None:
        """Queue a mail of `kind` (a metric label) for after the response; never waits, never fails the request."""
        try:
            self._queue.put_nowait((kind, compose))
        except asyncio.QueueFull:
            MAIL_FAILURES.labels(kind=kind).inc()
            logger.warning("the mail queue is full: a %s mail was dropped", kind)

    async def drain(self) -> None:
        """Wait until every mail queued so far was sent or given up."""
        await self._queue.join()

    async def close(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.drain(), DRAIN_SECONDS)
        for worker in self._workers:
            worker.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)

    async def _work(self) -> None:
        while True:
            kind, compose = await self._queue.get()
            try:
                await self._send(kind, compose)
            finally:
                self._queue.task_done()

    async def _send(self, kind: str, compose: Compose) -> None:
        try:
            mail = await compose()
            if mail is None:
                return
            await self._transport.deliver(self._message(mail))
        except Exception as error:
            MAIL_FAILURES.labels(kind=kind).inc()
            # What failed, never what was being sent: the message holds a live token.
            logger.warning("a %s mail was not sent: %s: %s", kind, type(error).__name__, error)
            return
        MAILS_SENT.labels(kind=kind).inc()

    def _message(self, mail: Mail) -> EmailMessage:
        message = EmailMessage()
        message["From"] = self._sender
        message["To"] = mail.to
        message["Subject"] = mail.subject
        message["Date"] = formatdate(usegmt=True)
        message["Message-ID"] = make_msgid(domain=self._domain)
        message.set_content(mail.text)
        if mail.html is not None:
            message.add_alternative(mail.html, subtype="html")
        return message


def open_mailer(settings: Settings) -> Mailer | None:
    """SMTP when SMTP_HOST is set; else standard output, except in production, which then sends no mail (None)."""
    if settings.smtp_host:
        return Mailer(SmtpTransport(settings), sender=settings.mail_from)
    if settings.environment == "production":
        logger.warning("SMTP_HOST is not set: no mail is sent, and reset and verification requests answer 503")
        return None
    return Mailer(ConsoleTransport(), sender=settings.mail_from)
