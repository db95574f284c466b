"""The spine end to end: HTTP in, real broker, real Redis, figures out over REST and websocket."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx
import pytest
import websockets
from prometheus_client.parser import text_string_to_metric_families

from services.settings import DEFAULT_SL_THRESHOLDS_SECONDS
from simulator.scenario import Day, generate, iso, shuffle_within_contacts
from tests import oracle
from tests.clock import clock
from tests.harness import Pipeline, epoch_of, same, wait_until
from tests.wallboard_feed import Feed

pytestmark = pytest.mark.e2e

FIGURES = (
    "offered",
    "queued",
    "answered",
    "abandoned",
    "abandoned_queue",
    "abandoned_ivr",
    "short_abandoned",
    "abandoned_by_stage",
    "timed_out",
    "transferred",
    "handled",
    "asa_seconds",
    "aht_seconds",
    "service_level",
    "abandon_rate",
    "resolved",
    "fcr_rate",
    "csat_responses",
    "nps_responses",
)


def corpus(contacts: int, seed: int, hours: float = 3.0) -> list[dict[str, Any]]:
    """A past stretch of a day: only what has already happened (nothing in the future)."""
    now = clock.now()
    events = generate(
        Day(seed=seed, busy_factor=1.5, prefix=f"e2e{seed}"),
        now - hours * 3600,
        contacts,
        contacts / (hours * 3600),
    )
    return [e for e in events if e["time"] <= iso(now - 1)]


def assert_matches(doc: dict[str, Any], events: list[dict[str, Any]]) -> None:
    start = int(epoch_of(doc["from"]))
    end = int(epoch_of(doc["to"]))
    expected = oracle.recount(events, start, end, DEFAULT_SL_THRESHOLDS_SECONDS)
    assert set(doc["channels"]) >= set(expected["channels"])
    for kind in ("channels", "queues"):
        for name, want in expected[kind].items():
            got = doc[kind][name]
            for figure in FIGURES:
                same(got[figure], want[figure], f"{kind}/{name}/{figure}")
    for channel, (eligible, met) in oracle.fcr_measured(events, start, end).items():
        got = doc["channels"][channel]
        assert got["fcr_measured_resolved"] == eligible, channel
        same(got["fcr_measured_rate"], met / eligible if eligible else None, f"fcr/{channel}")
    assert doc["fcr_measured_provisional"] is True
    as_of_ms = int(epoch_of(doc["as_of"]) * 1000)
    for agent, want in oracle.agents(events, start, end, as_of_ms).items():
        got = doc["agents"][agent]
        for figure in ("answered", "handled", "aht_seconds"):
            same(got[figure], want[figure], f"agents/{agent}/{figure}")
        states = want.get("time_in_state_seconds", {})
        assert set(got.get("time_in_state_seconds", {})) == set(states), agent
        for state, seconds in states.items():
            assert abs(got["time_in_state_seconds"][state] - seconds) < 0.002, (agent, state)


def test_corpus_with_reordering_and_duplicates_is_exact(pipeline: Pipeline) -> None:
    events = corpus(contacts=1200, seed=11)
    delivered = shuffle_within_contacts(events, seed=4, dup_rate=0.08)
    assert len(delivered) >= 10_000
    accepted = pipeline.post(delivered, chunk=1000)
    assert accepted == len(delivered)
    pipeline.wait_applied(len(delivered))
    doc = pipeline.live(**{"from": clock.now() - 4 * 3600, "to": clock.now()})
    assert_matches(doc, events)
    waiting = oracle.waiting_now(events)
    for channel, figures in doc["channels"].items():
        assert figures["in_queue"] == waiting.get(channel, 0), channel
    snapshot = asyncio.run(first_ws_message(pipeline))
    assert snapshot["type"] == "snapshot"
    assert_matches(snapshot["data"], events)


def test_in_order_delivery_is_exact(pipeline: Pipeline) -> None:
    events = corpus(contacts=200, seed=12, hours=1)
    pipeline.post(events)
    pipeline.wait_applied(len(events))
    doc = pipeline.live(**{"from": clock.now() - 2 * 3600, "to": clock.now()})
    assert_matches(doc, events)
    served: dict[str, set[str]] = {}
    for e in events:
        if e.get("agent") and e.get("queue"):
            served.setdefault(e["agent"], set()).add(e["queue"])
    with_state = {a for a, f in doc["agents"].items() if "state" in f}
    assert {a: doc["agents"][a]["queues"] for a in with_state} == {
        a: sorted(served.get(a, ())) for a in with_state
    }


async def first_ws_message(pipeline: Pipeline) -> dict[str, Any]:
    url = pipeline.api_url.replace("http", "ws") + "/ws/wallboard"
    async with websockets.connect(url) as ws:
        return dict(json.loads(await asyncio.wait_for(ws.recv(), 10)))


async def ws_updates_after_post(
    pipeline: Pipeline, events: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    url = pipeline.api_url.replace("http", "ws") + "/ws/wallboard"
    async with websockets.connect(url) as ws:
        feed = Feed(ws)
        first = await feed.next()
        await asyncio.to_thread(pipeline.post, events)
        messages = [first]
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            message = await feed.next(30)
            if message["type"] not in ("snapshot", "update"):
                continue
            messages.append(message)
            voice = message["data"]["channels"].get("voice", {})
            if voice.get("offered") == 3:
                break
        return messages


def test_websocket_pushes_changes(pipeline: Pipeline) -> None:
    now = clock.now()
    events = [
        {
            "id": f"w{i}",
            "type": "contact.offered",
            "time": iso(now - 5 - i),
            "contact": f"wc{i}",
            "channel": "voice",
            "queue": "sales",
        }
        for i in range(3)
    ]
    messages = asyncio.run(ws_updates_after_post(pipeline, events))
    assert messages[0]["type"] == "snapshot"
    assert messages[-1]["type"] == "update"
    assert messages[-1]["data"]["channels"]["voice"]["offered"] == 3
    # Today's totals come in the same message, read at the same instant (they lagged by REST).
    rest_today = pipeline.live(window="today")["channels"]["voice"]
    for message in messages:
        assert message["today"]["window"] == "today"
    pushed = messages[-1]["today"]["channels"]["voice"]
    assert pushed == {"offered": rest_today["offered"], "answered": rest_today["answered"]}


def test_aggregator_sigkill_mid_stream_loses_and_doubles_nothing(pipeline: Pipeline) -> None:
    events = corpus(contacts=600, seed=13)
    delivered = shuffle_within_contacts(events, seed=9, dup_rate=0.05)
    aggregator = pipeline.children["aggregator"]
    chunks = [delivered[i : i + 500] for i in range(0, len(delivered), 500)]
    for number, chunk in enumerate(chunks):
        pipeline.post(chunk)
        if number in (2, 6):
            time.sleep(0.3)
            aggregator.kill()
            aggregator.start()
    pipeline.wait_applied(len(delivered), timeout=180)
    doc = pipeline.live(**{"from": clock.now() - 4 * 3600, "to": clock.now()})
    assert_matches(doc, events)
    # The monotonic totals are written in the same atomic step: no restart doubles them either
    # (every event is inside the 4 hours, so increases less corrections are the window's).
    totals = totals_by_channel(pipeline.api_url)
    for channel, got in doc["channels"].items():
        for figure in ("offered", "answered", "abandoned"):
            assert totals[(channel, figure)] == got[figure], (channel, figure)


def totals_by_channel(api_url: str) -> dict[tuple[str, str], float]:
    """(channel, figure) -> `_total` less `_corrected_total`, channel level, from /metrics."""
    out: dict[tuple[str, str], float] = {}
    for family in text_string_to_metric_families(httpx.get(f"{api_url}/metrics").text):
        for s in family.samples:
            name = s.name.removeprefix("ccpulse_contacts_")
            if s.labels.get("level") != "channel" or not name.endswith("_total"):
                continue
            figure, sign = name.removesuffix("_total"), 1
            if figure.endswith("_corrected"):
                figure, sign = figure.removesuffix("_corrected"), -1
            key = (s.labels["channel"], figure)
            out[key] = out.get(key, 0.0) + sign * s.value
    return out


def test_bad_input_is_refused_with_the_field_named(pipeline: Pipeline) -> None:
    url = f"{pipeline.ingest_url}/v1/events"
    good = {
        "id": "ok-1",
        "type": "contact.offered",
        "time": iso(clock.now() - 10),
        "contact": "ok",
        "channel": "chat",
    }
    cases = [
        ([good, {**good, "id": "bad", "channel": "fax"}], 422, "channel"),
        ([{**good, "time": "yesterday"}], 422, "time"),
        ([{k: v for k, v in good.items() if k != "contact"}], 422, "contact"),
        ([{**good, "time": iso(clock.now() + 86400)}], 422, "time"),
        ([{**good, "unknown": 1}], 422, "unknown"),
    ]
    for body, status, field in cases:
        response = httpx.post(url, json=body, timeout=10)
        assert response.status_code == status, response.text
        assert any(field in e["field"] for e in response.json()["errors"]), response.text
    assert httpx.post(url, content=b"{not json", timeout=10).status_code == 400
    big = [good] * 10_001
    assert httpx.post(url, json=big, timeout=30).status_code == 413
    assert httpx.post(url, content=b"x" * (1024 * 1024 + 1), timeout=30).status_code == 413
    ndjson = "\n".join(json.dumps({**good, "id": f"nd{i}", "contact": f"nd{i}"}) for i in range(3))
    response = httpx.post(url, content=ndjson, headers={"content-type": "application/x-ndjson"})
    assert response.status_code == 202 and response.json() == {"accepted": 3}
    pipeline.wait_applied(3)
    assert pipeline.live()["channels"]["chat"]["offered"] == 3
    metrics = httpx.get(f"{pipeline.ingest_url}/metrics").text
    assert 'ccpulse_ingest_events_total{outcome="rejected",source="events"}' in metrics


def test_unprocessable_records_go_to_the_dlq_and_the_pipeline_goes_on(pipeline: Pipeline) -> None:
    from tests.kafka_tools import consume_all, produce_raw

    old = iso(clock.now() - 3 * 86400)
    produce_raw(
        pipeline.bootstrap,
        [
            b"not json",
            json.dumps({"id": "x", "type": "nope"}).encode(),
            json.dumps(
                {
                    "id": "late",
                    "type": "contact.offered",
                    "time": old,
                    "contact": "l",
                    "channel": "voice",
                }
            ).encode(),
        ],
    )
    good = {
        "id": "after",
        "type": "contact.offered",
        "time": iso(clock.now() - 5),
        "contact": "after",
        "channel": "sms",
    }
    pipeline.post([good])
    wait_until(lambda: pipeline.live()["channels"].get("sms", {}).get("offered") == 1, 60, "sms")
    letters = consume_all(pipeline.bootstrap, "ccpulse.events.dlq", expect=3)
    reasons = sorted(json.loads(v)["reason"].split(":")[0] for v in letters)
    assert reasons == ["invalid", "invalid", "late"]
    metrics = httpx.get(f"{pipeline.api_url}/metrics").text
    assert "ccpulse_aggregator_dead_letters_total 3.0" in metrics


@pytest.mark.parametrize("threshold", [10, 20, 60])
def test_service_level_variants_apply_to_the_past_without_reprocessing(
    pipeline: Pipeline, threshold: int
) -> None:
    events = corpus(contacts=300, seed=14, hours=2)
    pipeline.post(events)
    pipeline.wait_applied(len(events))
    span = {"from": clock.now() - 3 * 3600, "to": clock.now()}
    applied = pipeline.applied()
    for variant in ("abandons_ignored", "abandons_missed", "abandons_met_within"):
        for exclude in (True, False):
            doc = pipeline.live(
                **span, sl_variant=variant, sl_threshold=threshold, sl_exclude_short=exclude
            )
            start, end = int(epoch_of(doc["from"])), int(epoch_of(doc["to"]))
            thresholds = dict.fromkeys(DEFAULT_SL_THRESHOLDS_SECONDS, threshold)
            expected = oracle.recount(events, start, end, thresholds)
            for channel, want in expected["channels"].items():
                got = doc["channels"][channel]["service_level"]
                same(got, want["service_level_variants"][(variant, exclude)], f"{channel}")
    assert pipeline.applied() == applied, "reading a variant must not reprocess anything"
    bad = httpx.get(f"{pipeline.api_url}/api/v1/live", params={"sl_threshold": 25})
    assert bad.status_code == 422 and "sl_threshold" in bad.text


def test_hourly_intervals_of_today_equal_the_recount(pipeline: Pipeline) -> None:
    from datetime import UTC, datetime

    midnight = (
        datetime.fromtimestamp(clock.now(), UTC)
        .replace(hour=0, minute=0, second=0, microsecond=0)
        .timestamp()
    )
    since = midnight - 86400  # today and yesterday: the corpus spans midnight early in the day
    events = [e for e in corpus(contacts=300, seed=15, hours=3) if epoch_of(e["time"]) >= since]
    pipeline.post(events)
    pipeline.wait_applied(len(events))
    rows = []
    for day in ("yesterday", "today"):
        body = httpx.get(
            f"{pipeline.api_url}/api/v1/live/intervals", params={"day": day}, timeout=30
        ).json()
        assert body["timezone"] == "UTC"
        rows += body["rows"]
    assert rows
    for row in rows:
        start, end = int(epoch_of(row["start"])), int(epoch_of(row["end"]))
        want = oracle.recount(events, start, end, DEFAULT_SL_THRESHOLDS_SECONDS)["channels"]
        figures = want.get(row["channel"], {"offered": 0, "answered": 0, "abandoned": 0})
        for name in ("offered", "answered", "abandoned"):
            assert row[name] == figures[name], (row, name)
    assert sum(r["offered"] for r in rows) == sum(
        1 for e in {e["id"]: e for e in events}.values() if e["type"] == "contact.offered"
    )
    bad = httpx.get(f"{pipeline.api_url}/api/v1/live/intervals", params={"tz": "Mars/Base"})
    assert bad.status_code == 422 and "tz" in bad.text
