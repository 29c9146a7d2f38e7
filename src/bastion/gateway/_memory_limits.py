"""An in-process storage for ``limits``' asyncio strategies that expires counters lazily.

``limits``' own asyncio memory storage starts an expiry task on every hit (~25 µs of a
request's CPU in the gateway) and its threaded one restarts a timer thread every 10 ms.
Here a counter is checked for expiry when it is read, and stale counters are swept
away at most once per ``sweep_s`` from the request path, so nothing runs between
requests. ``limits``' strategies still do the rate-limit arithmetic; this class only
keeps the numbers.

Sliding-window counters are kept as one record per limit key (the current window's
number and count, and the previous window's count) instead of one counter per window
key; the numbers returned are those of ``limits``' ``MemoryStorage``.

For a single event loop: no method awaits anything, so each runs whole between two
requests' steps, which is what makes check-then-increment atomic without locks.
Registered with ``limits`` as ``async+bastion-memory://``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from limits.aio.storage import SlidingWindowCounterSupport, Storage

__all__ = ["LazyMemoryStorage"]


@dataclass(slots=True)
class _Window:
    """A sliding-window counter: ``current`` hits in window number ``index`` (windows of
    ``expiry`` seconds since the epoch) and ``previous`` hits in the window before it."""

    expiry: float
    index: int
    current: int = 0
    previous: int = 0

    def roll(self, index: int) -> None:
        """Move to window ``index``: the current window becomes the previous one if it is
        the one just before, else both are empty."""
        if index != self.index:
            self.previous = self.current if index == self.index + 1 else 0
            self.current = 0
            self.index = index


class LazyMemoryStorage(Storage, SlidingWindowCounterSupport):
    """Counters in a dict, expired when read; for fixed and sliding-window-counter limits."""

    STORAGE_SCHEME: list[str] | None = ["async+bastion-memory"]  # noqa: RUF012 (limits reads it)

    def __init__(self, uri: str | None = None, wrap_exceptions: bool = False,
                 sweep_s: float = 10.0, **options: float | str | bool) -> None:
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)
        self._counters: dict[str, tuple[int, float]] = {}  # key -> (count, expires at)
        self._windows: dict[str, _Window] = {}
        self._sweep_s = float(sweep_s)
        self._next_sweep = time.time() + self._sweep_s

    @property
    def base_exceptions(self) -> type[Exception] | tuple[type[Exception], ...]:
        return ValueError

    # -- fixed windows (the Storage contract) --------------------------------------------

    async def incr(self, key: str, expiry: float, amount: int = 1) -> int:
        now = time.time()
        count, expires = self._counters.get(key, (0, 0.0))
        if expires <= now:
            count, expires = 0, now + expiry
        self._counters[key] = (count + amount, expires)
        self._maybe_sweep(now)
        return count + amount

    async def get(self, key: str) -> int:
        count, expires = self._counters.get(key, (0, 0.0))
        return count if expires > time.time() else 0

    async def get_expiry(self, key: str) -> float:
        now = time.time()
        _, expires = self._counters.get(key, (0, now))
        return expires if expires > now else now

    async def check(self) -> bool:
        return True

    async def reset(self) -> int | None:
        n = len(self._counters) + len(self._windows)
        self._counters.clear()
        self._windows.clear()
        return n

    async def clear(self, key: str) -> None:
        self._counters.pop(key, None)
        self._windows.pop(key, None)

    # -- sliding-window counters -------------------------------------------------------

    async def acquire_sliding_window_entry(self, key: str, limit: int, expiry: int,
                                           amount: int = 1) -> bool:
        if amount > limit:
            return False
        now = time.time()
        window = self._window(key, expiry, now)
        previous_ttl = _previous_ttl(window, now)
        if math.floor(window.previous * previous_ttl / expiry + window.current) + amount > limit:
            return False
        window.current += amount
        self._maybe_sweep(now)
        return True

    async def get_sliding_window(self, key: str, expiry: int) -> tuple[int, float, int, float]:
        now = time.time()
        window = self._window(key, expiry, now)
        current_ttl = (1 - ((now / expiry) % 1)) * expiry + expiry
        return window.previous, _previous_ttl(window, now), window.current, current_ttl

    async def clear_sliding_window(self, key: str, expiry: int) -> None:
        self._windows.pop(key, None)

    def _window(self, key: str, expiry: float, now: float) -> _Window:
        index = int(now / expiry)
        window = self._windows.get(key)
        if window is None or window.expiry != expiry:
            window = self._windows[key] = _Window(float(expiry), index)
        else:
            window.roll(index)
        return window

    def _maybe_sweep(self, now: float) -> None:
        """Forget counters that can no longer count, at most once per ``sweep_s``."""
        if now < self._next_sweep:
            return
        self._next_sweep = now + self._sweep_s
        self._counters = {k: v for k, v in self._counters.items() if v[1] > now}
        # a window's counts matter until the end of the window after it
        self._windows = {k: w for k, w in self._windows.items()
                         if int(now / w.expiry) <= w.index + 1}


def _previous_ttl(window: _Window, now: float) -> float:
    """How much of the previous window still overlaps the sliding one, in seconds (as
    ``limits`` computes it: 0 when the previous window is empty)."""
    if window.previous == 0:
        return 0.0
    return (1 - (((now - window.expiry) / window.expiry) % 1)) * window.expiry
