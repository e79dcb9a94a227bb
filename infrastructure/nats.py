"""NATS JetStream: the stream the domain events go to, and the publication of one event with JetStream's ack.

The connection does not reconnect by itself: a connection that fails is closed, and the relay (services/
event_relay.py) decides when to open a new one, with its own backoff. So a publish never waits behind a hidden
reconnect loop, and the relay always knows whether the event it sent was acknowledged.
"""

import json
import logging
from typing import Any

import nats
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

logger = logging.getLogger(__name__)

# JetStream's de-duplication header: the stream drops a second message with the same id within its duplicate window.
MSG_ID_HEADER = "Nats-Msg-Id"
# How long a connect and each publish's ack may take before the attempt counts as failed; not speed requirements.
CONNECT_TIMEOUT_SECONDS = 2
ACK_TIMEOUT_SECONDS = 5.0
EVENT_TYPE_PREFIX = "shop."


def subject_for(subject_prefix: str, event_type: str) -> str:
    """`shop.order.created` goes to `<prefix>.order.created`."""
    return f"{subject_prefix}.{event_type.removeprefix(EVENT_TYPE_PREFIX)}"


def stream_subjects(subject_prefix: str) -> list[str]:
    return [f"{subject_prefix}.>"]


def encode(cloud_event: dict[str, Any]) -> bytes:
    """Structured mode: the CloudEvent itself, as JSON, is the message body."""
    return json.dumps(cloud_event, ensure_ascii=False, separators=(",", ":")).encode()


async def _log_error(error: Exception) -> None:
    # nats-py's default logs a traceback for every failed connection; the relay logs what it does about it.
    logger.debug("nats: %r", error)


class JetStreamPublisher:
    """One connection to NATS, publishing events into one stream."""

    def __init__(self, *, url: str, stream: str, subject_prefix: str) -> None:
        self._url = url
        self._stream = stream
        self._subject_prefix = subject_prefix
        self._client: Client | None = None
        self._jetstream: JetStreamContext | None = None

    @property
    def connected(self) -> bool:
        return self._client is not None and self._client.is_connected

    async def open(self) -> None:
        """Connect and make sure the stream exists; raises when NATS cannot be reached or refuses."""
        await self.close()
        client = await nats.connect(
            self._url,
            allow_reconnect=False,
            # nats-py retries even a first connect to each server; these make it give up after two quick tries.
            max_reconnect_attempts=1,
            reconnect_time_wait=0,
            connect_timeout=CONNECT_TIMEOUT_SECONDS,
            error_cb=_log_error,
            name="shop-event-relay",
        )
        self._client = client
        self._jetstream = client.jetstream(timeout=ACK_TIMEOUT_SECONDS)
        try:
            await self._ensure_stream(self._jetstream)
        except BaseException:
            await self.close()
            raise

    async def _ensure_stream(self, jetstream: JetStreamContext) -> None:
        """Create the stream when it is missing. An existing one is left as its operators configured it."""
        wanted = stream_subjects(self._subject_prefix)
        try:
            info = await jetstream.stream_info(self._stream)
        except NotFoundError:
            await jetstream.add_stream(name=self._stream, subjects=wanted)
            logger.info("created JetStream stream %s for subjects %s", self._stream, wanted)
            return
        subjects = info.config.subjects or []
        if not set(wanted) <= set(subjects):
            # Publishing would fail (it expects this stream); say why once, rather than only per failed publish.
            logger.warning("JetStream stream %s exists with subjects %s, not %s", self._stream, subjects, wanted)

    async def publish(self, *, event_id: str, event_type: str, body: bytes) -> bool:
        """Publish one event and wait for JetStream's ack; True if the stream already had this id (a duplicate).

        Raises when there is no ack: the event may or may not be in the stream, and publishing it again is safe.
        """
        if self._jetstream is None:
            raise ConnectionError("not connected to NATS")
        ack = await self._jetstream.publish(
            subject_for(self._subject_prefix, event_type),
            body,
            # The expected stream: a message that another stream would capture is refused instead of misfiled.
            stream=self._stream,
            headers={MSG_ID_HEADER: event_id},
        )
        return bool(ack.duplicate)

    async def close(self) -> None:
        client, self._client, self._jetstream = self._client, None, None
        if client is not None and not client.is_closed:
            try:
                await client.close()
            except Exception:
                logger.debug("closing the NATS connection failed", exc_info=True)
