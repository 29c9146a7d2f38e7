"""The lazily expiring in-memory rate-limit storage: the same decisions as ``limits``' own
MemoryStorage under the same clock (oracle), exact limits at the boundary, windows that
expire, stale counters that are forgotten, and tokens and clients counted apart."""

from __future__ import annotations

import asyncio
import random
import time

import pytest
from limits import parse
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import FixedWindowRateLimiter, SlidingWindowCounterRateLimiter

from bastion.gateway._memory_limits import LazyMemoryStorage
from bastion.gateway.ratelimit import RateLimits


class Clock:
    """A settable ``time.time``."""

    def __init__(self, now: float = 1_700_000_000.25) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(time, "time", fake)
    return fake


def test_same_decisions_and_window_stats_as_limits_memory_storage(clock: Clock) -> None:
    async def run() -> None:
        ours = SlidingWindowCounterRateLimiter(LazyMemoryStorage())
        theirs = SlidingWindowCounterRateLimiter(MemoryStorage())
        items = [parse("5/second"), parse("7/minute"), parse("3/10 seconds")]
        rng = random.Random(0)
        n_refused = 0
        for step in range(3000):
            clock.now += rng.choice([0.0, 0.01, 0.1, 0.35, 0.9, 2.5, 13.0])
            item, key = rng.choice(items), rng.choice(["a", "b"])
            decision = await ours.hit(item, "token", key)
            assert decision == await theirs.hit(item, "token", key), step
            n_refused += not decision
            assert (await ours.get_window_stats(item, "token", key)
                    == await theirs.get_window_stats(item, "token", key)), step
        assert 100 < n_refused < 2900  # both sides of the boundary were exercised

    asyncio.run(run())


def test_fixed_window_counters_expire_when_read(clock: Clock) -> None:
    async def run() -> None:
        limiter = FixedWindowRateLimiter(LazyMemoryStorage())
        item = parse("2/second")
        assert [await limiter.hit(item, "k") for _ in range(3)] == [True, True, False]
        clock.now += 1.01
        assert await limiter.hit(item, "k")

    asyncio.run(run())


def test_limit_is_exact_at_the_boundary_and_the_window_slides(clock: Clock) -> None:
    async def run() -> None:
        limiter = SlidingWindowCounterRateLimiter(LazyMemoryStorage())
        item = parse("10/minute")
        clock.now = 60 * 1_000_000.0  # the start of a window
        assert [await limiter.hit(item, "k") for _ in range(11)] == [True] * 10 + [False]
        clock.now += 60 + 30  # half of the previous window (10 hits) still counts: 5
        assert [await limiter.hit(item, "k") for _ in range(6)] == [True] * 5 + [False]
        clock.now += 120  # two windows on: nothing counts
        assert [await limiter.hit(item, "k") for _ in range(10)] == [True] * 10

    asyncio.run(run())


def test_stale_counters_are_forgotten(clock: Clock) -> None:
    async def run() -> None:
        storage = LazyMemoryStorage(sweep_s=5)
        limiter = SlidingWindowCounterRateLimiter(storage)
        for n in range(100):
            await limiter.hit(parse("5/second"), "client", f"10.0.{n}.1")
        clock.now += 1.0  # the previous window still counts: all kept
        await limiter.hit(parse("5/second"), "client", "late")
        assert len(storage._windows) == 101
        clock.now += 5.0
        await limiter.hit(parse("5/second"), "client", "later")
        assert set(storage._windows) == {parse("5/second").key_for("client", "later")}

    asyncio.run(run())


def test_tokens_and_clients_are_counted_apart(clock: Clock) -> None:
    async def run() -> None:
        limits = RateLimits(per_token="2/second", per_client="3/second")
        one, other = "10.0.0.1", "10.0.0.2"
        assert await limits.hit(client=one, token_id="a") is None
        assert await limits.hit(client=one, token_id="a") is None
        assert await limits.hit(client=one, token_id="b") is None  # the address's 3rd
        assert await limits.hit(client=one, token_id="b") is not None  # address spent
        assert await limits.hit(client=other, token_id="a") is not None  # token a spent
        assert await limits.hit(client=other, token_id="b") is None  # b's 2nd, elsewhere
        assert await limits.hit(client=other, token_id=None) is None
        clock.now += 2.0
        assert await limits.hit(client=one, token_id="a") is None  # windows passed
    asyncio.run(run())


def test_memory_is_the_lazy_storage_and_answers_readiness() -> None:
    limits = RateLimits(per_token="2/second", per_client="3/second")
    assert isinstance(limits._storage, LazyMemoryStorage)
    assert asyncio.run(limits.healthy())
