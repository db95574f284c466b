"""Staffing cost per interval: Erlang A's agents search beside Erlang C's, same inputs, same run.

`python -m tests.tools.bench_erlang` (part of `make bench`): AHT 300 s, 80 % within 20 s,
patience 60 s, from 10 to 5,000 erlangs. A time in ms (median of 5) and its ratio to Erlang C.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from functools import partial

from services import erlang

LOADS = (10, 100, 540, 709, 1000, 2000, 5000)
AHT_S, PATIENCE_S, TARGET, THRESHOLD_S = 300.0, 60.0, 0.8, 20


def median_ms(work: Callable[[], object], runs: int = 5) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        work()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main() -> None:
    print(f"{'erlangs':>8} {'C agents':>9} {'A agents':>9} {'C ms':>8} {'A ms':>8} {'A/C':>6}")
    for load in LOADS:
        rate = load / AHT_S
        c = erlang.agents_erlang_c(rate, AHT_S, TARGET, THRESHOLD_S)
        a = erlang.agents_erlang_a(rate, AHT_S, PATIENCE_S, TARGET, THRESHOLD_S)
        c_ms = median_ms(partial(erlang.agents_erlang_c, rate, AHT_S, TARGET, THRESHOLD_S))
        a_ms = median_ms(
            partial(erlang.agents_erlang_a, rate, AHT_S, PATIENCE_S, TARGET, THRESHOLD_S)
        )
        print(
            f"{load:>8} {c.agents:>9} {a.agents:>9} {c_ms:>8.1f} {a_ms:>8.1f} {a_ms / c_ms:>6.1f}"
        )


if __name__ == "__main__":
    main()
