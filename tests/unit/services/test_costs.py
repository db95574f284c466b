"""Cost per case's pure parts: the handle-time allocation of logged-in time, the rate lookup,
the figures, and the agent rows' per-queue handle field (docs/metrics.md#cost)."""

from __future__ import annotations

import pytest

from aggregator.agent_time import interval_row, rows_for
from services import costs, kpis

DAY = 86_400


def day_of(start: int) -> int:
    return start // DAY


def test_logged_in_time_is_shared_by_the_days_handle_mix() -> None:
    logged = {(0, "a"): 600_000, (900, "a"): 300_000, (DAY, "a"): 900_000, (0, "b"): 900_000}
    handle = {
        (0, "a"): {("voice", "sales"): 3_000},
        (900, "a"): {("chat", ""): 1_000, ("voice", "sales"): 0},
        (DAY + 900, "b"): {("voice", "sales"): 5_000},  # b handles on the next day only
    }
    got = costs.allocate(logged, handle, day_of)
    assert got == {
        (0, "a", "voice", "sales"): 450_000.0,
        (0, "a", "chat", ""): 150_000.0,
        (900, "a", "voice", "sales"): 225_000.0,
        (900, "a", "chat", ""): 75_000.0,
        (DAY, "a", "", ""): 900_000.0,  # a day without a handled contact: idle, unshared
        (0, "b", "", ""): 900_000.0,
    }
    assert sum(got.values()) == sum(logged.values())


def test_rates_go_queue_then_channel_then_default() -> None:
    rates = costs.Rates(20.0, {"voice": 30.0}, {"vip": 45.0})
    assert rates.per_hour("voice", "vip") == 45.0
    assert rates.per_hour("voice", "sales") == 30.0
    assert rates.per_hour("chat", "") == 20.0
    assert costs.Rates(None, {"voice": 30.0}).per_hour("chat", "x") is None
    assert not costs.Rates().configured()


def test_figures_and_an_unpriced_part() -> None:
    allocation = {(0, "a", "voice", ""): 1_800_000.0, (0, "a", "chat", ""): 1_800_000.0}
    priced = costs.labour(allocation, allocation, costs.Rates(20.0, {"voice": 40.0}))
    assert costs.cost_figures(priced, 6) == {
        "logged_in_hours": 1.0,
        "labour_cost": 30.0,
        "cost_per_handled": 5.0,
        "handled_per_logged_in_hour": 6.0,
    }
    partial = costs.labour(allocation, allocation, costs.Rates(None, {"voice": 40.0}))
    assert partial.cost is None  # half the time has no hourly cost: no misleading sum
    none = costs.labour({}, [], costs.Rates(20.0))
    assert costs.cost_figures(none, 0)["labour_cost"] == 0.0
    assert costs.cost_figures(none, 0)["handled_per_logged_in_hour"] is None


def test_queue_handle_field_round_trip() -> None:
    name = kpis.queue_handle_field("voice", "sales: west")
    assert kpis.parse_queue_handle_field(name) == ("voice", "sales: west")
    assert kpis.parse_queue_handle_field(kpis.queue_handle_field("email", None)) == ("email", "")
    assert kpis.parse_queue_handle_field(kpis.HANDLE_MS) is None


@pytest.mark.parametrize("offset", [0, 7])
def test_an_interval_row_is_the_time_per_state_inside_it(offset: int) -> None:
    start = 900 * (1000 + offset)
    ms = start * 1000
    changes = [
        (ms - 60_000, "e1", "available"),  # before: lasts into the interval
        (ms + 100_000, "e2", "on_contact"),
        (ms + 400_000, "e3", "offline"),
        (ms + 800_000, "e4", "not_ready"),
        (ms + 950_000, "e5", "available"),  # after: does not count
    ]
    row = interval_row(start, changes)
    assert row == {
        "available_ms": 100_000,
        "on_contact_ms": 300_000,
        "wrap_up_ms": 0,
        "not_ready_ms": 100_000,
        "logged_in_ms": 500_000,
    }
    upsert, empty = rows_for("a", [start - 1800, start], changes, now_s=start + 900)
    assert empty == [start - 1800] and [r["start_s"] for r in upsert] == [start]
    open_rows, _ = rows_for("a", [start], changes, now_s=start + 200)  # open interval: to now
    assert open_rows[0]["logged_in_ms"] == 200_000
