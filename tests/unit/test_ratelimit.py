"""The one rate limiter: bursts, refill, refusals that cost nothing, and bounded memory."""

from __future__ import annotations

import pytest

from ops.core.ratelimit import RateLimiter


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_key_spends_its_burst_then_is_refused_until_it_earns_a_token() -> None:
    clock = Clock()
    limiter = RateLimiter(2.0, 3, clock=clock)
    assert [limiter.attempt("a").allowed for _ in range(3)] == [True, True, True]
    refused = limiter.attempt("a")
    assert not refused.allowed
    assert refused.retry_after == pytest.approx(0.5)
    clock.now += 0.5
    assert limiter.attempt("a").allowed
    assert not limiter.attempt("a").allowed


def test_keys_are_counted_apart() -> None:
    limiter = RateLimiter(1.0, 1, clock=Clock())
    assert limiter.attempt(("10.0.0.1", "budi")).allowed
    assert not limiter.attempt(("10.0.0.1", "budi")).allowed
    assert limiter.attempt(("10.0.0.1", "sari")).allowed
    assert limiter.attempt(("10.0.0.2", "budi")).allowed


def test_only_the_first_refusal_in_a_row_is_flagged() -> None:
    clock = Clock()
    limiter = RateLimiter(1.0, 1, clock=clock)
    limiter.attempt("a")
    assert limiter.attempt("a").first_refusal
    assert not limiter.attempt("a").first_refusal
    clock.now += 1.0
    assert limiter.attempt("a").allowed
    assert limiter.attempt("a").first_refusal


def test_refused_attempts_cost_nothing() -> None:
    clock = Clock()
    limiter = RateLimiter(1.0, 1, clock=clock)
    limiter.attempt("a")
    for _ in range(100):
        limiter.attempt("a")
    clock.now += 1.0
    assert limiter.attempt("a").allowed


def test_per_minute_lets_the_limit_through_then_one_per_share_of_the_minute() -> None:
    clock = Clock()
    limiter = RateLimiter.per_minute(6, clock=clock)
    assert all(limiter.attempt("a").allowed for _ in range(6))
    refused = limiter.attempt("a")
    assert not refused.allowed
    assert refused.retry_after == pytest.approx(10.0)
    clock.now += 10.0
    assert limiter.attempt("a").allowed


def test_the_bucket_never_holds_more_than_its_burst() -> None:
    clock = Clock()
    limiter = RateLimiter(10.0, 2, clock=clock)
    limiter.attempt("a")
    clock.now += 3600.0
    assert [limiter.attempt("a").allowed for _ in range(3)] == [True, True, False]


def test_memory_is_bounded_and_the_stalest_key_is_forgotten() -> None:
    limiter = RateLimiter(1.0, 1, max_keys=2, clock=Clock())
    limiter.attempt("a")
    limiter.attempt("b")
    limiter.attempt("a")  # refused, but now the freshest
    limiter.attempt("c")
    assert len(limiter) == 2
    assert not limiter.attempt("a").allowed  # still remembered
    assert limiter.attempt("b").allowed  # forgotten, so it starts full


@pytest.mark.parametrize(("rate", "burst", "max_keys"), [(0, 1, 1), (1, 0, 1), (1, 1, 0)])
def test_nonsense_limits_are_refused(rate: float, burst: float, max_keys: int) -> None:
    with pytest.raises(ValueError, match="rate must be positive"):
        RateLimiter(rate, burst, max_keys=max_keys)
