"""Real NATS JetStream for the tests: a stream of a test's own, what it holds, and a private nats-server to stop.

Each test publishes into a stream and under a subject prefix with random names (the `jetstream` fixture), so
tests never see each other's messages; the fixture deletes the stream afterwards.
"""

import asyncio
import contextlib
import json
import shutil
import socket
import subprocess
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nats
import pytest
from nats.js.errors import NotFoundError

from infrastructure.nats import MSG_ID_HEADER, encode
from models import Event
from services.events import cloud_event
from tests.conftest import REQUIRE_SERVICES
from tests.servers import STOP_SECONDS, free_port

# Guards a wait that went wrong, not a speed requirement.
ARRIVAL_DEADLINE_SECONDS = 60
NATS_SERVER = shutil.which("nats-server") or "/usr/sbin/nats-server"


@dataclass(frozen=True)
class StreamMessage:
    seq: int
    subject: str
    msg_id: str
    body: dict[str, Any]


@dataclass(frozen=True)
class JetStreamTarget:
    url: str
    stream: str
    subject_prefix: str

    @property
    def settings(self) -> dict[str, str]:
        """Settings overrides that send an app's events here."""
        return {"nats_url": self.url, "nats_stream": self.stream, "nats_subject_prefix": self.subject_prefix}

    @property
    def env(self) -> dict[str, str]:
        """The same, as a server process's environment."""
        return {"NATS_URL": self.url, "NATS_STREAM": self.stream, "NATS_SUBJECT_PREFIX": self.subject_prefix}

    def subject(self, event_type: str) -> str:
        return f"{self.subject_prefix}.{event_type.removeprefix('shop.')}"

    async def messages(self) -> list[StreamMessage]:
        """Every message in the stream, in stream order; none when the stream does not exist (yet)."""
        client = await nats.connect(self.url, allow_reconnect=False, max_reconnect_attempts=1, reconnect_time_wait=0)
        try:
            jetstream = client.jetstream()
            try:
                state = (await jetstream.stream_info(self.stream)).state
            except NotFoundError:
                return []
            found = []
            for seq in range(state.first_seq, state.last_seq + 1):
                message = await jetstream.get_msg(self.stream, seq)
                found.append(
                    StreamMessage(
                        seq=seq,
                        subject=message.subject or "",
                        msg_id=(message.headers or {}).get(MSG_ID_HEADER, ""),
                        body=json.loads(message.data or b"null"),
                    )
                )
            return found
        finally:
            await client.close()

    async def delete(self) -> None:
        client = await nats.connect(self.url, allow_reconnect=False, max_reconnect_attempts=1, reconnect_time_wait=0)
        try:
            with contextlib.suppress(NotFoundError):
                await client.jetstream().delete_stream(self.stream)
        finally:
            await client.close()


def assert_stream_holds_each_event_once(
    messages: Sequence[StreamMessage], events: Sequence[Event], target: JetStreamTarget
) -> None:
    """Exactly the committed events, once each, on their subjects, with their CloudEvent as the body, and on each
    subject in commit (id) order."""
    assert events, "the test committed no event"
    doubled = {msg_id: count for msg_id, count in Counter(message.msg_id for message in messages).items() if count > 1}
    assert doubled == {}
    by_id = {event.event_id: event for event in events}
    assert {message.msg_id for message in messages} == set(by_id)
    order: dict[str, list[int]] = defaultdict(list)
    for message in messages:
        event = by_id[message.msg_id]
        assert message.subject == target.subject(event.type)
        assert message.body == json.loads(encode(cloud_event(event)))
        assert message.body["id"] == message.msg_id
        order[message.subject].append(event.id)
    for subject, ids in order.items():
        assert ids == sorted(ids), subject


async def eventually(check: Callable[[], Awaitable[Any]], what: str) -> Any:
    """Poll `check` until it returns something true; fail with `what` after the deadline."""
    deadline = time.monotonic() + ARRIVAL_DEADLINE_SECONDS
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"after {ARRIVAL_DEADLINE_SECONDS} s: {what}")
        await asyncio.sleep(0.05)


def _answers(port: int) -> bool:
    """Whether a NATS server greets on the port (its INFO line)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as connection:
            return connection.recv(4) == b"INFO"
    except OSError:
        return False


class PrivateNatsServer:
    """A nats-server with JetStream of the test's own, on a free port and a store in a temporary folder, that the
    test stops and starts again (same port, same store).
    """

    def __init__(self, folder: Path) -> None:
        self.port = free_port()
        self.store = folder / "jetstream"
        self.log = folder / "nats-server.log"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> None:
        with self.log.open("ab") as output:
            self._process = subprocess.Popen(  # noqa: S603 (our own command, no shell)
                [NATS_SERVER, "-js", "-a", "127.0.0.1", "-p", str(self.port), "-sd", str(self.store)],
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + ARRIVAL_DEADLINE_SECONDS
        while not _answers(self.port):
            if self._process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"nats-server did not start:\n{self.log.read_text(errors='replace')[-3000:]}")
            time.sleep(0.05)

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def private_nats_server(folder: Path) -> Iterator[PrivateNatsServer]:
    """Not started yet: the test calls start() (and stop(), start() again)."""
    if not Path(NATS_SERVER).exists():
        reason = "no nats-server binary on PATH, for the tests that stop NATS"
        if REQUIRE_SERVICES:
            pytest.fail(f"{reason} (SHOP_TEST_REQUIRE_SERVICES=1)")
        pytest.skip(reason)
    server = PrivateNatsServer(folder)
    try:
        yield server
    finally:
        server.stop()
