"""The commands a real Redis server executes on one database, as its MONITOR stream shows them."""

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from redis.asyncio import Redis


@dataclass
class Commands:
    """Names of the commands clients sent (`sent`) and those the server's Lua scripts ran (`scripted`)."""

    sent: list[str] = field(default_factory=list)
    scripted: list[str] = field(default_factory=list)


@asynccontextmanager
async def monitored(redis_url: str) -> AsyncIterator[Commands]:
    """Record the commands on `redis_url`'s database while the block runs.

    The server is shared by other databases (MONITOR shows them all), so only ours are kept. On leaving, a marker
    command is sent and waited for: MONITOR reports commands in the order they ran, so everything the block made
    the server do has been seen by then.
    """
    watcher, marking = Redis.from_url(redis_url), Redis.from_url(redis_url)
    db = watcher.connection_pool.connection_kwargs.get("db", 0)
    marker = f"end-of-block-{uuid.uuid4().hex}"
    commands = Commands()
    # Connected (and SELECTed) before monitoring starts, so that its set-up is not counted.
    await marking.ping()
    try:
        async with watcher.monitor() as monitor:

            async def read() -> None:
                async for command in monitor.listen():
                    if command["db"] != db:
                        continue
                    name, _, rest = command["command"].partition(" ")
                    if name.upper() == "ECHO" and marker in rest:
                        return
                    target = commands.scripted if command["client_type"] == "lua" else commands.sent
                    target.append(name.upper())

            reader = asyncio.ensure_future(read())
            try:
                yield commands
                await marking.echo(marker)
                await asyncio.wait_for(reader, timeout=30)
            finally:
                reader.cancel()
    finally:
        await watcher.aclose()
        await marking.aclose()
