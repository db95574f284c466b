"""`Store.payload` against its plain definition: the step's lists built item by item from the
plan, as they were before they were built by slices and per-step key caches (store.py), and
`Plan.all_deltas` against a full copy merged field by field. A shortcut that reorders, drops or
sums differently fails here before it changes what apply.lua writes."""

from __future__ import annotations

import copy
import json
from datetime import datetime

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from redis.asyncio import Redis

from aggregator import engine
from aggregator.contributions import Contribution
from aggregator.facts import AgentFacts, ContactFacts
from aggregator.repeats import GroupSheet
from aggregator.store import Payload, Step, Store, _bucket_fields_by_rollup, _pairs
from services import keys
from simulator.scenario import Day, generate, shuffle_within_contacts

START = 1_760_000_000.0


def _plans(seed: int, batch: int) -> list[tuple[engine.Plan, float]]:
    """Each batch's plan of a shuffled, duplicated simulated day, planned on the sheets before."""
    events = generate(Day(seed=seed, busy_factor=2.0), START, 300, 0.2)
    delivered = shuffle_within_contacts(events, seed, 0.1)
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
        facts.update(plan.facts)
        agents.update(plan.agents)
        groups.update(plan.groups)
        plans.append((plan, now))
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


def _check_payload(
    names: list[str], payload: Payload, step: Step, store: Store, now_s: float
) -> None:
    plan = step.plan
    expires = str(store.facts_expiry_ms(now_s))
    contacts = list(plan.facts)
    sheets = [orjson.dumps(s.to_json()).decode() for s in plan.facts.values()]
    assert payload.facts == _interleaved(contacts, sheets)
    assert payload.expiry == _interleaved([expires] * len(contacts), contacts)
    assert payload.contacts == _interleaved([str(step.last)] * len(contacts), contacts)
    assert payload.last == str(step.last)
    assert [(names[a - 1], entry, ms, names[v - 1]) for a, entry, ms, v in payload.agent_log] == [
        (
            keys.partition_agent_log_key(step.partition, agent),
            f"{event_id}|{state}",
            str(ms),
            keys.partition_agent_log_version_key(step.partition, agent),
        )
        for agent, event_id, state, ms in plan.agent_log
    ]
    buckets, _ = _bucket_fields_by_rollup(_merged(plan), now_s, store.bucket_ttl_s)
    want = {
        keys.partition_counter_key(step.partition, res, start): {
            name: str(value) for name, value in fields.items()
        }
        for (res, start), fields in buckets.items()
    }
    got = {names[c[0] - 1]: dict(zip(c[2][::2], c[2][1::2], strict=True)) for c in payload.counters}
    assert got == want
    assert len(names) == len(set(names))


@pytest.mark.parametrize(("seed", "batch"), [(3, 40), (11, 173)])
def test_payload_is_its_plain_definition(seed: int, batch: int) -> None:
    store = Store(Redis(), facts_ttl_s=3 * 86400, bucket_ttl_s=30 * 86400)
    plans = _plans(seed, batch)
    assert any(p.group_deltas for p, _ in plans) and any(p.agent_log for p, _ in plans)
    for n, (plan, now_s) in enumerate(plans):
        step = Step("contacts", 2, n - 1, n, plan)
        names, payload = store.payload(step, now_s)
        _check_payload(names, payload, step, store, now_s)


@pytest.mark.parametrize(("seed", "batch"), [(5, 60)])
def test_all_deltas_is_the_full_merge_and_leaves_the_plan(seed: int, batch: int) -> None:
    for plan, _ in _plans(seed, batch):
        before = copy.deepcopy(plan.deltas)
        got = plan.all_deltas()
        assert got == _merged(plan)
        assert [list(f) for f in got.values()] == [list(f) for f in _merged(plan).values()]
        assert list(got) == list(_merged(plan))
        assert plan.deltas == before


@given(st.lists(st.tuples(st.text(max_size=3), st.text(max_size=3)), max_size=20))
@settings(max_examples=100, deadline=None)
def test_pairs_interleaves(rows: list[tuple[str, str]]) -> None:
    firsts, seconds = [a for a, _ in rows], [b for _, b in rows]
    assert _pairs(firsts, iter(seconds)) == _interleaved(firsts, seconds)
