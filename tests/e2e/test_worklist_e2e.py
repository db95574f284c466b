"""The abandoned-contacts worklist end to end: events posted to the ingest webhook, through Kafka
and the aggregator into the SQL `contacts` table, out of `/api/v1/contacts/abandoned`.

The answer must equal a recount of the posted events written from docs/metrics.md alone:
callbacks on another channel, a callback posted before the abandon it answers (out of order), a
duplicate post, a customer reached only after the callback window, a contact with no customer.
"""

from __future__ import annotations

import json
import statistics
from collections import defaultdict
from typing import Any

import httpx
import pytest

from services.privacy import pseudonymise, pseudonymise_id
from simulator.scenario import iso
from tests import oracle
from tests.clock import clock
from tests.conftest import PipelineFactory
from tests.harness import Pipeline, wait_until

pytestmark = pytest.mark.e2e

HASH_KEY = "e2e-worklist-hash-key-" + "w" * 20
CALLBACK_S = 3600
ENV = {"CCPULSE_HASH_KEY": HASH_KEY, "CCPULSE_CALLBACK_WINDOW_SECONDS": str(CALLBACK_S)}


def ev(eid: str, kind: str, t: float, contact: str, **fields: Any) -> dict[str, Any]:
    return {"id": eid, "type": kind, "time": iso(t), "contact": contact, **fields}


def offer(
    eid: str, t: float, contact: str, channel: str, queue: str, customer: str | None
) -> dict[str, Any]:
    extra = {"customer": customer} if customer else {}
    return ev(eid, "contact.offered", t, contact, channel=channel, queue=queue, **extra)


def abandon(c: str, t: float, customer: str | None, queue: str = "sales") -> list[dict[str, Any]]:
    return [
        offer(f"{c}-1", t, c, "voice", queue, customer),
        ev(f"{c}-2", "contact.queued", t + 5, c),
        ev(f"{c}-3", "contact.abandoned", t + 45, c),
    ]


def answered(c: str, t: float, customer: str, channel: str) -> list[dict[str, Any]]:
    return [
        offer(f"{c}-1", t, c, channel, "sales", customer),
        ev(f"{c}-2", "contact.answered", t + 20, c, agent="ann"),
        ev(f"{c}-3", "contact.completed", t + 200, c),
    ]


def scenario(now: float) -> list[list[dict[str, Any]]]:
    """The posts, in order (times are built around the clock the test runs under)."""
    t = now - 5 * 3600
    alice, bob, carol = "alice@example.com", "+44 20 7946 0001", "carol@example.com"
    callback_first = answered("wl-c2", t + 3600 + 45 + 900, bob, "email")  # before its abandon
    ivr = [
        offer("wl-a2-1", t + 3600, "wl-a2", "voice", "sales", bob),
        ev("wl-a2-2", "contact.ivr", t + 3600 + 3, "wl-a2", stage="menu"),
        ev("wl-a2-3", "contact.abandoned", t + 3600 + 45, "wl-a2"),
    ]
    timeout = [
        offer("wl-a3-1", t + 600, "wl-a3", "chat", "support", "dan@example.com"),
        ev("wl-a3-2", "contact.queued", t + 601, "wl-a3"),
        ev("wl-a3-3", "contact.timed_out", t + 1800, "wl-a3"),
    ]
    a1 = abandon("wl-a1", t, alice)
    c1 = answered("wl-c1", t + 45 + 300, alice, "chat")  # reached on another channel
    c1 += answered("wl-c1b", t + 1800, alice, "email")  # a second one: the first counts
    a4 = abandon("wl-a4", t + 2 * 3600, carol, queue="billing")
    late = answered("wl-c4", t + 2 * 3600 + 45 + CALLBACK_S + 60, carol, "voice")  # too late
    a5 = abandon("wl-a5", t + 3 * 3600, None)  # no customer
    old = abandon("wl-a0", now - 30 * 3600, alice)  # outside the 24h window
    return [callback_first, a1 + c1, ivr, timeout, a4 + late, a5, old, a1 + c1[:1]]


def recount(events: list[dict[str, Any]], start_ms: int, end_ms: int) -> dict[str, Any]:
    """The worklist from the events alone (docs/metrics.md), with ids as the ingest stores them."""
    key = HASH_KEY.encode()
    rows: list[dict[str, Any]] = []
    for raw, c in oracle.contacts(events).items():
        o = oracle.outcome(c)
        customer = c.last_value("customer")
        start = o.offered if o.offered is not None else min(oracle.ms(e) for e in c.events)
        at, kind, wait, stage = None, "", None, None
        if o.answered is None and o.timed_out is not None:
            at, kind, stage = o.timed_out, "timed_out", None
            begin = o.queued if o.queued is not None else o.offered
            wait = None if begin is None else max(0, at - begin)
        elif o.abandoned is not None:
            at, kind, wait, stage = o.abandoned, "abandoned", o.abandon_wait_ms, o.abandon_stage
        rows.append(
            {
                "contact": pseudonymise_id(raw, key),
                "channel": o.channel or "",
                "queue": o.queue or "",
                "customer": None if customer is None else pseudonymise(customer, key),
                "start": start,
                "at": at,
                "kind": kind,
                "wait": wait,
                "stage": stage,
            }
        )
    items: list[dict[str, Any]] = []
    for r in sorted(rows, key=lambda r: (r["at"] or 0, r["contact"])):
        if r["at"] is None or not start_ms <= r["at"] < end_ms:
            continue
        later = sorted(
            (x["start"], x["contact"], x["channel"])
            for x in rows
            if r["customer"] and x["customer"] == r["customer"] and x["start"] > r["at"]
        )
        reach = None
        if later and later[0][0] - r["at"] <= CALLBACK_S * 1000:
            s, c, ch = later[0]
            reach = {"contact": c, "channel": ch, "at_ms": s, "delay_seconds": (s - r["at"]) / 1000}
        items.append(
            {
                "contact": r["contact"],
                "channel": r["channel"],
                "queue": r["queue"],
                "customer": r["customer"],
                "customer_known": r["customer"] is not None,
                "outcome": r["kind"],
                "abandoned_ms": r["at"],
                "wait_ms": r["wait"],
                "abandon_stage": r["stage"],
                "reached": reach,
            }
        )
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for i in items:
        groups[(i["channel"], i["queue"])].append(i)
    queues = [{"channel": ch, "queue": q, **_figures(g)} for (ch, q), g in sorted(groups.items())]
    return {"total": _figures(items), "queues": queues, "contacts": items}


def _figures(items: list[dict[str, Any]]) -> dict[str, Any]:
    delays = [i["reached"]["delay_seconds"] for i in items if i["reached"]]
    known = sum(1 for i in items if i["customer_known"])
    return {
        "abandoned": len(items),
        "reached": len(delays),
        "not_reached": known - len(delays),
        "median_seconds_to_reach": statistics.median(delays) if delays else None,
    }


def worklist(p: Pipeline, **params: Any) -> dict[str, Any]:
    r = httpx.get(f"{p.api_url}/api/v1/contacts/abandoned", params=params, timeout=30)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def all_rolled(p: Pipeline, sent: list[dict[str, Any]], now: float) -> bool:
    """Every contact posted has its closed row (so a missing callback cannot pass for none)."""
    span = {"from": iso(now - 40 * 3600), "to": iso(now + 60), "format": "ndjson"}
    r = httpx.get(f"{p.api_url}/api/v1/contacts/export", params=span, timeout=30)
    rows = [json.loads(line) for line in r.text.splitlines()]
    closed = {row["contact"] for row in rows if row["outcome"] != "open"}
    return closed == {e["contact"] for e in sent}


def test_worklist_equals_the_recount(pipeline_factory: PipelineFactory) -> None:
    pipeline = pipeline_factory(ENV)
    now = clock.now()
    posts = scenario(now)
    sent = [e for batch in posts for e in batch]
    for batch in posts:
        assert pipeline.post(batch) == len(batch)
    pipeline.wait_applied(len(sent))
    wait_until(lambda: all_rolled(pipeline, sent, now), 90, "every contact's row", 0.5)
    last: list[dict[str, Any]] = []

    def settled() -> dict[str, Any] | None:
        got = worklist(pipeline, window="24h")
        want = recount(sent, got["start_s"] * 1000, got["end_s"] * 1000)
        last[:] = [got, want]
        return got if {k: got[k] for k in want} == want else None

    try:
        got = wait_until(settled, 90, "worklist", 1.0)
    except AssertionError as exc:
        raise AssertionError(f"api {last[0]}\nrecount {last[1]}") from exc
    total = got["total"]
    assert (total["abandoned"], total["reached"], total["not_reached"]) == (5, 2, 2)
    assert got["callback_window_seconds"] == CALLBACK_S
    by_id = {c["contact"]: c for c in got["contacts"]}
    assert by_id["wl-a1"]["reached"]["channel"] == "chat"
    assert by_id["wl-a2"]["reached"]["contact"] == "wl-c2"  # posted before its abandon
    assert by_id["wl-a2"]["abandon_stage"] == "menu"
    assert by_id["wl-a3"]["outcome"] == "timed_out" and by_id["wl-a3"]["reached"] is None
    assert by_id["wl-a4"]["reached"] is None  # reached after the callback window
    assert by_id["wl-a5"]["customer_known"] is False
    assert "wl-a0" not in by_id
    assert "example.com" not in str(got) and "7946" not in str(got)
    # filters narrow the list to the recount's, and the later contacts stay any channel's
    sales = worklist(pipeline, window="24h", channel="voice", queue="sales")
    assert [c["contact"] for c in sales["contacts"]] == ["wl-a1", "wl-a2", "wl-a5"]
    assert sales["contacts"][0]["reached"] == by_id["wl-a1"]["reached"]
