"""History end to end: past events in over HTTP, exact interval rows out of `/api/v1/volume`.

The same checks run on SQLite (the default) and on the PostgreSQL server when it is reachable:
every bucket of every interval, in a zone with a half-hour offset, equals the reference recount;
late events correct closed intervals; CSV carries the same numbers.
"""

from __future__ import annotations

import csv
import io
import json
import math
import socket
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from services import erlang, keys
from services.settings import DEFAULT_SL_THRESHOLDS_SECONDS
from simulator.scenario import Day, generate, iso
from tests import oracle
from tests.clock import clock
from tests.conftest import PipelineFactory
from tests.harness import Pipeline, wait_until

pytestmark = pytest.mark.e2e

PG_SERVER = "postgresql://postgres@127.0.0.1:5432"
FIGURES = (
    "offered",
    "answered",
    "abandoned",
    "abandon_rate",
    "service_level",
    "asa_seconds",
    "aht_seconds",
)
ZONE = "Asia/Kolkata"  # +05:30: local hours are not UTC hours


def past_events(hours: float, contacts: int, seed: int) -> list[dict[str, Any]]:
    now = clock.now()
    events = generate(
        Day(seed=seed, busy_factor=1.5, prefix=f"h{seed}"),
        now - hours * 3600,
        contacts,
        contacts / (hours * 3600),
    )
    return [e for e in events if e["time"] <= iso(now - 1)]


def week_start(now: float, zone: str) -> float:
    """Monday 00:00 of the local week holding `now` (what the api's `1w` rows start at)."""
    local = datetime.fromtimestamp(now, ZoneInfo(zone))
    monday = (local - timedelta(days=local.weekday())).date()
    return datetime.combine(monday, datetime.min.time(), ZoneInfo(zone)).timestamp()


def epoch(text: str) -> int:
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp())


def volume(p: Pipeline, **params: Any) -> dict[str, Any]:
    r = httpx.get(f"{p.api_url}/api/v1/volume", params=params, timeout=30)
    assert r.status_code == 200, r.text
    return dict(r.json())


def mismatches(doc: dict[str, Any], events: list[dict[str, Any]], group: str) -> list[str]:
    """Every row against the recount of its own [start, end); empty when all agree."""
    kind = {"channel": "channels", "queue": "queues"}[group]
    buckets: dict[tuple[int, int], dict[str, dict[str, Any]]] = {}
    problems: list[str] = []
    for row in doc["rows"]:
        span = (epoch(row["start"]), epoch(row["end"]))
        if span not in buckets:
            buckets[span] = oracle.recount(events, *span, DEFAULT_SL_THRESHOLDS_SECONDS)[kind]
        want = buckets[span].get(row[group], {})
        problems += [
            f"{row['start']} {row[group]} {f}: {row[f]} != {want.get(f)}"
            for f in FIGURES
            if not close(row[f], want.get(f))
        ]
    for span, want in buckets.items():  # nothing the recount has may be missing from the rows
        names = {r[group] for r in doc["rows"] if epoch(r["start"]) == span[0]}
        problems += [
            f"{span[0]} {name} missing"
            for name, f in want.items()
            if (f["offered"] or f["answered"]) and name not in names
        ]
    return problems


def close(got: Any, want: Any) -> bool:
    if want is None or got is None:
        return got == want or (want is None and got in (0, None))
    if isinstance(want, float) or isinstance(got, float):
        return abs(float(got) - float(want)) < 1e-9
    return bool(got == want)


def totals(doc: dict[str, Any]) -> int:
    return sum(int(r["offered"]) for r in doc["rows"])


def settle(p: Pipeline, events: list[dict[str, Any]], **params: Any) -> dict[str, Any]:
    """Wait (bounded) until history holds every offered contact of the range."""
    start, end = epoch(params["from"]), epoch(params["to"])
    recount = oracle.recount(events, start, end, DEFAULT_SL_THRESHOLDS_SECONDS)
    scopes = recount["queues"] if "queue" in params else recount["channels"]
    want = sum(
        int(f["offered"]) for name, f in scopes.items() if params.get("queue") in (None, name)
    )
    seen: list[int] = []

    def check() -> dict[str, Any] | None:
        doc = volume(p, **params)
        seen.append(totals(doc))
        return doc if seen[-1] == want else None

    try:
        return dict(wait_until(check, 90, "history", 1.0))
    except AssertionError as exc:
        raise AssertionError(f"{params}: offered {seen[-3:]} in history, recount {want}") from exc


# Contacts in the hours before this local week began reach the live pipeline on any weekday
# (up to 7 days + 3 h back): lateness and bucket life cover them, so the week rows have a past.
WEEK_EDGE_ENV = {
    "CCPULSE_LATENESS_SECONDS": str(8 * 86400),
    "CCPULSE_BUCKET_TTL_SECONDS": str(9 * 86400),
}


def week_edge_events(now: float) -> list[dict[str, Any]]:
    """40 contacts in the 3 hours before this local week began (the last week's closing hours)."""
    start = week_start(now, ZONE) - 3 * 3600
    events = generate(Day(seed=72, busy_factor=1.0, prefix="wk"), start, 40, 40 / 7200)
    return [e for e in events if e["time"] < iso(week_start(now, ZONE))]


def now_event(now: float) -> dict[str, Any]:
    """A contact offered at this very instant: the local day and week holding `now` always have
    one (a few minutes after local midnight, the past hours' contacts may all be yesterday's)."""
    return {
        "id": "now-1",
        "type": "contact.offered",
        "time": iso(now),
        "contact": "now-c1",
        "channel": "voice",
        "queue": "general",
    }


def exercise(p: Pipeline) -> None:
    now = clock.now()
    events = past_events(hours=30, contacts=900, seed=71) + week_edge_events(now)
    events.append(now_event(now))
    assert p.post(events, chunk=1000) == len(events)
    p.wait_applied(len(events))
    base = {"from": iso(now - 31 * 3600), "to": iso(now + 60), "tz": ZONE}
    # weeks: from 4 h before this local week began, so the range spans a week boundary with
    # contacts on both sides whatever the weekday: the first week is closed, this one open.
    weeks = {**base, "from": iso(min(now - 31 * 3600, week_start(now, ZONE) - 4 * 3600))}
    for interval in ("15m", "30m", "1h", "1d", "1w"):
        params = weeks if interval == "1w" else base
        doc = settle(p, events, interval=interval, group_by="channel", **params)
        assert doc["rows"], interval
        assert mismatches(doc, events, "channel") == [], interval
        if interval in ("1d", "1w"):  # the first day (31 h back) and week are closed, now is open
            assert doc["rows"][-1]["partial"] and not doc["rows"][0]["partial"], interval
            assert len(doc["rows"]) >= 2, interval
    doc = settle(p, events, interval="1h", group_by="queue", **base)
    assert mismatches(doc, events, "queue") == []
    # a late event, 20 hours back, corrects its closed interval
    late_t = (now - 20 * 3600) // 3600 * 3600 + 60  # offer and abandon in one hour at any instant
    late = [
        {
            "id": "late-1",
            "type": "contact.offered",
            "time": iso(late_t),
            "contact": "late-c1",
            "channel": "voice",
            "queue": "late-q",
        },
        {
            "id": "late-2",
            "type": "contact.abandoned",
            "time": iso(late_t + 30),
            "contact": "late-c1",
        },
    ]
    assert p.post(late) == 2
    everything = events + late
    doc = settle(p, everything, interval="1h", group_by="channel", **base)
    assert mismatches(doc, everything, "channel") == []
    doc = settle(p, everything, interval="1h", group_by="queue", queue="late-q", **base)
    assert [(r["queue"], r["offered"], r["abandoned"]) for r in doc["rows"]] == [("late-q", 1, 1)]
    # CSV: same rows, same numbers
    r = httpx.get(
        f"{p.api_url}/api/v1/volume",
        params={"interval": "1h", "group_by": "channel", **base},
        headers={"Accept": "text/csv"},
        timeout=30,
    )
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    table = list(csv.DictReader(io.StringIO(r.text)))
    json_rows = volume(p, interval="1h", group_by="channel", **base)["rows"]
    assert [(t["start"], t["channel"], int(t["offered"])) for t in table] == [
        (j["start"], j["channel"], j["offered"]) for j in json_rows
    ]


def test_history_is_exact_on_sqlite(pipeline_factory: PipelineFactory) -> None:
    exercise(pipeline_factory(WEEK_EDGE_ENV))


def pg_reachable() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=1):
            return True
    except OSError:
        return False


@pytest.mark.postgres
@pytest.mark.skipif(not pg_reachable(), reason="PostgreSQL is not reachable on 127.0.0.1:5432")
def test_history_is_exact_on_postgresql(pipeline_factory: PipelineFactory) -> None:
    """In a database of its own, created and dropped here: another run on the same server (a
    second checkout, the clock matrix) can never mix its rows into this recount."""
    import asyncio
    import uuid

    import asyncpg

    name = f"ccpulse_test_{uuid.uuid4().hex[:12]}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(f"{PG_SERVER}/test")
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    try:
        env = {"CCPULSE_DATABASE_URL": f"{PG_SERVER}/{name}", **WEEK_EDGE_ENV}
        pipeline = pipeline_factory(env)
        try:
            exercise(pipeline)
        finally:
            pipeline.stop()
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def test_history_refusals(pipeline: Pipeline) -> None:
    url = f"{pipeline.api_url}/api/v1/volume"
    r = httpx.get(url, params={"interval": "15m", "from": "2026-01-01", "to": "2026-03-01"})
    assert r.status_code == 422 and "31-day limit" in r.json()["detail"]  # 400 before: one status
    r = httpx.get(url, params={"tz": "Mars/Olympus"})
    assert r.status_code == 422 and r.json()["detail"].startswith("tz:")
    r = httpx.get(url, params={"queue": "no-such-queue"})
    assert r.status_code == 404 and r.json()["detail"].startswith("queue:")
    r = httpx.get(url, params={"group_by": "agent"})
    assert r.status_code == 422 and r.json()["detail"].startswith("group_by:")
    r = httpx.get(url, params={"from": "yesterday-ish"})
    assert r.status_code == 422 and r.json()["detail"].startswith("from:")
    r = httpx.get(f"{pipeline.api_url}/api/v1/staffing", params={"target_sl": 2})
    assert r.status_code == 422
    for path, params in (
        ("staffing", {"date": "0001-01-01"}),
        ("staffing", {"date": "9999-12-31"}),
        ("volume", {"from": "0001-01-01", "to": "0001-01-02"}),
    ):
        r = httpx.get(f"{pipeline.api_url}/api/v1/{path}", params=params)
        assert r.status_code == 422 and "outside" in r.json()["detail"], (path, r.text)


def rebuild(p: Pipeline, start: str, end: str, *extra: str) -> str:
    cmd = [sys.executable, "-m", "ccpulse", "history", "rebuild", "--from", start, "--to", end]
    done = subprocess.run([*cmd, *extra], env=p.env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_rebuild_from_the_topic_reproduces_the_rolled_rows(pipeline: Pipeline) -> None:
    events = past_events(hours=6, contacts=300, seed=73)
    assert pipeline.post(events) == len(events)
    pipeline.wait_applied(len(events))
    now = clock.now()
    base = {
        "from": iso(now - 7 * 3600),
        "to": iso(now - 900),
        "tz": "UTC",
        "interval": "15m",
        "group_by": "channel,queue",
    }
    settle(pipeline, events, **{**base, "to": iso(keys.interval_start_s(now))})
    rolled = volume(pipeline, **base)["rows"]
    out = rebuild(pipeline, iso(now - 8 * 3600), iso(keys.interval_start_s(now)))
    assert "rebuilt" in out
    assert volume(pipeline, **base)["rows"] == rolled


def test_staffing_from_four_weeks_loaded_by_rebuild(pipeline: Pipeline, tmp_path: Path) -> None:
    zone = ZoneInfo("UTC")
    target = (datetime.fromtimestamp(clock.now(), zone) + timedelta(days=1)).date()
    events: list[dict[str, Any]] = []
    for week, contacts in zip(range(1, 5), (60, 80, 100, 120), strict=True):
        nine = datetime.combine(target - timedelta(weeks=week), datetime.min.time(), zone)
        start = nine.timestamp() + 9 * 3600
        day = Day(seed=100 + week, busy_factor=1.2, prefix=f"w{week}")
        events += generate(day, start, contacts, contacts / 3000)
    export = tmp_path / "export.jsonl"
    export.write_text("\n".join(json.dumps(e) for e in events) + "\n")
    first = datetime.combine(target - timedelta(weeks=5), datetime.min.time(), zone)
    out = rebuild(
        pipeline, first.isoformat(), target.isoformat() + "T00:00:00+00:00", "--export", str(export)
    )
    assert f"from {len(events)} events" in out
    r = httpx.get(
        f"{pipeline.api_url}/api/v1/staffing",
        params={"date": target.isoformat(), "interval": "1h", "tz": "UTC"},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    doc = r.json()
    assert len(doc["forecast"]["weeks_used"]) == 4
    # Each channel is staffed apart, against its own service-level threshold (issue 16).
    hour: dict[str, list[int]] = {}  # channel -> [offered, handled, handle ms] at 09:00, 4 weeks
    whole: dict[str, list[int]] = {}  # the same over the whole days (the AHT when 09:00 has none)
    for week in range(1, 5):
        midnight = datetime.combine(target - timedelta(weeks=week), datetime.min.time(), zone)
        lo = int(midnight.timestamp())
        for into, (a, b) in ((hour, (lo + 9 * 3600, lo + 10 * 3600)), (whole, (lo, lo + 86400))):
            got = oracle.recount(events, a, b, DEFAULT_SL_THRESHOLDS_SECONDS)["channels"]
            for channel, f in got.items():
                sums = into.setdefault(channel, [0, 0, 0])
                sums[0] += f["offered"]
                sums[1] += f["handled"]
                sums[2] += round((f["aht_seconds"] or 0) * 1000 * f["handled"])
    row = doc["rows"][9]
    assert doc["threshold_seconds"] is None
    assert doc["thresholds_seconds"] == {c: DEFAULT_SL_THRESHOLDS_SECONDS[c] for c in whole}
    assert row["forecast_offered"] == pytest.approx(sum(o for o, _, _ in hour.values()) / 4)
    agents = 0
    for channel, (offered, handled, handle_ms) in hour.items():
        part = row["by_channel"][channel]
        assert part["forecast_offered"] == pytest.approx(offered / 4)
        if not offered:
            continue
        _, day_handled, day_ms = whole[channel]
        aht = handle_ms / handled / 1000 if handled else day_ms / day_handled / 1000
        threshold = DEFAULT_SL_THRESHOLDS_SECONDS[channel]
        want = erlang.agents_erlang_c(offered / 4 / 3600, aht, 0.8, threshold)
        assert part["agents_erlang_c"] == want.agents, channel
        assert part["scheduled_erlang_c"] == math.ceil(want.agents / 0.7 - 1e-9)
        agents += want.agents
    assert row["agents_erlang_c"] == agents and agents > 0
    assert row["agents_erlang_a"] <= row["agents_erlang_c"]
    assert doc["rows"][3]["forecast_offered"] == 0
    # the loaded weeks also answer the volume API and the heat map
    past = target - timedelta(weeks=1)
    v = volume(
        pipeline, interval="1d", **{"from": past.isoformat(), "to": target.isoformat()}, tz="UTC"
    )
    lo = int(datetime.combine(past, datetime.min.time(), zone).timestamp())
    want_day = oracle.recount(events, lo, lo + 86400, DEFAULT_SL_THRESHOLDS_SECONDS)["channels"]
    assert v["rows"][0]["offered"] == sum(f["offered"] for f in want_day.values())
    heat = httpx.get(
        f"{pipeline.api_url}/api/v1/volume/heatmap", params={"weeks": 6, "tz": "UTC"}, timeout=30
    ).json()
    cell = next(c for c in heat["cells"] if c["weekday"] == target.weekday() and c["hour"] == 9)
    week_starts = [datetime.fromisoformat(heat["from"]) + timedelta(weeks=n) for n in range(6)]
    per_week = []
    for ws in week_starts:
        lo = int((ws + timedelta(days=target.weekday(), hours=9)).timestamp())
        got = oracle.recount(events, lo, lo + 3600, DEFAULT_SL_THRESHOLDS_SECONDS)["channels"]
        per_week.append(sum(f["offered"] for f in got.values()))
    assert cell["mean"] == pytest.approx(sum(per_week) / 6)
    assert cell["p90"] == sorted(per_week)[math.ceil(0.9 * 6) - 1]
