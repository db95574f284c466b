"""The contacts table's row is a pure function of the fact sheet: the same row for any order and
any duplicates of a contact's events, and rows that add up to the counters the metrics read."""

from __future__ import annotations

import random
from datetime import datetime
from typing import Any

import pytest

from aggregator import contributions as contrib
from aggregator.contact_rows import contact_row, outcome
from aggregator.facts import ContactFacts, fold
from services import kpis
from services.contract import ContactEvent
from simulator.scenario import Day, generate

T0 = 1_760_000_000_000  # epoch ms of a fixed instant; times below are offsets from it
NOW_S = 1_760_100_000


def event(n: int, kind: str, at_s: float, **fields: Any) -> dict[str, Any]:
    when = datetime.fromtimestamp((T0 + at_s * 1000) / 1000).astimezone()
    return {"id": f"e{n}", "type": kind, "time": when.isoformat(), "contact": "c1", **fields}


def sheet(events: list[dict[str, Any]]) -> ContactFacts:
    facts = ContactFacts(contact=events[0]["contact"])
    for raw in events:
        fold(facts, ContactEvent.model_validate(raw))
    return facts


ANSWERED = [
    event(1, "contact.offered", 0, channel="voice", queue="sales", customer="h:" + "a" * 32),
    event(2, "contact.ivr", 2, stage="menu"),
    event(3, "contact.queued", 5, queue="sales"),
    event(4, "contact.answered", 35, agent="ann"),
    event(5, "contact.completed", 335),
    event(6, "contact.resolved", 340, first_contact=True),
    event(7, "survey.response", 400, csat=5, nps=9),
]
ABANDONED_IN_QUEUE = [
    event(1, "contact.offered", 0, channel="chat", queue="support"),
    event(2, "contact.queued", 10, stage="queue"),
    event(3, "contact.abandoned", 70, stage="queue"),
]
ABANDONED_IN_IVR = [
    event(1, "contact.offered", 0, channel="voice", queue="sales"),
    event(2, "contact.ivr", 3, stage="menu"),
    event(3, "contact.abandoned", 9),
]
TIMED_OUT = [
    event(1, "contact.offered", 0, channel="email", queue="mail"),
    event(2, "contact.queued", 1),
    event(3, "contact.timed_out", 3601),
]
ABANDON_BEFORE_OFFER = [event(1, "contact.abandoned", 9, channel="voice")]

CASES = [
    (ANSWERED, {"outcome": "answered", "wait_ms": 30_000, "handle_ms": 300_000, "agent": "ann"}),
    (ANSWERED, {"first_contact": True, "csat": 5, "nps": 9, "abandon_stage": None}),
    (ANSWERED, {"customer": "h:" + "a" * 32, "queued_ms": T0 + 5000, "resolved_ms": T0 + 340_000}),
    (ABANDONED_IN_QUEUE, {"outcome": "abandoned", "wait_ms": 60_000, "abandon_stage": "queue"}),
    (ABANDONED_IN_QUEUE, {"channel": "chat", "queue": "support", "agent": "", "handle_ms": None}),
    (ABANDONED_IN_IVR, {"outcome": "abandoned", "wait_ms": 9000, "abandon_stage": "menu"}),
    (TIMED_OUT, {"outcome": "timed_out", "wait_ms": 3_600_000, "abandon_stage": None}),
    # not counted as abandoned until the offer is known (the metrics' rule): still open
    (ABANDON_BEFORE_OFFER, {"outcome": "open", "start_ms": T0 + 9000, "offered_ms": None}),
]


@pytest.mark.parametrize(("events", "want"), CASES)
def test_row_of_a_sheet(events: list[dict[str, Any]], want: dict[str, Any]) -> None:
    row = contact_row(sheet(events), NOW_S)
    assert row is not None
    assert {name: row[name] for name in want} == want
    assert row["updated_s"] == NOW_S and row["contact"] == "c1"


@pytest.mark.parametrize("seed", range(20))
def test_any_order_and_duplicates_give_the_same_row(seed: int) -> None:
    rng = random.Random(seed)
    for events in (ANSWERED, ABANDONED_IN_QUEUE, ABANDONED_IN_IVR, TIMED_OUT):
        shuffled = events + rng.sample(events, rng.randint(1, len(events)))
        rng.shuffle(shuffled)
        assert contact_row(sheet(shuffled), NOW_S) == contact_row(sheet(events), NOW_S)


def sheets_of(events: list[dict[str, Any]]) -> list[ContactFacts]:
    by_contact: dict[str, ContactFacts] = {}
    for raw in events:
        if raw.get("contact") is None:
            continue
        facts = by_contact.setdefault(raw["contact"], ContactFacts(contact=raw["contact"]))
        fold(facts, ContactEvent.model_validate(raw))
    return list(by_contact.values())


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_rows_add_up_to_the_counters(seed: int) -> None:
    """Outcomes, waits and handle times of the rows sum to the counters the figures read."""
    events = generate(Day(seed=seed, busy_factor=1.5, prefix=f"s{seed}"), T0 / 1000, 400, 0.2)
    counters: dict[str, int] = {}
    rows = []
    for facts in sheets_of(events):
        for (_, scope), fields in contrib.contribution(facts).items():
            if scope.startswith("ch|"):
                for name, value in fields.items():
                    counters[name] = counters.get(name, 0) + value
        row = contact_row(facts, NOW_S)
        assert row is not None and row["outcome"] == outcome(facts)
        rows.append(row)

    def total(column: str, result: str) -> int:
        return sum(r[column] or 0 for r in rows if r["outcome"] == result)

    answered = [r for r in rows if r["outcome"] == "answered"]
    assert len(answered) == counters.get(kpis.ANSWERED, 0) + counters.get(kpis.ANSWERED_UNTIMED, 0)
    assert sum(r["outcome"] == "abandoned" for r in rows) == counters.get(kpis.ABANDONED, 0) > 0
    assert sum(r["offered_ms"] is not None for r in rows) == counters[kpis.OFFERED]
    assert total("wait_ms", "answered") == counters[kpis.ANSWER_WAIT_MS]
    assert total("wait_ms", "abandoned") == counters[kpis.ABANDON_WAIT_MS]
    assert sum(r["handle_ms"] or 0 for r in rows) == counters[kpis.HANDLE_MS]
    assert sum(r["csat"] is not None for r in rows) == counters.get(kpis.CSAT_RESPONSES, 0)
