"""Consumer lag reports (each aggregator reports its own partitions; stopped ones drop out), and
the installation's key prefix."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from services import keys, settings
from services.settings import Settings

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


def test_the_key_prefix_comes_from_the_environment_and_is_checked() -> None:
    assert settings.redis_key_prefix({}) == settings.DEFAULT_KEY_PREFIX == "ccp"
    assert settings.redis_key_prefix({settings.KEY_PREFIX_ENV: "site-b"}) == "site-b"
    for bad in ("a b", "x{p1}", "a*", "a:b", "x" * 65):
        with pytest.raises(ValueError, match=settings.KEY_PREFIX_ENV):
            settings.redis_key_prefix({settings.KEY_PREFIX_ENV: bad})
    # Every key of this process starts with its prefix: none is spelled with another.
    assert keys.STATS.startswith(keys.PREFIX + ":")
    assert keys.partition_facts_key(3).startswith(keys.PREFIX + ":{p3}")
    assert keys.all_keys_pattern() == keys.PREFIX + ":*"


def test_settings_refuse_a_prefix_the_process_does_not_name_its_keys_with() -> None:
    assert Settings().redis_key_prefix == keys.PREFIX
    with pytest.raises(ValidationError, match=settings.KEY_PREFIX_ENV):
        Settings(redis_key_prefix="another")
