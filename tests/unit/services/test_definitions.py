"""Each definition of docs/metrics.md pinned by a small day worked out by hand."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from services import kpis
from tests.unit.aggregator.test_engine_recount import MemoryState

DAY = datetime(2026, 11, 24, 10, 0, tzinfo=UTC).timestamp()
HOUR = (int(DAY), int(DAY) + 3600)


def at(seconds: float) -> str:
    return datetime.fromtimestamp(DAY + seconds, UTC).isoformat()


def ev(n: str, kind: str, t: float, contact: str, **extra: Any) -> dict[str, Any]:
    return {"id": n, "type": kind, "time": at(t), "contact": contact, **extra}


HAND_DAY = [
    # A: IVR, queue, answered after 15 s, handled 300 s, resolved on first contact
    ev("a1", "contact.offered", 0, "A", channel="voice", queue="sales"),
    ev("a2", "contact.ivr", 5, "A", stage="welcome"),
    ev("a3", "contact.queued", 20, "A"),
    ev("a4", "contact.answered", 35, "A", agent="ann"),
    ev("a5", "contact.completed", 335, "A"),
    ev("a6", "contact.resolved", 335, "A", first_contact=True),
    # B: short abandon (3 s after queueing)
    ev("b1", "contact.offered", 60, "B", channel="voice", queue="sales"),
    ev("b2", "contact.queued", 70, "B"),
    ev("b3", "contact.abandoned", 73, "B"),
    # C: queue abandon after 45 s
    ev("c1", "contact.offered", 120, "C", channel="voice", queue="sales"),
    ev("c2", "contact.queued", 125, "C"),
    ev("c3", "contact.abandoned", 170, "C"),
    # D: abandons in the IVR menu, 30 s after the offer
    ev("d1", "contact.offered", 180, "D", channel="voice", queue="sales"),
    ev("d2", "contact.ivr", 185, "D", stage="menu"),
    ev("d3", "contact.abandoned", 210, "D"),
    # E: answered after 30 s
    ev("e1", "contact.offered", 240, "E", channel="voice", queue="sales"),
    ev("e2", "contact.queued", 240, "E"),
    ev("e3", "contact.answered", 270, "E", agent="bob"),
]


@pytest.fixture(scope="module")
def counters() -> dict[str, int]:
    state = MemoryState(now=DAY + 7200)
    state.apply(HAND_DAY)
    parts = [
        f for (m, s), f in state.counters.items() if s == "ch|voice" and HOUR[0] <= m < HOUR[1]
    ]
    return kpis.sum_counters(parts)


def test_volume(counters: dict[str, int]) -> None:
    f = kpis.figures(counters, kpis.ReadOptions())
    assert (f["offered"], f["queued"], f["answered"], f["abandoned"]) == (5, 4, 2, 3)
    assert (f["abandoned_queue"], f["abandoned_ivr"], f["short_abandoned"]) == (2, 1, 1)
    assert f["abandoned_by_stage"] == {"queue": 2, "menu": 1}
    assert f["asa_seconds"] == 22.5 and f["aht_seconds"] == 300.0
    assert f["fcr_rate"] == 1.0 and f["resolved"] == 1


@pytest.mark.parametrize(
    ("variant", "threshold", "exclude_short", "expected"),
    [
        ("abandons_missed", 20, True, 1 / 3),  # 1 met / (2 answered + 2 queue abandons - 1 short)
        ("abandons_missed", 20, False, 1 / 4),
        ("abandons_ignored", 20, True, 1 / 2),
        ("abandons_met_within", 20, True, 1 / 3),  # C left after 45 s: not within 20
        ("abandons_met_within", 60, True, 1.0),  # (2 met + C) / 3
        ("abandons_missed", 30, True, 2 / 3),  # a wait equal to the threshold is within it
    ],
)
def test_service_level_variants(
    counters: dict[str, int],
    variant: kpis.SlVariant,
    threshold: int,
    exclude_short: bool,
    expected: float,
) -> None:
    opts = kpis.ReadOptions(
        sl_threshold_s=threshold, sl_variant=variant, sl_exclude_short=exclude_short
    )
    assert kpis.service_level(counters, opts) == pytest.approx(expected)


def test_abandon_rate_denominators(counters: dict[str, int]) -> None:
    assert kpis.abandon_rate(counters, kpis.ReadOptions()) == pytest.approx(2 / 4)
    queued = kpis.ReadOptions(abandon_denominator="queued")
    assert kpis.abandon_rate(counters, queued) == pytest.approx(1 / 3)


def test_ivr_funnel(counters: dict[str, int]) -> None:
    funnel = kpis.ivr_funnel(counters)
    # Mean path positions: menu 0 and welcome 0 (each first on its path; ties by name), queue 0.25.
    assert funnel == [
        {"stage": "menu", "entered": 1, "abandoned": 1, "went_on": 0},
        {"stage": "welcome", "entered": 1, "abandoned": 0, "went_on": 1},
        {"stage": "queue", "entered": 4, "abandoned": 2, "went_on": 2},
    ]


def test_threshold_must_be_an_edge() -> None:
    with pytest.raises(ValueError, match="edge"):
        kpis.hist_within({}, kpis.ANSWER_HIST, 25)


@pytest.mark.parametrize(
    ("changes", "window", "expected"),
    [
        (
            [(0, "1", "available"), (60_000, "2", "on_contact")],
            (0, 120_000),
            {"available": 60.0, "on_contact": 60.0},
        ),
        ([(0, "1", "available")], (30_000, 90_000), {"available": 60.0}),
        (
            [(60_000, "2", "on_contact"), (0, "1", "available"), (0, "1", "available")],
            (0, 90_000),
            {"available": 60.0, "on_contact": 30.0},
        ),  # order and duplicates do not matter
        ([(-3_600_000, "0", "break")], (0, 60_000), {"break": 60.0}),  # the state at the start
    ],
)
def test_time_in_state(
    changes: list[kpis.StateChange], window: tuple[int, int], expected: dict[str, float]
) -> None:
    assert kpis.time_in_state(changes, *window) == expected


def test_occupancy() -> None:
    seconds = {"on_contact": 30.0, "wrap_up": 10.0, "available": 40.0, "break": 100.0}
    assert kpis.occupancy(seconds, ["on_contact", "wrap_up"], ["available"]) == 0.5


# --- rules pinned down in docs/metrics.md#rules-pinned-down ---


def _figures(events: list[dict[str, Any]], **opts: Any) -> dict[str, Any]:
    state = MemoryState(now=DAY + 7200)
    state.apply(events)
    parts = [f for (m, s), f in state.counters.items() if s.startswith("ch|")]
    return kpis.figures(kpis.sum_counters(parts), kpis.ReadOptions(**opts))


def test_a_channel_uses_its_own_threshold_even_when_its_queues_have_theirs() -> None:
    from api.live_reader import read_options
    from services.settings import Settings

    settings = Settings(auth="off", queue_sl_thresholds_seconds={"sales": 60})
    assert read_options(settings, "voice").sl_threshold_s == 20
    assert read_options(settings, "voice", "sales").sl_threshold_s == 60


def test_excluding_short_abandons_shapes_the_abandon_rate_too(counters: dict[str, int]) -> None:
    kept = kpis.ReadOptions(sl_exclude_short=False)
    assert kpis.abandon_rate(counters, kept) == pytest.approx(3 / 5)  # B's 3 s abandon counts
    assert kpis.abandon_rate(counters, kpis.ReadOptions()) == pytest.approx(2 / 4)


def test_a_zero_second_first_response_is_under_1h_and_buckets_are_low_exclusive() -> None:
    events = [
        ev("z1", "contact.offered", 0, "Z", channel="chat"),
        ev("z2", "contact.answered", 0, "Z", agent="ann"),  # 0 s
        ev("y1", "contact.offered", 0, "Y", channel="chat"),
        ev("y2", "contact.answered", 3600, "Y", agent="ann"),  # exactly 1 h: still under_1h
        ev("x1", "contact.offered", 0, "X", channel="chat"),
        ev("x2", "contact.answered", 3601, "X", agent="ann"),  # just over: 1h_2h
    ]
    buckets = _figures(events, sl_threshold_s=60)["first_response_buckets"]
    assert (buckets["under_1h"], buckets["1h_2h"]) == (2, 1)


def test_first_contact_and_abandon_stage_reported_twice_keep_the_latest() -> None:
    events = [
        ev("r1", "contact.offered", 0, "R", channel="voice"),
        ev("r2", "contact.resolved", 60, "R", first_contact=True),
        ev("r3", "contact.resolved", 120, "R", first_contact=False),  # the later report wins
        ev("s1", "contact.offered", 0, "S", channel="voice"),
        ev("s2", "contact.abandoned", 30, "S", stage="menu"),
        ev("s3", "contact.abandoned", 40, "S", stage="queue"),  # the later stage wins
    ]
    f = _figures(events)
    assert (f["resolved"], f["fcr_rate"]) == (1, 0.0)
    assert f["abandoned_by_stage"] == {"queue": 1}


def test_an_earlier_csat_survives_a_later_nps_only_response() -> None:
    events = [
        ev("c1", "contact.offered", 0, "C", channel="chat"),
        ev("c2", "survey.response", 100, "C", csat=5),
        ev("c3", "survey.response", 200, "C", nps=3),
    ]
    f = _figures(events, sl_threshold_s=60)
    assert (f["csat_responses"], f["csat"], f["nps_responses"], f["nps"]) == (1, 1.0, 1, -100.0)
