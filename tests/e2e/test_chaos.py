"""The chaos harness, short: 50,000 events, 5 aggregator kills, an ingest kill, Redis restarted and
paused, stalled websocket clients; the figures must still equal the recount exactly.

`make chaos` runs the full harness (tests/tools/chaos.py); this variant keeps it honest in
`make test`.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.tools.chaos import Config, run

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_chaos_short_run_is_exact(tmp_path: Path) -> None:
    seed = int(os.environ.get("CCPULSE_CHAOS_SEED", "0"))
    report = run(
        Config(events=50_000, kills=5, seed=seed, rate=2500, drain_timeout=180, workdir=tmp_path)
    )
    print(report.text())
    assert report.ok, report.text()
    assert report.compared > 100
    assert sum(1 for line in report.header if "accepted (202) 50000" in line) == 1


def test_chaos_short_run_on_a_redis_cluster_with_three_aggregators_is_exact(
    tmp_path: Path,
) -> None:
    """The same faults on a local Redis Cluster (a primary restarted or paused at a time), with
    three aggregators sharing the group; measured FCR is compared too (its groups live in their
    shards' slots, docs/aggregation.md)."""
    seed = int(os.environ.get("CCPULSE_CHAOS_SEED", "0"))
    config = Config(
        events=50_000,
        kills=5,
        seed=seed,
        rate=2500,
        drain_timeout=240,
        workdir=tmp_path,
        aggregators=3,
        cluster=True,
    )
    report = run(config)
    print(report.text())
    assert report.ok, report.text()
    assert report.compared > 100
