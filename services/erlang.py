"""Staffing formulas: Erlang C (callers wait forever) and Erlang A (callers may hang up).

Pure functions of arrival rate, handle time and patience, so the tests can check them against
published worked examples. Erlang C is computed with the Erlang B recursion, which stays stable
for hundreds of agents where factorials overflow.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import accumulate

MAX_AGENTS = 100_000  # the search bound; 5,000 erlangs need ~5,030 agents at 80/20
MAX_WAITING = 20_000  # a bound on the waiting states kept (the tail beyond weighs nothing)
LOG_TAIL = math.log(1e-16)  # states below this share of the largest are left out
TAIL_BLOCK = 512


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
    times the chance that j+1 exponential phases of rates a, a+theta, ..., a+j*theta
    (a = n*mu + theta) end by T. That sum of phases has a closed form, the regularised
    incomplete beta I_y(j+1, a/theta) with y = 1 - exp(-theta*T) (docs/metrics.md#erlang-a),
    so the cost is linear in the states that matter, for any load.
    """
    mu, theta, lam = 1 / aht_s, 1 / patience_s, rate_per_s
    weights, complete = _stationary(agents, lam, mu, theta)
    traffic = lam / mu
    if not complete and agents > traffic:  # patience far beyond any wait: Erlang C's queue
        return service_level_c(agents, traffic, aht_s, threshold_s), 0.0
    total = math.fsum(weights)
    waiting = weights[agents:]
    served_at_once = math.fsum(weights[:agents]) / total
    done = _phases_done_by(len(waiting), (agents * mu + theta) / theta, theta * threshold_s)
    win, served_late, abandon = 1.0, 0.0, 0.0
    for j, weight in enumerate(waiting):
        forward = agents * mu + j * theta
        win *= forward / (forward + theta)  # phases j..0 all won, in any order of rates
        served_late += weight / total * win * done[j]
        abandon += weight / total * (1 - win)
    return min(1.0, served_at_once + served_late), min(1.0, abandon)


def agents_erlang_a(
    rate_per_s: float, aht_s: float, patience_s: float, target_sl: float, threshold_s: float
) -> Staffing:
    """The fewest agents whose Erlang A service level (abandons count as missed) reaches target.

    A binary search between two bounds: Erlang C's answer is enough (callers who hang up only
    lighten the load), and fewer than target x erlangs cannot serve the target's share.
    """
    if rate_per_s <= 0:
        return Staffing(0, 1.0, 0.0, None, 0.0)

    def meets(n: int) -> bool:
        return erlang_a(n, rate_per_s, aht_s, patience_s, threshold_s)[0] >= target_sl

    # Served at all is at most n/A (n agents serve at most n*mu a second): a floor for n.
    low = max(1, math.ceil(target_sl * rate_per_s * aht_s - 1e-9))
    high = max(low, agents_erlang_c(rate_per_s, aht_s, target_sl, threshold_s).agents)
    while low < high:  # the service level rises with every agent added
        n = (low + high) // 2
        if meets(n):
            high = n
        else:
            low = n + 1
    sl, abandon = erlang_a(low, rate_per_s, aht_s, patience_s, threshold_s)
    return Staffing(low, sl, None, min(1.0, rate_per_s * aht_s * (1 - abandon) / low), abandon)


def _stationary(agents: int, lam: float, mu: float, theta: float) -> tuple[list[float], bool]:
    """Birth-death weights scaled to their largest, cut at 1e-16 of it on the right; False with
    them when the waiting tail was still heavy at MAX_WAITING states (callers all but never hang
    up). Sums of logs (the raw weights overflow a float beyond ~709 erlangs) in C-level loops."""
    logs = list(accumulate((math.log(lam / (k * mu)) for k in range(1, agents + 1)), initial=0.0))
    peak = max(logs)
    served = agents * mu
    complete = False
    while len(logs) < agents + MAX_WAITING:
        start = len(logs) - agents
        block = (math.log(lam / (served + i * theta)) for i in range(start, start + TAIL_BLOCK))
        tail = list(accumulate(block, initial=logs[-1]))[1:]
        logs.extend(tail)
        peak = max(peak, max(tail))
        if tail[-1] < tail[-2] and tail[-1] - peak < LOG_TAIL:
            complete = True
            break
    cut = len(logs)
    while cut > agents + 1 and logs[cut - 1] - peak < LOG_TAIL:
        cut -= 1
    return [math.exp(v - peak) for v in logs[:cut]], complete


def _phases_done_by(count: int, alpha: float, theta_t: float) -> list[float]:
    """P(Exp(a) + Exp(a+b) + ... + Exp(a+jb) <= T) for j < count, with alpha = a/b and
    theta_t = b*T: 1 - (1-y)^alpha - sum_{m=1..j} t_m, y = 1 - exp(-bT), where
    t_m = y^m (1-y)^alpha Gamma(m+alpha) / (Gamma(m+1) Gamma(alpha)), in logs (no underflow)."""
    if count == 0:
        return []
    log_y = math.log(-math.expm1(-theta_t)) if theta_t > 0 else -math.inf
    log_rest = -alpha * theta_t  # log (1-y)^alpha
    remaining = -math.expm1(log_rest)  # I_y(1, alpha) = 1 - (1-y)^alpha
    done = [remaining]
    log_t = math.log(alpha) + log_y + log_rest  # t_1
    for m in range(1, count):
        remaining -= math.exp(log_t)
        done.append(min(1.0, max(0.0, remaining)))
        log_t += log_y + math.log((m + alpha) / (m + 1))
    return done
