"""Erlang A at any load: the closed form against an independent integration, and large centers
(beyond the ~709 erlangs where the old weights overflowed) giving finite, minimal answers."""

from __future__ import annotations

import math
import random

import pytest

from services import erlang


def reference_done_by(rates: list[float], horizon: float, steps: int = 4000) -> list[float]:
    """P(Exp(r0) + ... + Exp(rj) <= T) by integrating G_j' = r_j (G_{j-1} - G_j) with RK4."""
    h = horizon / steps
    g = [0.0] * len(rates)

    def slope(values: list[float]) -> list[float]:
        previous = [1.0, *values[:-1]]
        return [r * (p - v) for r, p, v in zip(rates, previous, values, strict=True)]

    for _ in range(steps):
        k1 = slope(g)
        k2 = slope([v + h / 2 * d for v, d in zip(g, k1, strict=True)])
        k3 = slope([v + h / 2 * d for v, d in zip(g, k2, strict=True)])
        k4 = slope([v + h * d for v, d in zip(g, k3, strict=True)])
        g = [
            v + h / 6 * (a + 2 * b + 2 * c + d)
            for v, a, b, c, d in zip(g, k1, k2, k3, k4, strict=True)
        ]
    return g


@pytest.mark.parametrize(
    ("a", "b", "horizon"), [(0.1, 0.01, 20), (0.5, 0.05, 30), (2.0, 1 / 60, 20)]
)
def test_the_closed_form_of_the_phases_equals_integrating_them(
    a: float, b: float, horizon: float
) -> None:
    rates = [a + j * b for j in range(40)]
    want = reference_done_by(rates, horizon)
    got = erlang._phases_done_by(len(rates), a / b, b * horizon)
    assert got == pytest.approx(want, abs=1e-7)


def test_erlang_a_equals_a_simulation_of_the_queue() -> None:
    """M/M/n+M simulated for 200,000 callers (seeded): served within 20 s and abandons."""
    agents, rate, aht, patience, threshold = 6, 1 / 30, 150.0, 60.0, 20.0
    served_in, abandons = simulate(agents, rate, aht, patience, threshold, 200_000)
    sl, abandon = erlang.erlang_a(agents, rate, aht, patience, threshold)
    assert sl == pytest.approx(served_in, abs=0.01) and abandon == pytest.approx(abandons, abs=0.01)


def simulate(
    agents: int, rate: float, aht: float, patience: float, threshold: float, callers: int
) -> tuple[float, float]:
    """First come first served; a caller leaves when patience runs out before an agent frees."""
    rng = random.Random(7)
    free_at = [0.0] * agents
    t = within = gone = 0
    arrival = 0.0
    for _ in range(callers):
        arrival += rng.expovariate(rate)
        give_up = arrival + rng.expovariate(1 / patience)
        k = min(range(agents), key=free_at.__getitem__)
        start = max(arrival, free_at[k])
        if start > give_up:
            gone += 1
            continue
        free_at[k] = start + rng.expovariate(1 / aht)
        within += start - arrival <= threshold
        t += 1
    return within / callers, gone / callers


@pytest.mark.parametrize("erlangs", [540, 709, 1000, 5000])
@pytest.mark.parametrize("patience", [30.0, 120.0])
def test_large_centers_get_the_fewest_agents_that_reach_the_target(
    erlangs: int, patience: float
) -> None:
    rate, aht = erlangs / 300, 300.0
    result = erlang.agents_erlang_a(rate, aht, patience, 0.8, 20)
    assert math.isfinite(result.service_level) and result.service_level >= 0.8
    assert 0.0 <= (result.abandon_probability or 0.0) < 1.0
    fewer, _ = erlang.erlang_a(result.agents - 1, rate, aht, patience, 20)
    assert fewer < 0.8
    assert result.agents <= erlang.agents_erlang_c(rate, aht, 0.8, 20).agents


def test_erlang_c_reaches_the_target_at_5000_erlangs() -> None:
    """The search bound was 5,000 agents: 5,000 erlangs got 5,001 agents at 8 % within 20 s."""
    c = erlang.agents_erlang_c(5000 / 300, 300, 0.8, 20)
    assert c.service_level >= 0.8 and c.agents > 5001
    assert erlang.service_level_c(c.agents - 1, 5000, 300, 20) < 0.8


def test_callers_who_never_hang_up_are_erlang_c_at_any_size() -> None:
    for erlangs in (10, 1000):
        c = erlang.agents_erlang_c(erlangs / 300, 300, 0.8, 20)
        a = erlang.agents_erlang_a(erlangs / 300, 300, 1e12, 0.8, 20)
        assert a.agents == c.agents
