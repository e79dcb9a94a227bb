"""Rate limits with the `limits` library: in-process memory by default, Redis to share them across processes."""

import logging
import math
import time
from dataclasses import dataclass

from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter

from observability.metrics import RATE_LIMIT_STORAGE_ERRORS

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RateLimitDecision:
    allowed: bool
    limit: int
    remaining: int
    reset_after: int
    """Seconds until the moving window frees a slot."""


# A limiter that waits on a silent Redis stalls every API request: give up soon and let the request through.
REDIS_TIMEOUT_SECONDS = 0.5


def _storage(redis_url: str | None) -> Storage:
    if redis_url is None:
        return MemoryStorage()
    return RedisStorage(
        f"async+{redis_url}",
        implementation="redispy",
        socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
        socket_timeout=REDIS_TIMEOUT_SECONDS,
    )


class RateLimiter:
    """`N/minute` means at most N hits in any 60-second window: the moving-window strategy, exactly."""

    def __init__(self, *, redis_url: str | None, default_limit: str, auth_limit: str) -> None:
        self.storage = _storage(redis_url)
        self._strategy = MovingWindowRateLimiter(self.storage)
        self.default_limit: RateLimitItem = parse(default_limit)
        self.auth_limit: RateLimitItem = parse(auth_limit)

    async def hit(self, limit: RateLimitItem, key: str) -> RateLimitDecision | None:
        """Count one request against `key`. None when the storage cannot be reached.

        The service then fails open: refusing every request because Redis is down would turn a cache outage
        into a full outage. Each such failure is logged and counted (`rate_limit_storage_errors_total`).
        """
        try:
            allowed = await self._strategy.hit(limit, key)
            stats = await self._strategy.get_window_stats(limit, key)
        except Exception:
            RATE_LIMIT_STORAGE_ERRORS.inc()
            logger.warning("rate-limit storage unreachable; request let through", exc_info=True)
            return None
        return RateLimitDecision(
            allowed=allowed,
            limit=limit.amount,
            remaining=max(0, stats.remaining),
            reset_after=max(0, math.ceil(stats.reset_time - time.time())),
        )

    async def reset(self) -> None:
        await self.storage.reset()
