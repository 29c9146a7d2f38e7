"""Rate limits per token and per client address, on the ``limits`` library.

The sliding-window-counter strategy weighs the previous window's count by how much of it
still overlaps the sliding window, so a client cannot double its rate at a window
boundary (as with fixed windows), in O(1) memory and time per check; the exact moving
window keeps one entry per request and costs O(limit) per hit in memory storage.
Counters live in memory by default (:mod:`._memory_limits`: expired when read, no timer
running between requests), or in Redis (``redis://host:port``, ``limits``' own asyncio
Redis storage) so that several workers or hosts share them. Limits can be tightened for
one token or client while the gateway runs (incident playbooks do this); those overrides
live in the process that set them.
"""

from __future__ import annotations

import math
import threading
import time
from typing import cast

from limits import RateLimitItem, parse
from limits.aio.storage import SlidingWindowCounterSupport
from limits.aio.storage import Storage as AsyncStorage
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from limits.errors import ConfigurationError, StorageError
from limits.storage import storage_from_string

from bastion.errors import ConfigError
from bastion.gateway import _memory_limits  # noqa: F401  (registers async+bastion-memory)

__all__ = ["RateLimits", "StorageError"]

_MAX_KEYS = 100_000  # storage keys kept built, one per limited token or client


def _parse(limit: str) -> RateLimitItem:
    try:
        return parse(limit)
    except ValueError:
        raise ConfigError(f"rate limit {limit!r} must look like '100/minute' or '5/second'")\
            from None


class RateLimits:
    """Two limits, one per token and one per client address, checked on each request."""

    def __init__(self, *, per_token: str, per_client: str, storage: str = "memory://") -> None:
        # The asyncio flavour of each storage: counting never blocks the event loop (Redis
        # through redis.asyncio); in memory, counters that expire when read.
        options = {"implementation": "redispy"} if storage.startswith("redis") else {}
        scheme = "bastion-memory://" if storage == "memory://" else storage
        try:
            self._storage = cast(AsyncStorage, storage_from_string(
                f"async+{scheme}", wrap_exceptions=True, **options))
        except ConfigurationError as err:
            raise ConfigError(f"rate_limit_storage {storage!r} is not usable: {err}") from None
        self._limiter = SlidingWindowCounterRateLimiter(self._storage)
        self._sliding = cast(SlidingWindowCounterSupport, self._storage)
        self._keys: dict[tuple[RateLimitItem, str, str], str] = {}
        self._defaults = {"token": _parse(per_token), "client": _parse(per_client)}
        self._overrides: dict[tuple[str, str], RateLimitItem] = {}
        self._lock = threading.Lock()

    def set_limit(self, kind: str, key: str, limit: str | None) -> None:
        """Give one ``token`` or ``client`` its own limit (``None`` restores the default)."""
        if kind not in self._defaults:
            raise ConfigError(f"rate limits apply to 'token' or 'client', not {kind!r}")
        with self._lock:
            if limit is None:
                self._overrides.pop((kind, key), None)
            else:
                self._overrides[(kind, key)] = _parse(limit)

    def limit_for(self, kind: str, key: str) -> RateLimitItem:
        return self._overrides.get((kind, key), self._defaults[kind])

    async def hit(self, *, client: str, token_id: str | None) -> float | None:
        """Count one request; seconds to wait if a limit is exceeded, else ``None``.

        Raises ``StorageError`` when the counters cannot be reached (callers fail closed).
        """
        checks = [("client", client)] + ([("token", token_id)] if token_id else [])
        for kind, key in checks:
            item = self.limit_for(kind, key)
            # what the strategy's hit() does, with the storage key built once per client
            if not await self._sliding.acquire_sliding_window_entry(
                    self._key(item, kind, key), item.amount, item.get_expiry()):
                reset = (await self._limiter.get_window_stats(item, kind, key)).reset_time
                return max(1.0, math.ceil(reset - time.time()))
        return None

    def _key(self, item: RateLimitItem, kind: str, key: str) -> str:
        # limits builds the key from escaped parts on every call (~1.5 µs a request)
        cached = self._keys.get((item, kind, key))
        if cached is None:
            if len(self._keys) >= _MAX_KEYS:  # many clients: start over, not grow
                self._keys.clear()
            cached = self._keys[(item, kind, key)] = item.key_for(kind, key)
        return cached

    async def healthy(self) -> bool:
        """Whether the counters' storage answers (``/readyz``)."""
        try:
            return bool(await self._storage.check())
        except StorageError:
            return False
