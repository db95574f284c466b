"""The apply side's shortcuts against their plain definitions: `Store.payload`'s lists as built
item by item from the plan (they are built by per-step key caches; the sheets and slices, cut
from ARGV[2] as apply.lua cuts them), the sheets' and slices' JSON as first written,
`Plan.all_deltas` against a full copy merged field by field, and the plan's gauge moves, totals
and partial counts against the functions they skip calls of. A shortcut that reorders, drops or
sums differently fails here before it changes what apply.lua writes."""

from __future__ import annotations

import copy
import json
import random
from datetime import datetime
from typing import Any

import orjson
import pytest
from msgspec import structs
from redis.asyncio import Redis

from aggregator import contributions as contrib
from aggregator import engine, totals
from aggregator.contributions import Contribution
from aggregator.facts import SHEET_ENCODER, AgentFacts, ContactFacts, Register
from aggregator.repeats import GroupSheet
from aggregator.store import Payload, Step, Store, _bucket_fields_by_rollup
from services import keys
from services.contract import Event
from simulator.scenario import Day, generate, shuffle_within_contacts

START = 1_760_000_000.0


Batch = tuple[list[Event], dict[str, ContactFacts], engine.Plan, float]  # events, old sheets


def _plans(seed: int, batch: int, lose: float = 0.0) -> list[Batch]:
    """Each batch of a shuffled, duplicated simulated day, planned on the sheets before; with
    `lose`, that share of the offers and queue entries never arrives and every event names its
    channel (answers with no wait, abandons with no offer: partial counts)."""
    events = generate(Day(seed=seed, busy_factor=2.0), START, 300, 0.2)
    delivered = shuffle_within_contacts(events, seed, 0.1)
    if lose:
        rng = random.Random(seed)
        channels = {e["contact"]: e["channel"] for e in events if e.get("channel")}
        waits = {"contact.offered", "contact.queued"}
        delivered = [
            {**e, "channel": channels[e["contact"]]} if e.get("contact") in channels else e
            for e in delivered
            if e["type"] not in waits or rng.random() >= lose
        ]
    now = max(datetime.fromisoformat(e["time"]).timestamp() for e in events) + 1
    facts: dict[str, ContactFacts] = {}
    agents: dict[str, AgentFacts] = {}
    groups: dict[str, GroupSheet] = {}
    plans = []
    for i in range(0, len(delivered), batch):
        rows = delivered[i : i + batch]
        records = [engine.Record(0, n, json.dumps(e).encode()) for n, e in enumerate(rows)]
        screened, _ = engine.screen(records, now, 30 * 86400)
        needed = engine.groups_needed(screened, facts)
        old_groups = {g: groups.get(g) for g in needed}
        plan = engine.plan(screened, dict(facts), dict(agents), old_groups)
        plans.append((screened, dict(facts), plan, now))
        facts.update(plan.facts)
        agents.update(plan.agents)
        groups.update(plan.groups)
    return plans


def _merged(plan: engine.Plan) -> Contribution:
    out = {cell: dict(fields) for cell, fields in plan.deltas.items()}
    for delta in plan.group_deltas.values():
        for cell, fields in delta.items():
            target = out.setdefault(cell, {})
            for name, value in fields.items():
                target[name] = target.get(name, 0) + value
    return out


def _interleaved(firsts: list[str], seconds: list[str]) -> list[str]:
    return [item for pair in zip(firsts, seconds, strict=True) for item in pair]


def _cut(blob: bytes, names: list[str], lengths: list[int], at: int) -> tuple[list[str], int]:
    """apply.lua's `cut`: name, text, ... from `blob` by byte lengths; and where it stopped."""
    out = []
    for name, length in zip(names, lengths, strict=True):
        out += (name, blob[at : at + length].decode())
        at += length
    return out, at


def _check_payload(
    names: list[str], payload: Payload, blob: bytes, step: Step, store: Store, now_s: float
) -> None:
    plan = step.plan
    contacts = list(plan.facts)
    sheets = [_plain_sheet_json(s) for s in plan.facts.values()]
    agents = list(plan.agents)
    slices = [orjson.dumps(s.to_json()).decode() for s in plan.agents.values()]
    # What the script writes, rebuilt as apply.lua rebuilds it from ARGV[1] and ARGV[2].
    facts, at = _cut(blob, payload.facts, payload.fact_bytes, 0)
    assert facts[0::2] == contacts
    assert [orjson.loads(text) for text in facts[1::2]] == sheets
    agent_slices, at = _cut(blob, payload.agents, payload.agent_bytes, at)
    assert agent_slices == _interleaved(agents, slices)
    assert at == len(blob)
    assert payload.expires == str(store.facts_expiry_ms(now_s))
    assert payload.last == str(step.last)
    # One ZADD, trim, expiry and version per agent: each log's changes in the plan's order, as
    # the script once wrote them one by one (a log's writes touch no other log).
    one_by_one: dict[tuple[str, str], list[str]] = {}
    for agent, event_id, state, ms in plan.agent_log:
        log = keys.partition_agent_log_key(step.partition, agent)
        version = keys.partition_agent_log_version_key(step.partition, agent)
        one_by_one.setdefault((log, version), []).extend((str(ms), f"{event_id}|{state}"))
    grouped = {(names[a - 1], names[v - 1]): entries for a, v, entries in payload.agent_log}
    assert len(grouped) == len(payload.agent_log)
    assert list(grouped.items()) == list(one_by_one.items())
    buckets, _ = _bucket_fields_by_rollup(_merged(plan), now_s, store.bucket_ttl_s)
    want = {
        keys.partition_counter_key(step.partition, res, start): dict(fields)
        for (res, start), fields in buckets.items()
    }
    got = {names[c[0] - 1]: c[2] for c in payload.counters}
    assert got == want
    # Deltas travel as JSON integers (counter_write.lua): never a bool, float or string.
    assert all(type(v) is int for c in payload.counters for v in c[2].values())
    assert len(names) == len(set(names))


@pytest.mark.parametrize(("seed", "batch"), [(3, 40), (11, 173)])
def test_payload_is_its_plain_definition(seed: int, batch: int) -> None:
    store = Store(Redis(), facts_ttl_s=3 * 86400, bucket_ttl_s=30 * 86400)
    plans = _plans(seed, batch)
    assert any(p.group_deltas for _, _, p, _ in plans) and any(p.agent_log for _, _, p, _ in plans)
    for n, (_, _, plan, now_s) in enumerate(plans):
        step = Step("contacts", 2, n - 1, n, plan)
        names, payload, blob = store.payload(step, now_s)
        _check_payload(names, payload, blob, step, store, now_s)


@pytest.mark.parametrize(("seed", "batch"), [(5, 60)])
def test_all_deltas_is_the_full_merge_and_leaves_the_plan(seed: int, batch: int) -> None:
    for _, _, plan, _ in _plans(seed, batch):
        before = copy.deepcopy(plan.deltas)
        got = plan.all_deltas()
        assert got == _merged(plan)
        assert [list(f) for f in got.values()] == [list(f) for f in _merged(plan).values()]
        assert list(got) == list(_merged(plan))
        assert plan.deltas == before


@pytest.mark.parametrize(("seed", "batch", "lose"), [(3, 40, 0.0), (13, 250, 0.3)])
def test_plan_bookkeeping_is_its_plain_definition(seed: int, batch: int, lose: float) -> None:
    """Gauge moves from `contributions.gauges` compared whole, totals from `totals.counts`
    dicts, partial counts from `partial_reason` asked of every event."""
    plans = _plans(seed, batch, lose)
    assert any(p.totals for _, _, p, _ in plans) and any(p.gauges for _, _, p, _ in plans)
    reasons = {reason for _, _, p, _ in plans for reason in p.partial}
    assert not lose or {"answer_without_wait", "abandon_without_offer"} <= reasons
    for events, old_facts, plan, _ in plans:
        moves, steps = [], {}
        for contact, sheet in plan.facts.items():
            old = old_facts.get(contact)
            was = contrib.gauges(old) if old is not None else contrib.Gauges((), None, None)
            if was != contrib.gauges(sheet):
                moves.append(engine.GaugeMove(contact, was, contrib.gauges(sheet)))
            _plain_steps(steps, totals.counts(old), totals.counts(sheet))
        assert plan.gauges == moves
        assert plan.totals == steps
        partial: dict[str, int] = {}
        for event in events:
            sheet = plan.facts.get(event.contact) if event.contact is not None else None
            reason = engine.partial_reason(event, sheet) if sheet is not None else None
            if reason is not None:
                partial[reason] = partial.get(reason, 0) + 1
        assert plan.partial == partial


def _plain_steps(
    into: totals.Steps, before: dict[tuple[str, str], int], after: dict[tuple[str, str], int]
) -> None:
    for scope, name in before.keys() | after.keys():
        change = after.get((scope, name), 0) - before.get((scope, name), 0)
        if change:
            target = (scope, name) if change > 0 else (scope, name + totals.CORRECTED)
            into[target] = into.get(target, 0) + abs(change)


def _plain_sheet_json(sheet: ContactFacts) -> dict[str, Any]:
    """A stored sheet as first written: a getattr per field, None and empty mappings left
    out."""
    out: dict[str, Any] = {"contact": sheet.contact}
    for name in ("channel", "queue", "agent", "customer", "issue", "answered_agent"):
        reg = getattr(sheet, name)
        if reg is not None:
            out[name] = {"value": reg.value, "ms": reg.ms, "id": reg.id}
    for name in ("abandon_stage", "first_contact", "csat", "nps"):
        reg = getattr(sheet, name)
        if reg is not None:
            out[name] = {"value": reg.value, "ms": reg.ms, "id": reg.id}
    for name in ("offered_ms", "queued_ms", "answered_ms", "abandoned_ms", "timed_out_ms"):
        if getattr(sheet, name) is not None:
            out[name] = getattr(sheet, name)
    for name in ("completed_ms", "resolved_ms"):
        if getattr(sheet, name) is not None:
            out[name] = getattr(sheet, name)
    for name in ("stages", "transfers"):
        if getattr(sheet, name):
            out[name] = dict(getattr(sheet, name))
    if sheet.escalations:
        out["escalations"] = {k: structs.asdict(r) for k, r in sheet.escalations.items()}
    return out


@pytest.mark.parametrize(("seed", "batch", "lose"), [(3, 40, 0.0), (13, 250, 0.3)])
def test_sheets_and_slices_dump_as_their_plain_definitions(
    seed: int, batch: int, lose: float
) -> None:
    """The text apply.lua stores: a sheet as its plain dict (key order is the encoder's: readers
    parse it) that reads back as the same sheet; a slice as its plain dict dumped."""
    plans = _plans(seed, batch, lose)
    sheets = [s for _, _, p, _ in plans for s in p.facts.values()]
    slices = [s for _, _, p, _ in plans for s in p.agents.values()]
    assert any(s.escalations for s in sheets) and any(s.transfers for s in sheets)
    assert any(s.csat for s in sheets) and any(s.abandon_stage for s in sheets)
    assert any(s.queues for s in slices)
    slices += [AgentFacts("ann"), AgentFacts("bo", Register("not_ready", 5, "e1"), {}, "lunch")]
    for sheet in sheets:
        stored = SHEET_ENCODER.encode(sheet)
        assert orjson.loads(stored) == _plain_sheet_json(sheet) == sheet.to_json()
        assert ContactFacts.from_json(orjson.loads(stored)) == sheet
    for slice_ in slices:
        want = {
            "agent": slice_.agent,
            "state": structs.asdict(slice_.state) if slice_.state else None,
        }
        if slice_.queues:
            want["queues"] = slice_.queues
        if slice_.reason is not None:
            want["reason"] = slice_.reason
        assert orjson.dumps(slice_.to_json()) == orjson.dumps(want)


def _plain_gauge_ops(plan: engine.Plan, partition: int) -> list[tuple[str, str, str, str]]:
    """The gauge moves one by one, in the plan's order: add|rem, set, contact, since ms."""
    ops = []
    for move in plan.gauges:
        for scope in move.old.scopes:
            ops.append(("rem", keys.partition_waiting_key(partition, scope), move.contact, ""))
            ops.append(("rem", keys.partition_active_key(partition, scope), move.contact, ""))
        for scope in move.new.scopes:
            for name, since in (
                (keys.partition_waiting_key(partition, scope), move.new.waiting_since_ms),
                (keys.partition_active_key(partition, scope), move.new.active_since_ms),
            ):
                if since is not None:
                    ops.append(("add", name, move.contact, str(since)))
    return ops


@pytest.mark.parametrize(("seed", "batch", "lose"), [(3, 40, 0.0), (13, 250, 0.3)])
def test_gauge_commands_leave_the_sets_as_one_by_one_moves(
    seed: int, batch: int, lose: float
) -> None:
    """apply.lua's one ZREM and one ZADD per set (all removals first) against each move's
    removals and additions one by one, on sets that carry over from batch to batch."""
    store = Store(Redis(), facts_ttl_s=3 * 86400, bucket_ttl_s=30 * 86400)
    one_by_one: dict[str, dict[str, str]] = {}
    grouped: dict[str, dict[str, str]] = {}
    readded = batched = 0
    for n, (_, _, plan, now_s) in enumerate(_plans(seed, batch, lose)):
        for kind, name, contact, since in _plain_gauge_ops(plan, 2):
            if kind == "add":
                one_by_one.setdefault(name, {})[contact] = since
            else:
                one_by_one.get(name, {}).pop(contact, None)
        names, payload, _ = store.payload(Step("contacts", 2, n - 1, n, plan), now_s)
        removed: set[tuple[str, str]] = set()
        for kind, index, items in payload.gauges:
            name = names[index - 1]
            if kind == "rem":
                for contact in items:
                    grouped.get(name, {}).pop(contact, None)
                removed |= {(name, contact) for contact in items}
            else:
                for since, contact in zip(items[0::2], items[1::2], strict=True):
                    grouped.setdefault(name, {})[contact] = since
                readded += len(removed & {(name, contact) for contact in items[1::2]})
            batched += len(items) > 2
        assert grouped == one_by_one
    assert readded and batched  # contacts removed and added back to a set; sets with several
