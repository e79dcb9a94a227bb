"""Exact moving-window rate limits: in Redis (shared by every process, one round trip a request) or in memory.

`N/minute` means at most N counted requests in any 60 seconds: each client has a log of the moments of its
counted requests, trimmed to the window; a request is counted when fewer than N remain, and the next slot frees
when the oldest of them leaves the window. Written here rather than with the `limits` library (still used to
parse `N/minute`): its moving window costs two Redis round trips and reads every entry of the window, so its cost
grows with N, and no library counts the hit and checks the token's revocation in one call.
"""

import itertools
import logging
import secrets
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from limits import parse
from redis.asyncio import Redis
from redis.exceptions import RedisError

from infrastructure.revocations import revocation_key
from observability.metrics import RATE_LIMIT_STORAGE_ERRORS

logger = logging.getLogger(__name__)

MICROSECONDS = 1_000_000
REDIS_KEY_PREFIX = "shop:rate-limit:"
# A limiter that waits on a silent Redis stalls every API request: give up soon and let the request through.
REDIS_TIMEOUT_SECONDS = 0.5


@dataclass(frozen=True, slots=True)
class RateLimit:
    """At most `amount` counted requests in any `window_seconds`."""

    amount: int
    window_seconds: int

    @classmethod
    def parse(cls, text: str) -> "RateLimit":
        """`10/minute`, `100 per hour`, `5/2 seconds`: the syntax config.py validates."""
        item = parse(text)
        return cls(amount=item.amount, window_seconds=item.get_expiry())


@dataclass(frozen=True, slots=True)
class RateLimitDecision:
    allowed: bool
    limit: int
    remaining: int
    reset_after: float
    """Seconds until the window frees a slot: when the oldest request that keeps it full leaves."""
    revoked: bool | None = None
    """Whether the access token whose `jti` was given is revoked; None when this call did not check it."""


class RateLimiter(Protocol):
    async def hit(self, limit: RateLimit, key: str, *, jti: str | None = None) -> RateLimitDecision | None:
        """Count one request against `key`; None when the storage cannot be reached (the request is let through)."""
        ...

    async def aclose(self) -> None: ...


# KEYS[1]: the client's log, a sorted set of request moments (microseconds of the Redis server's clock, so that
# every process shares one); KEYS[2], optional: the revocation key of the caller's access token.
# ARGV: the limit's amount, its window in microseconds, a member unique to this request.
# Every command is O(log N), ZREMRANGEBYSCORE plus one step per entry it removes, each entry being removed once.
HIT_SCRIPT = """
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local amount = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local count = redis.call('ZCARD', KEYS[1])
local allowed = 0
if count < amount then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], math.ceil(window / 1000))
  count = count + 1
  allowed = 1
end
-- The slot frees when the entry that keeps the log full leaves: the oldest, unless the limit was lowered.
local blocking = math.max(0, count - amount)
local entry = redis.call('ZRANGE', KEYS[1], blocking, blocking, 'WITHSCORES')
local revoked = -1
if KEYS[2] then
  revoked = redis.call('EXISTS', KEYS[2])
end
return {allowed, math.max(0, amount - count), tonumber(entry[2]) + window - now, revoked}
"""


class RedisRateLimiter:
    """The log in Redis, shared by every process, counted and read by one script: one round trip a request.

    Fails open: refusing every request because Redis is down would turn a cache outage into a full outage. Each
    failure is logged and counted (`rate_limit_storage_errors_total`); a revocation it could not check is then
    checked, and fails closed, where the token is authenticated.
    """

    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        # EVALSHA, loading the script again when the server has lost it (a restart, SCRIPT FLUSH).
        self._script = redis.register_script(HIT_SCRIPT)
        self._member_prefix = secrets.token_hex(8)
        self._members = itertools.count()

    async def hit(self, limit: RateLimit, key: str, *, jti: str | None = None) -> RateLimitDecision | None:
        keys = [REDIS_KEY_PREFIX + key]
        if jti is not None:
            keys.append(revocation_key(jti))
        member = f"{self._member_prefix}:{next(self._members)}"
        try:
            allowed, remaining, reset_us, revoked = await self._script(
                keys=keys, args=[limit.amount, limit.window_seconds * MICROSECONDS, member]
            )
        except RedisError:
            RATE_LIMIT_STORAGE_ERRORS.inc()
            logger.warning("rate-limit storage unreachable; request let through", exc_info=True)
            return None
        return RateLimitDecision(
            allowed=bool(allowed),
            limit=limit.amount,
            remaining=remaining,
            reset_after=reset_us / MICROSECONDS,
            revoked=None if revoked < 0 else bool(revoked),
        )

    async def aclose(self) -> None:
        await self._redis.aclose()


class MemoryRateLimiter:
    """The logs in this process: a deque of moments per client, trimmed as it is used (O(1) amortised a hit).

    A client whose whole log has left the window is dropped, so memory holds only the clients of the last window.
    Clients are kept in the order of their latest counted request, one ordered dict per limit (all of whose
    windows are as long), so the ones to drop are always at the front.
    """

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._logs: dict[RateLimit, OrderedDict[str, deque[float]]] = {}

    async def hit(self, limit: RateLimit, key: str, *, jti: str | None = None) -> RateLimitDecision:
        now = self._clock()
        horizon = now - limit.window_seconds
        logs = self._logs.setdefault(limit, OrderedDict())
        while logs and next(iter(logs.values()))[-1] <= horizon:
            logs.popitem(last=False)
        log = logs.get(key)
        if log is None:
            log = logs[key] = deque()
        while log and log[0] <= horizon:
            log.popleft()
        allowed = len(log) < limit.amount
        if allowed:
            log.append(now)
            logs.move_to_end(key)
        return RateLimitDecision(
            allowed=allowed,
            limit=limit.amount,
            remaining=limit.amount - len(log),
            # The window less the time since: (log[0] + window) - now can round to a hair above the window.
            reset_after=limit.window_seconds - (now - log[0]),
        )

    async def aclose(self) -> None:
        self._logs.clear()


def open_rate_limiter(redis_url: str | None) -> RateLimiter:
    """Redis when one is configured, so that every process counts against the same budget; else this process."""
    if redis_url is None:
        return MemoryRateLimiter()
    redis = Redis.from_url(
        redis_url, socket_connect_timeout=REDIS_TIMEOUT_SECONDS, socket_timeout=REDIS_TIMEOUT_SECONDS
    )
    return RedisRateLimiter(redis)
