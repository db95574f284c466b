"""`/metrics` reads Redis directly; its figures equal the live `today` document's (the path it
used to convert), on partition state written as the aggregator writes it, in a real Redis."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from prometheus_client.parser import text_string_to_metric_families
from redis.asyncio import Redis

from api.live_reader import LiveReader, resolve_window
from api.metrics import render
from api.snapshot import build
from ccpulse.stack import EmbeddedRedis
from services import keys, kpis
from services.settings import Settings
from tests.clock import clock

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def _write_state(redis: Redis, now_s: float, settings: Settings) -> None:
    """Two partitions sharing scopes and agents: counters in minute and hour buckets of today,
    waiting and open contacts, agent slices and state logs on both partitions."""
    today = resolve_window("today", now_s, settings)
    minute = keys.bucket_start_s(now_s, "m") - 120
    minute = max(minute, today.start_s)
    await redis.set(keys.PARTITIONS, 2)
    scopes = ["ch|voice", "q|voice|sales", "q|chat|sales", "ch|chat", "ag|ann", "ag|bo"]
    for p in range(2):
        fields = {
            keys.counter_field("ch|voice", kpis.OFFERED): 5 + p,
            keys.counter_field("ch|voice", kpis.QUEUED): 4,
            keys.counter_field("ch|voice", kpis.ANSWERED): 3,
            keys.counter_field("ch|voice", kpis.ANSWER_WAIT_MS): 41_000 + p,
            keys.counter_field("ch|voice", f"{kpis.ANSWER_HIST}1"): 2,
            keys.counter_field("ch|voice", f"{kpis.ANSWER_HIST}4"): 1,
            keys.counter_field("ch|voice", kpis.ABANDONED): 1,
            keys.counter_field("ch|voice", kpis.ABANDONED_QUEUE): 1,
            keys.counter_field("ch|voice", f"{kpis.QUEUE_ABANDON_HIST}2"): 1,
            keys.counter_field("ch|voice", f"{kpis.ABANDON_STAGE}queue"): 1,
            keys.counter_field("ch|voice", f"{kpis.STAGE_ENTERED}menu"): 5,
            keys.counter_field("ch|voice", f"{kpis.STAGE_RANK}menu"): 5,
            keys.counter_field("q|voice|sales", kpis.OFFERED): 4,
            keys.counter_field("q|voice|sales", kpis.ANSWERED): 3,
            keys.counter_field("q|voice|sales", f"{kpis.HANDLE_HIST}5"): 2 + p,
            keys.counter_field("q|voice|sales", kpis.HANDLE_MS): 300_000,
            keys.counter_field("q|voice|sales", kpis.HANDLED): 2 + p,
            keys.counter_field("q|chat|sales", kpis.OFFERED): 1,
            keys.counter_field("ch|chat", kpis.OFFERED): 1,
            keys.counter_field("ag|ann", kpis.ANSWERED): 2,
            keys.counter_field("ag|ann", kpis.HANDLED): 2,
            keys.counter_field("ag|ann", kpis.HANDLE_MS): 250_000 + p,
            keys.counter_field("ag|bo", kpis.ANSWERED): 1 + p,
        }
        for res in ("m", "h"):
            key = keys.partition_counter_key(p, res, keys.bucket_start_s(minute, res))
            await redis.hset(key, mapping=fields)
        await redis.zadd(keys.partition_scopes_key(p), {s: minute for s in scopes})
        for scope in ("ch|voice", "q|voice|sales"):
            waiting = {f"c{p}{n}": (now_s - 30 * (n + 1 + p)) * 1000 for n in range(2)}
            await redis.zadd(keys.partition_waiting_key(p, scope), waiting)
            await redis.zadd(keys.partition_active_key(p, scope), {**waiting, f"o{p}": now_s})
        since = int((minute - 600 * (p + 1)) * 1000)
        slices = {
            "ann": {
                "agent": "ann",
                "state": {"value": "busy", "ms": since, "id": f"e{p}"},
                "queues": {"sales": since},
            },
            "cy": {"agent": "cy", "state": {"value": "available", "ms": since + p, "id": "x"}},
        }
        await redis.hset(
            keys.partition_agents_key(p), mapping={a: json.dumps(s) for a, s in slices.items()}
        )
        for agent, state in (("ann", "busy"), ("cy", "available")):
            log = {f"e{p}|{state}": since, f"f{p}|not_ready": since + 200_000}
            await redis.zadd(keys.partition_agent_log_key(p, agent), log)


def _samples(text: str) -> Samples:
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


async def _read(url: str, settings: Settings, now_s: float) -> tuple[Samples, dict[str, Any]]:
    redis = Redis.from_url(url)
    try:
        await _write_state(redis, now_s, settings)
        reader = LiveReader(redis, settings)
        text = (await render(reader, now_s)).decode()
        doc = await build(reader, resolve_window("today", now_s, settings), now_s)
        return _samples(text), doc
    finally:
        await redis.aclose()


def test_metrics_equal_the_live_documents_figures(clean_redis: EmbeddedRedis) -> None:
    settings = Settings(auth="off", metrics_per_agent=True, metrics_agent_cap=2)
    now = clock.now()
    samples, doc = asyncio.run(_read(clean_redis.url, settings, now))

    def got(name: str, **labels: str) -> float | None:
        return samples.get((name, frozenset(labels.items())))

    scopes = [(ch, "", fig) for ch, fig in doc["channels"].items()]
    scopes += [(fig["channel"], name, fig) for name, fig in doc["queues"].items()]
    assert {(ch, q) for ch, q, _ in scopes} == {
        ("voice", ""),
        ("chat", ""),
        ("chat", "sales"),
        ("voice", "sales (voice)"),
    }
    for channel, name, fig in scopes:
        queue = name.removesuffix(f" ({channel})")
        label = {"level": "queue" if queue else "channel", "channel": channel, "queue": queue}
        for figure in ("offered", "queued", "answered", "timed_out"):
            assert got(f"ccpulse_contacts_{figure}_today", **label) == fig[figure], (label, figure)
        assert got("ccpulse_contacts_waiting", **label) == fig["in_queue"], label
        assert got("ccpulse_contacts_active", **label) == fig["active"], label
        assert got("ccpulse_longest_wait_seconds", **label) == fig["longest_wait_seconds"]
        assert got("ccpulse_service_level_today_ratio", **label) == fig["service_level"], label
        assert got("ccpulse_abandon_rate_today_ratio", **label) == fig["abandon_rate"], label
        for stage, n in fig["abandoned_by_stage"].items():
            assert got("ccpulse_contacts_abandoned_today", **label, stage=stage) == n
        for row in fig["ivr_funnel"]:
            entered = got("ccpulse_ivr_stage_entered_today", **label, stage=str(row["stage"]))
            assert entered == row["entered"], label
        handled = got("ccpulse_handle_time_today_seconds_count", **label)
        assert handled == fig["handled"], label
    assert doc["channels"]["voice"]["in_queue"] == 4  # both partitions summed
    for state, n in doc["agent_states"].items():
        assert got("ccpulse_agents", state=state) == n
    seconds: dict[str, float] = {}
    for agent in doc["agents"].values():
        for state, s in agent.get("time_in_state_seconds", {}).items():
            seconds[state] = seconds.get(state, 0.0) + s
    assert seconds
    for state, s in seconds.items():
        assert got("ccpulse_agents_state_today_seconds", state=state) == s, state
    ranked = sorted(doc["agents"].items(), key=lambda item: (-item[1]["answered"], item[0]))
    for name, agent in ranked[:2]:
        assert got("ccpulse_agent_contacts_answered_today", agent=name) == agent["answered"]
        handle = (agent["aht_seconds"] or 0.0) * agent["handled"]
        assert got("ccpulse_agent_handle_time_today_seconds", agent=name) == handle
        if agent["state"] is not None:
            state_s = got("ccpulse_agent_state_seconds", agent=name, state=agent["state"])
            assert state_s == agent["state_seconds"]
    assert got("ccpulse_metrics_agents_omitted") == len(ranked) - 2


def test_a_sum_over_one_level_is_the_channel_total(clean_redis: EmbeddedRedis) -> None:
    """Channel totals carry level="channel", queues level="queue": sum() over one level counts
    each contact once (over both it would count the queued ones twice)."""
    samples, doc = asyncio.run(_read(clean_redis.url, Settings(auth="off"), clock.now()))
    by_level: dict[str, float] = {}
    for (name, labels), n in samples.items():
        if name == "ccpulse_contacts_offered_today":
            level = dict(labels)["level"]
            by_level[level] = by_level.get(level, 0) + n
    assert set(by_level) == {"channel", "queue"}
    assert by_level["channel"] == sum(fig["offered"] for fig in doc["channels"].values())
    assert by_level["queue"] == sum(fig["offered"] for fig in doc["queues"].values())
    every = [labels for (name, labels) in samples if name.startswith("ccpulse_contacts_")]
    assert all(dict(labels)["level"] in ("channel", "queue") for labels in every)


async def _stage_goes_to_zero(url: str, settings: Settings, now_s: float) -> list[Samples]:
    """A stage counted once, then corrected away (the aggregator's -1 on the same fields):
    the scrape before and the scrape after."""
    redis = Redis.from_url(url)
    try:
        await _write_state(redis, now_s, settings)
        reader = LiveReader(redis, settings)
        today = resolve_window("today", now_s, settings)
        minute = max(keys.bucket_start_s(now_s, "m") - 120, today.start_s)
        cells = [keys.partition_counter_key(0, r, keys.bucket_start_s(minute, r)) for r in "mh"]
        fields = [
            keys.counter_field("ch|voice", f"{kpis.ABANDON_STAGE}transfer"),
            keys.counter_field("ch|voice", f"{kpis.STAGE_ENTERED}transfer"),
            keys.counter_field("ch|voice", f"{kpis.STAGE_RANK}transfer"),
        ]
        scrapes = []
        for step in (1, -1):
            for key in cells:
                for field in fields:
                    await redis.hincrby(key, field, step)
            scrapes.append(_samples((await render(reader, now_s)).decode()))
        return scrapes
    finally:
        await redis.aclose()


def test_a_stage_corrected_to_zero_reads_zero(clean_redis: EmbeddedRedis) -> None:
    before, after = asyncio.run(_stage_goes_to_zero(clean_redis.url, Settings(), clock.now()))
    label = frozenset(
        {"level": "channel", "channel": "voice", "queue": "", "stage": "transfer"}.items()
    )
    for name in ("ccpulse_contacts_abandoned_today", "ccpulse_ivr_stage_entered_today"):
        assert before[(name, label)] == 1, name
        assert after.get((name, label)) == 0, name  # present, at 0: not vanished


def test_the_scope_cap_keeps_the_busiest_and_counts_the_rest(clean_redis: EmbeddedRedis) -> None:
    """CCPULSE_METRICS_SCOPE_CAP=1: one queue (the most offered) and one stage name (the most
    contacts) per scrape; the others are counted in ccpulse_metrics_scopes_dropped."""
    cap = 1
    settings = Settings(auth="off", metrics_scope_cap=cap)
    samples, doc = asyncio.run(_read(clean_redis.url, settings, clock.now()))
    queues = sorted(
        (
            {**fig, "queue": name.removesuffix(f" ({fig['channel']})")}
            for name, fig in doc["queues"].items()
        ),
        key=lambda fig: -fig["offered"],
    )
    assert len(queues) > cap and queues[0]["offered"] > queues[cap]["offered"]
    exposed = {
        (dict(labels)["channel"], dict(labels)["queue"])
        for (name, labels) in samples
        if name == "ccpulse_contacts_offered_today" and dict(labels)["level"] == "queue"
    }
    assert exposed == {(queues[0]["channel"], queues[0]["queue"])}
    assert samples[("ccpulse_metrics_scopes_dropped", frozenset({"label": "queue"}.items()))] == (
        len(queues) - cap
    )
    kept = [*doc["channels"].values(), queues[0]]
    totals: dict[str, int] = {}
    for fig in kept:
        for stage, n in fig["abandoned_by_stage"].items():
            totals[stage] = totals.get(stage, 0) + n
        for row in fig["ivr_funnel"]:
            totals[str(row["stage"])] = totals.get(str(row["stage"]), 0) + int(row["entered"])
    totals.pop("none", None)
    assert len(totals) > cap
    stages = {
        dict(labels)["stage"]
        for (name, labels) in samples
        if name in ("ccpulse_contacts_abandoned_today", "ccpulse_ivr_stage_entered_today")
    }
    assert stages - {"none"} == {min(totals, key=lambda s: (-totals[s], s))}
    dropped = samples[("ccpulse_metrics_scopes_dropped", frozenset({"label": "stage"}.items()))]
    assert dropped == len(totals) - cap
