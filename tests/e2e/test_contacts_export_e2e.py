"""Per-contact history end to end: events posted to the ingest webhook, through Kafka and the
aggregator into the SQL `contacts` table, out of `/api/v1/contacts/export` over HTTP.

The rows must equal a recount of the events sent (tests/oracle.py's per-contact outcome, with
ids pseudonymised as the ingest does), one row per contact, including a contact whose answer
arrives before its offer and events posted twice. Both formats carry the same rows.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import httpx
import pytest

from api.contacts_export import EXPORT_COLUMNS
from services.privacy import pseudonymise, pseudonymise_id
from simulator.scenario import Day, generate, iso
from tests import oracle
from tests.clock import clock
from tests.conftest import PipelineFactory
from tests.harness import Pipeline, wait_until

pytestmark = pytest.mark.e2e

HASH_KEY = "e2e-contacts-hash-key-" + "c" * 20
PHONE_CONTACT = "+44 20 7946 0321"  # a contact id that is personal data: stored as its hash


def ev(eid: str, kind: str, t: float, contact: str, **fields: Any) -> dict[str, Any]:
    return {"id": eid, "type": kind, "time": iso(t), "contact": contact, **fields}


def out_of_order(now: float) -> list[list[dict[str, Any]]]:
    """Posts in this order: the answer first, its offer and queue entry after, then the end."""
    t, c = now - 1800, "ooo-1"
    offer = {"channel": "voice", "queue": "sales", "customer": "ann@example.com"}
    return [
        [ev("o-3", "contact.answered", t + 40, c, agent="ann")],
        [ev("o-1", "contact.offered", t, c, **offer), ev("o-2", "contact.queued", t + 5, c)],
        [ev("o-4", "contact.completed", t + 100, c)],
    ]


def personal_contact(now: float) -> list[dict[str, Any]]:
    """A contact id and a customer that are phone numbers: both land as keyed hashes."""
    t, c = now - 1500, PHONE_CONTACT
    offer = {"channel": "voice", "queue": "sales", "customer": "+44 20 7946 0321"}
    return [
        ev("p-1", "contact.offered", t, c, **offer),
        ev("p-2", "contact.ivr", t + 3, c, stage="menu"),
        ev("p-3", "contact.abandoned", t + 20, c),
    ]


def recount(events: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The export's rows from the events alone, by docs/contacts.md (no aggregator code)."""
    key = HASH_KEY.encode()
    out: dict[str, dict[str, Any]] = {}
    for raw_id, c in oracle.contacts(events).items():
        o = oracle.outcome(c)
        customer = c.last_value("customer")
        if o.answered is not None:
            result, wait = "answered", o.wait_ms
        elif o.timed_out is not None:
            result, wait = "timed_out", _span(o.queued or o.offered, o.timed_out)
        elif o.abandoned is not None:
            result, wait = "abandoned", o.abandon_wait_ms
        elif o.completed is not None or o.resolved is not None:
            result, wait = "completed", None
        else:
            result, wait = "open", None
        contact = pseudonymise_id(raw_id, key)
        agent = o.agent
        out[contact] = {
            "contact": contact,
            "start_ms": o.offered if o.offered is not None else min(oracle.ms(e) for e in c.events),
            "channel": o.channel or "",
            "queue": o.queue or "",
            "agent": "" if agent is None else pseudonymise_id(agent, key),
            "customer": "" if customer is None else pseudonymise(customer, key),
            "offered_ms": o.offered,
            "queued_ms": o.queued,
            "answered_ms": o.answered,
            "abandoned_ms": c.first("contact.abandoned"),
            "timed_out_ms": c.first("contact.timed_out"),
            "completed_ms": o.completed,
            "resolved_ms": o.resolved,
            "abandon_stage": o.abandon_stage if result == "abandoned" else None,
            "wait_ms": wait,
            "handle_ms": o.handle_ms,
            "outcome": result,
            "first_contact": c.last_value("first_contact", ("contact.resolved",)),
            "csat": None if o.csat is None else o.csat[1],
            "nps": None if o.nps is None else o.nps[1],
            "issue": c.last_value("issue"),
            "stages": json.dumps({s: t for t, s in o.stages}, separators=(",", ":"))
            if o.stages
            else None,
        }
    return out


def _span(start: int | None, end: int | None) -> int | None:
    return max(0, end - start) if start is not None and end is not None else None


def export(p: Pipeline, fmt: str, **params: Any) -> str:
    r = httpx.get(
        f"{p.api_url}/api/v1/contacts/export", params={**params, "format": fmt}, timeout=60
    )
    assert r.status_code == 200, r.text
    return r.text


def ndjson_rows(p: Pipeline, **params: Any) -> list[dict[str, Any]]:
    return [json.loads(line) for line in export(p, "ndjson", **params).splitlines()]


def test_exported_rows_equal_the_recount(pipeline_factory: PipelineFactory) -> None:
    pipeline = pipeline_factory({"CCPULSE_HASH_KEY": HASH_KEY})
    now = clock.now()
    day = Day(seed=81, busy_factor=1.5, prefix="cx")
    events = [e for e in generate(day, now - 3 * 3600, 300, 300 / 9000) if e["time"] < iso(now)]
    posts = [events[: len(events) // 2], events[len(events) // 2 :], *out_of_order(now)]
    posts += [personal_contact(now), events[:50]]  # the last post repeats events: duplicates
    sent = [e for batch in posts for e in batch]
    for batch in posts:
        assert pipeline.post(batch) == len(batch)
    pipeline.wait_applied(len(sent))
    want = recount(sent)
    span = {"from": iso(now - 4 * 3600), "to": iso(now + 60)}
    last: list[int] = []

    def settled() -> list[dict[str, Any]] | None:
        got = ndjson_rows(pipeline, **span)
        last.append(len(got))
        return got if {r["contact"]: r for r in got} == want else None

    try:
        got = wait_until(settled, 90, "contact rows", 1.0)
    except AssertionError as exc:
        rows = {r["contact"]: r for r in ndjson_rows(pipeline, **span)}
        diff = [(c, rows.get(c), w) for c, w in want.items() if rows.get(c) != w][:3]
        problem = f"rows {last[-3:]}, recount {len(want)}; first differences {diff}"
        raise AssertionError(problem) from exc
    assert len(got) == len(want) == len({e["contact"] for e in sent if e.get("contact")})
    assert [list(r) for r in got] == [list(EXPORT_COLUMNS)] * len(got)  # stable column order
    assert [(r["start_ms"], r["contact"]) for r in got] == sorted(
        (r["start_ms"], r["contact"]) for r in got
    )
    ooo = want["ooo-1"]
    assert (ooo["outcome"], ooo["wait_ms"], ooo["handle_ms"]) == ("answered", 35_000, 60_000)
    assert PHONE_CONTACT not in json.dumps(got) and "example.com" not in json.dumps(got)
    assert want[pseudonymise_id(PHONE_CONTACT, HASH_KEY.encode())]["abandon_stage"] == "menu"
    # CSV: the same rows, same order; filters narrow them to the recount's
    table = list(csv.DictReader(io.StringIO(export(pipeline, "csv", **span))))
    assert [t["contact"] for t in table] == [r["contact"] for r in got]
    assert [t["wait_ms"] for t in table] == [_cell(r["wait_ms"]) for r in got]
    voice_sales = ndjson_rows(pipeline, **span, channel="voice", queue="sales")
    assert sorted(r["contact"] for r in voice_sales) == sorted(
        c for c, r in want.items() if (r["channel"], r["queue"]) == ("voice", "sales")
    )


def _cell(value: Any) -> str:
    return "" if value is None else str(value)
