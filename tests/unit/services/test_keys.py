"""Consumer lag reports: each aggregator reports its own partitions; stopped ones drop out."""

from __future__ import annotations

from services import keys

NOW_MS = 1_790_000_000_000


def test_lag_sums_the_consumers_that_reported_lately() -> None:
    reports = {
        b"host:1": keys.lag_report(120, NOW_MS - 2_000).encode(),
        b"host:2": keys.lag_report(30, NOW_MS - keys.LAG_FRESH_MS).encode(),
        b"host:3": keys.lag_report(9_999, NOW_MS - keys.LAG_FRESH_MS - 1).encode(),  # stopped
    }
    assert keys.fresh_lag(reports, NOW_MS) == 150
    assert keys.fresh_lag({}, NOW_MS) is None
    assert keys.fresh_lag({"old": keys.lag_report(5, 0)}, NOW_MS) is None


def test_reports_of_long_stopped_consumers_are_pruned() -> None:
    reports = {
        "running": keys.lag_report(0, NOW_MS - 5_000),
        "stopped": keys.lag_report(0, NOW_MS - 5 * keys.LAG_FRESH_MS),
        "gone": keys.lag_report(7, NOW_MS - 10 * keys.LAG_FRESH_MS - 1),
    }
    assert keys.gone_consumers(reports, NOW_MS) == ["gone"]
