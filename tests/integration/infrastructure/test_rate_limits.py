"""The moving-window limiter on both storages: exact windows, bounded state, one Redis call carrying the revocation.

Time is driven, not waited for: the memory limiter takes a clock; in Redis, whose own clock the script reads, the
logged moments are moved back instead, which is the same as time moving on (the real time that passes meanwhile,
milliseconds, is far inside the tolerance).
"""

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol

import pytest
from prometheus_client import REGISTRY
from redis.asyncio import Redis

from infrastructure.rate_limits import (
    REDIS_KEY_PREFIX,
    MemoryRateLimiter,
    RateLimit,
    RateLimiter,
    RedisRateLimiter,
    open_rate_limiter,
)
from infrastructure.revocations import revocation_key
from tests.redis_commands import monitored

MINUTE = RateLimit(amount=3, window_seconds=60)
# Nothing listens on port 1: connections to it are refused at once.
UNREACHABLE_REDIS = "redis://127.0.0.1:1/0"


class Clock(Protocol):
    async def advance(self, seconds: float) -> None: ...


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now

    async def advance(self, seconds: float) -> None:
        self.now += seconds


class RedisLogClock:
    """Moves every logged moment back by `seconds`: to the script, `seconds` have passed."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    async def advance(self, seconds: float) -> None:
        async for key in self.redis.scan_iter(match=REDIS_KEY_PREFIX + "*"):
            entries = await self.redis.zrange(key, 0, -1, withscores=True)
            await self.redis.zadd(key, {member: score - seconds * 1_000_000 for member, score in entries})


@dataclass
class Storage:
    name: str
    limiter: RateLimiter
    clock: Clock
    tolerance: float
    """Seconds of real time the check may have let pass (Redis's clock cannot be stopped)."""
    redis: Redis | None = None
    redis_url: str | None = None

    async def log_size(self, key: str) -> int:
        if self.redis is not None:
            return await self.redis.zcard(REDIS_KEY_PREFIX + key)
        assert isinstance(self.limiter, MemoryRateLimiter)
        return sum(len(logs[key]) for logs in self.limiter._logs.values() if key in logs)


@pytest.fixture
async def redis_storage(redis_url: str | None) -> AsyncIterator[Storage]:
    if redis_url is None:
        pytest.skip("Redis not configured: set TEST_REDIS_URL to run these tests")
    redis = Redis.from_url(redis_url)
    await redis.flushdb()
    limiter = open_rate_limiter(redis_url)
    try:
        yield Storage("redis", limiter, RedisLogClock(redis), tolerance=1.0, redis=redis, redis_url=redis_url)
    finally:
        await limiter.aclose()
        await redis.aclose()


@pytest.fixture
def memory_storage() -> Storage:
    clock = FakeClock()
    return Storage("memory", MemoryRateLimiter(clock=clock), clock, tolerance=0.0)


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def storage(request: pytest.FixtureRequest) -> Storage:
    return request.getfixturevalue(f"{request.param}_storage")


async def test_n_requests_in_any_window_then_refused_until_the_oldest_leaves(storage):
    """(seconds since the first request, allowed, remaining, seconds until a slot frees)"""
    expected = [
        (0, True, 2, 60),
        (10, True, 1, 50),
        (20, True, 0, 40),
        (30, False, 0, 30),
        (59, False, 0, 1),
        # The first request leaves; the refused ones were never counted, so exactly one slot frees.
        (60, True, 0, 10),
        (60, False, 0, 10),
        (70, True, 0, 10),
    ]
    elapsed = 0
    for at, allowed, remaining, reset in expected:
        await storage.clock.advance(at - elapsed)
        elapsed = at
        decision = await storage.limiter.hit(MINUTE, "client")
        assert decision is not None
        assert (decision.allowed, decision.limit, decision.remaining) == (allowed, 3, remaining), at
        assert decision.reset_after == pytest.approx(reset, abs=storage.tolerance), at
        assert decision.revoked is None


async def test_memory_window_frees_the_slot_exactly_when_the_oldest_request_leaves(memory_storage):
    limiter, clock = memory_storage.limiter, memory_storage.clock
    for _ in range(3):
        assert (await limiter.hit(MINUTE, "client")).allowed
    await clock.advance(60 - 1e-6)
    assert not (await limiter.hit(MINUTE, "client")).allowed
    await clock.advance(1e-6)
    assert (await limiter.hit(MINUTE, "client")).allowed


async def test_memory_window_never_tells_a_longer_wait_than_the_window(memory_storage):
    # At this reading, (now + 60) - now is 60.000000000000114 in floating point: RateLimit-Reset said 61.
    memory_storage.clock.now = 1_000.15
    decision = await memory_storage.limiter.hit(MINUTE, "client")
    assert decision.reset_after == 60


async def test_redis_window_runs_on_the_servers_clock(redis_storage):
    limiter = redis_storage.limiter
    one_second = RateLimit(amount=2, window_seconds=1)
    assert [(await limiter.hit(one_second, "client")).allowed for _ in range(3)] == [True, True, False]
    refused = await limiter.hit(one_second, "client")
    assert 0 < refused.reset_after <= 1
    # No assertion on time: having waited at least as long as it said, the slot is free.
    await asyncio.sleep(refused.reset_after + 0.05)
    assert (await limiter.hit(one_second, "client")).allowed


async def test_clients_and_limits_have_budgets_of_their_own(storage):
    hourly = RateLimit(amount=3, window_seconds=3600)
    for _ in range(3):
        await storage.limiter.hit(MINUTE, "alice")
    assert not (await storage.limiter.hit(MINUTE, "alice")).allowed
    assert (await storage.limiter.hit(MINUTE, "bob")).remaining == 2
    assert (await storage.limiter.hit(hourly, "carol")).remaining == 2


async def test_the_log_holds_at_most_n_entries_however_many_requests_come(storage):
    for _ in range(20):
        await storage.limiter.hit(MINUTE, "client")
    assert await storage.log_size("client") == 3


async def test_memory_drops_clients_whose_windows_are_empty(memory_storage):
    limiter, clock = memory_storage.limiter, memory_storage.clock
    for number in range(1_000):
        await limiter.hit(MINUTE, f"gone-{number}")
    await clock.advance(30)
    await limiter.hit(MINUTE, "recent")
    await clock.advance(30)
    await limiter.hit(MINUTE, "new")
    # The first thousand have left the window; "recent" is still in it.
    assert list(limiter._logs[MINUTE]) == ["recent", "new"]
    assert (await limiter.hit(MINUTE, "recent")).remaining == 1


async def test_memory_limiter_leaves_revocations_to_the_database(memory_storage):
    decision = await memory_storage.limiter.hit(MINUTE, "user:1", jti="some-token")
    assert decision.revoked is None


async def test_redis_hit_reads_the_revocation_in_the_same_call(redis_storage):
    limiter, redis = redis_storage.limiter, redis_storage.redis
    await redis.set(revocation_key("revoked-token"), b"1")
    await limiter.hit(MINUTE, "warm-up")
    async with monitored(redis_storage.redis_url) as commands:
        revoked = await limiter.hit(MINUTE, "user:1", jti="revoked-token")
        valid = await limiter.hit(MINUTE, "user:2", jti="valid-token")
        anonymous = await limiter.hit(MINUTE, "ip:198.51.100.1")
    assert (revoked.revoked, valid.revoked, anonymous.revoked) == (True, False, None)
    assert commands.sent == ["EVALSHA"] * 3
    assert commands.scripted.count("EXISTS") == 2


@pytest.mark.parametrize("amount", [2, 500])
async def test_redis_script_runs_the_same_commands_whatever_the_limit(redis_storage, amount):
    limit = RateLimit(amount=amount, window_seconds=60)
    for _ in range(amount - 1):
        await redis_storage.limiter.hit(limit, "client", jti="token")
    async with monitored(redis_storage.redis_url) as commands:
        last_allowed = await redis_storage.limiter.hit(limit, "client", jti="token")
        refused = await redis_storage.limiter.hit(limit, "client", jti="token")
    assert (last_allowed.allowed, refused.allowed) == (True, False)
    # Seven commands when counted, five when refused; none of them walks the window.
    allowed_run = ["TIME", "ZREMRANGEBYSCORE", "ZCARD", "ZADD", "PEXPIRE", "ZRANGE", "EXISTS"]
    refused_run = ["TIME", "ZREMRANGEBYSCORE", "ZCARD", "ZRANGE", "EXISTS"]
    assert commands.scripted == allowed_run + refused_run


async def test_redis_reloads_the_script_when_the_server_lost_it(redis_storage):
    assert (await redis_storage.limiter.hit(MINUTE, "client")).remaining == 2
    await redis_storage.redis.script_flush()
    assert (await redis_storage.limiter.hit(MINUTE, "client")).remaining == 1


async def test_redis_log_expires_with_its_window(redis_storage):
    await redis_storage.limiter.hit(MINUTE, "client")
    assert 0 < await redis_storage.redis.pttl(REDIS_KEY_PREFIX + "client") <= 60_000


async def test_unreachable_redis_fails_open_and_is_counted():
    limiter = open_rate_limiter(UNREACHABLE_REDIS)
    assert isinstance(limiter, RedisRateLimiter)
    before = REGISTRY.get_sample_value("rate_limit_storage_errors_total") or 0
    try:
        assert await limiter.hit(MINUTE, "client", jti="token") is None
    finally:
        await limiter.aclose()
    assert REGISTRY.get_sample_value("rate_limit_storage_errors_total") == before + 1


@pytest.mark.parametrize(
    ("text", "limit"),
    [("10/minute", RateLimit(10, 60)), ("100 per hour", RateLimit(100, 3600)), ("5/2 seconds", RateLimit(5, 2))],
)
def test_limits_are_parsed_as_configured(text, limit):
    assert RateLimit.parse(text) == limit
