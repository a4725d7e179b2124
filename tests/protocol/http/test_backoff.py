"""Jittered exponential backoff: growth to the cap, reset on success, jitter bounds."""

from __future__ import annotations

import itertools
import random

import pytest

from protocol.http.backoff import Backoff


def test_healthy_peer_has_no_delay() -> None:
    backoff = Backoff()
    assert backoff.ceiling == 0.0
    assert backoff.next_delay(0.999) == 0.0


def test_ceiling_grows_monotonically_to_the_cap() -> None:
    backoff = Backoff(base=1.0, cap=300.0)
    ceilings = []
    for _ in range(30):
        backoff.failure()
        ceilings.append(backoff.ceiling)
    assert ceilings[:4] == [1.0, 2.0, 4.0, 8.0]
    assert all(a <= b for a, b in itertools.pairwise(ceilings))
    assert ceilings[-1] == 300.0
    assert max(ceilings) == 300.0
    assert ceilings.index(300.0) == 9  # 2**9 = 512 is the first past the cap


@pytest.mark.parametrize("rng_value", [0.0, 0.5, 0.999999])
def test_delays_with_a_fixed_draw_are_monotone(rng_value: float) -> None:
    backoff = Backoff()
    delays = []
    for _ in range(20):
        backoff.failure()
        delays.append(backoff.next_delay(rng_value))
    assert all(a <= b for a, b in itertools.pairwise(delays))
    assert delays[-1] <= 300.0


def test_success_resets_immediately() -> None:
    backoff = Backoff()
    for _ in range(12):
        backoff.failure()
    assert backoff.ceiling == 300.0
    backoff.success()
    assert backoff.ceiling == 0.0
    assert backoff.next_delay(0.7) == 0.0
    backoff.failure()
    assert backoff.ceiling == 1.0


def test_jitter_stays_within_half_ceiling_and_ceiling() -> None:
    rng = random.Random(20261123)
    backoff = Backoff()
    for _ in range(15):
        backoff.failure()
        ceiling = backoff.ceiling
        draws = [backoff.next_delay(rng.random()) for _ in range(200)]
        assert all(ceiling / 2 <= d <= ceiling for d in draws)
        # It really is spread out, not a constant.
        assert max(draws) - min(draws) > ceiling / 4


def test_jitter_bounds_exact() -> None:
    backoff = Backoff(base=2.0, cap=60.0)
    for _ in range(3):
        backoff.failure()
    assert backoff.ceiling == 8.0
    assert backoff.next_delay(0.0) == 4.0
    assert backoff.next_delay(0.5) == 6.0


def test_long_outage_does_not_overflow() -> None:
    backoff = Backoff(factor=10.0)
    backoff.failures = 100_000
    assert backoff.ceiling == 300.0


@pytest.mark.parametrize("value", [-0.1, 1.0, 2.0])
def test_rng_value_must_be_unit_interval(value: float) -> None:
    with pytest.raises(ValueError):
        Backoff().next_delay(value)


@pytest.mark.parametrize("kwargs", [{"base": 0.0}, {"base": 10.0, "cap": 5.0}, {"factor": 0.5}])
def test_rejects_nonsense_parameters(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        Backoff(**kwargs)
