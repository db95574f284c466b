"""Staffing formulas: Erlang C (callers wait forever) and Erlang A (callers may hang up).

Pure functions of arrival rate, handle time and patience, so the tests can check them against
published worked examples. Erlang C is computed with the Erlang B recursion, which stays stable
for hundreds of agents where factorials overflow.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

MAX_AGENTS = 5000


def erlang_b(agents: int, traffic: float) -> float:
    """Blocking probability of `agents` servers offered `traffic` erlangs (recursive form)."""
    b = 1.0
    for n in range(1, agents + 1):
        b = traffic * b / (n + traffic * b)
    return b


def erlang_c(agents: int, traffic: float) -> float:
    """Probability that a contact waits (all agents busy); 1 when the queue is unstable."""
    if agents <= traffic:
        return 1.0
    b = erlang_b(agents, traffic)
    return agents * b / (agents - traffic * (1 - b))


def service_level_c(agents: int, traffic: float, aht_s: float, threshold_s: float) -> float:
    """Share answered within the threshold: 1 - C * exp(-(N - A) * T / AHT)."""
    if agents <= traffic:
        return 0.0
    return 1 - erlang_c(agents, traffic) * math.exp(-(agents - traffic) * threshold_s / aht_s)


def asa_c(agents: int, traffic: float, aht_s: float) -> float:
    """Average speed of answer over all contacts, seconds."""
    if agents <= traffic:
        return math.inf
    return erlang_c(agents, traffic) * aht_s / (agents - traffic)


@dataclass(frozen=True, slots=True)
class Staffing:
    agents: int
    service_level: float
    asa_seconds: float | None
    occupancy: float | None
    abandon_probability: float | None = None


def agents_erlang_c(
    rate_per_s: float, aht_s: float, target_sl: float, threshold_s: float
) -> Staffing:
    """The fewest agents whose Erlang C service level reaches the target."""
    traffic = rate_per_s * aht_s
    if traffic <= 0:
        return Staffing(0, 1.0, 0.0, None)
    low = max(1, math.floor(traffic) + 1)
    high = low
    while high < MAX_AGENTS and service_level_c(high, traffic, aht_s, threshold_s) < target_sl:
        low, high = high + 1, min(MAX_AGENTS, high * 2)  # the level rises with every agent
    while low < high:
        mid = (low + high) // 2
        if service_level_c(mid, traffic, aht_s, threshold_s) >= target_sl:
            high = mid
        else:
            low = mid + 1
    n = high
    return Staffing(
        n, service_level_c(n, traffic, aht_s, threshold_s), asa_c(n, traffic, aht_s), traffic / n
    )


def erlang_a(
    agents: int, rate_per_s: float, aht_s: float, patience_s: float, threshold_s: float
) -> tuple[float, float]:
    """M/M/n+M: (share served within the threshold, share that abandons).

    An arrival finding j callers ahead moves up at rate n*mu + i*theta (a service or an abandon
    ahead) and hangs up at rate theta, so "served within T" is the chance of winning every race,
    times the chance the j+1 exponential phases end by T (integrated as a linear ODE).
    """
    mu, theta, lam = 1 / aht_s, 1 / patience_s, rate_per_s
    weights = _stationary(agents, lam, mu, theta)
    total = sum(weights)
    waiting = weights[agents:]
    served_at_once = sum(weights[:agents]) / total
    forward = [agents * mu + i * theta for i in range(len(waiting))]
    rates = [f + theta for f in forward]
    done = _phases_done_by(rates, threshold_s)
    win, served_late, abandon = 1.0, 0.0, 0.0
    for j, weight in enumerate(waiting):
        win *= forward[j] / rates[j]  # phases j..0 all won, in any order of rates
        served_late += weight / total * win * done[j]
        abandon += weight / total * (1 - win)
    return served_at_once + served_late, abandon


def agents_erlang_a(
    rate_per_s: float, aht_s: float, patience_s: float, target_sl: float, threshold_s: float
) -> Staffing:
    """The fewest agents whose Erlang A service level (abandons count as missed) reaches target."""
    if rate_per_s <= 0:
        return Staffing(0, 1.0, 0.0, None, 0.0)
    n = 1
    upper = agents_erlang_c(rate_per_s, aht_s, target_sl, threshold_s).agents
    low, high = 1, max(1, upper)
    while low < high:  # the service level rises with every agent added
        n = (low + high) // 2
        if erlang_a(n, rate_per_s, aht_s, patience_s, threshold_s)[0] >= target_sl:
            high = n
        else:
            low = n + 1
    sl, abandon = erlang_a(low, rate_per_s, aht_s, patience_s, threshold_s)
    return Staffing(low, sl, None, min(1.0, rate_per_s * aht_s * (1 - abandon) / low), abandon)


def _stationary(agents: int, lam: float, mu: float, theta: float) -> list[float]:
    """Unnormalised birth-death weights, cut where the tail stops mattering."""
    weights = [1.0]
    k = 0
    while k < agents + 20_000:
        k += 1
        death = min(k, agents) * mu + max(k - agents, 0) * theta
        weights.append(weights[-1] * lam / death)
        if k > agents and weights[-1] < 1e-12 * max(weights):
            break
    scale = max(weights)
    return [w / scale for w in weights]


def _phases_done_by(rates: list[float], horizon_s: float) -> list[float]:
    """P(Exp(r0) + ... + Exp(rj) <= T) for every j: G_j' = r_j (G_{j-1} - G_j), RK4."""
    if not rates:
        return []
    steps = max(20, math.ceil(max(rates) * horizon_s * 2))
    h = horizon_s / steps
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
