"""Behind every number (issue 17): for every figure the drill-down offers, per channel, per
queue and per abandon stage, the count of `GET /api/v1/contacts` equals the live figure of the
same window, and its pages (newest first, by cursor) hold exactly that many distinct contacts,
each of which meets the figure's definition. Events arrive shuffled, some twice."""

from __future__ import annotations

import random
from datetime import datetime
from typing import Any

import httpx
import pytest

from simulator.scenario import Day, generate, iso
from tests.clock import clock
from tests.conftest import PipelineFactory
from tests.harness import Pipeline, wait_until

pytestmark = pytest.mark.e2e

FIGURES = (
    "offered",
    "queued",
    "answered",
    "abandoned",
    "abandoned_queue",
    "abandoned_ivr",
    "timed_out",
    "handled",
    "resolved",
    "sl_missed",
)


def drill(p: Pipeline, **params: Any) -> dict[str, Any]:
    r = httpx.get(f"{p.api_url}/api/v1/contacts", params=params, timeout=30)
    assert r.status_code == 200, r.text
    return dict(r.json())


def every_page(p: Pipeline, **params: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    cursor = None
    for _ in range(100):  # bounded
        doc = drill(p, limit=37, **params, **({"cursor": cursor} if cursor else {}))
        out += doc["contacts"]
        cursor = doc["next_cursor"]
        if cursor is None:
            return out
    raise AssertionError("more than 100 pages")


def mismatches(p: Pipeline, window: str) -> list[str]:
    live = p.live(window=window)
    problems = []
    for kind, scopes in (("channel", live["channels"]), ("queue", live["queues"])):
        for name, figures in scopes.items():
            scope = {kind: name}
            if kind == "queue":
                scope["channel"] = figures["channel"]
            for figure in FIGURES:
                got = drill(p, figure=figure, window=window, limit=1, **scope)["count"]
                if got != figures[figure]:
                    problems.append(f"{window} {scope} {figure}: {got} != {figures[figure]}")
            eligible, rate = figures["fcr_measured_resolved"], figures["fcr_measured_rate"]
            repeats = 0 if rate is None else eligible - round(rate * eligible)
            for figure, want in (("fcr_measured_resolved", eligible), ("fcr_repeated", repeats)):
                got = drill(p, figure=figure, window=window, limit=1, **scope)["count"]
                if got != want:
                    problems.append(f"{window} {scope} {figure}: {got} != {want}")
            for stage, n in figures["abandoned_by_stage"].items():
                got = drill(p, figure="abandoned", stage=stage, window=window, limit=1, **scope)
                if got["count"] != n:
                    problems.append(f"{window} {scope} abandoned at {stage}: {got['count']} != {n}")
    return problems


VARIANTS = [
    {},  # abandons count as missed, short ones excluded; thresholds per channel
    {  # abandons within the threshold count as met; a queue with its own threshold
        "CCPULSE_SL_VARIANT": "abandons_met_within",
        "CCPULSE_QUEUE_SL_THRESHOLDS_SECONDS": '{"sales": 30, "chat-sales": 10}',
    },
]


@pytest.mark.parametrize("env", VARIANTS, ids=["default", "met-within"])
def test_every_drill_down_count_equals_its_figure(
    pipeline_factory: PipelineFactory, env: dict[str, str]
) -> None:
    pipeline = pipeline_factory(env)
    now = clock.now()
    events = [
        e
        for e in generate(Day(seed=17, busy_factor=1.6, prefix="dd"), now - 5400, 500, 500 / 5400)
        if e["time"] <= iso(now - 1)
    ]
    rng = random.Random(17)
    twice = events + rng.sample(events, 150)  # duplicates change nothing
    rng.shuffle(twice)
    assert pipeline.post(twice) == len(twice)
    pipeline.wait_applied(len(twice))
    seen: list[str] = []

    def settled() -> bool:
        seen[:] = mismatches(pipeline, "1h") + mismatches(pipeline, "15m")
        return not seen

    try:
        wait_until(settled, 60, "drill-down counts equal to the figures", 2.0)
    except AssertionError as exc:
        raise AssertionError(seen[:20]) from exc
    live = pipeline.live(window="1h")
    assert sum(c["abandoned"] for c in live["channels"].values()) > 5  # not a trivial sample
    eligible = sum(c["fcr_measured_resolved"] for c in live["channels"].values())
    repeats = drill(pipeline, figure="fcr_repeated", window="1h")["count"]
    assert eligible > 5 and repeats > 0, (eligible, repeats)  # repeats happen in this sample
    # pages: as many distinct contacts as the count, newest first, each meeting the definition
    doc = drill(pipeline, figure="abandoned_queue", window="1h")
    rolled = datetime.fromisoformat(doc["rolled_until"].replace("Z", "+00:00")).timestamp()
    assert now - 5 < rolled <= clock.now()  # every change up to then is in the list
    listed = every_page(pipeline, figure="abandoned_queue", window="1h")
    assert len(listed) == len({c["contact"] for c in listed}) == doc["count"] > 0
    assert [c["at_ms"] for c in listed] == sorted((c["at_ms"] for c in listed), reverse=True)
    for c in listed:
        assert c["outcome"] == "abandoned"
        steps = [t["event"] for t in c["timeline"]]
        assert "queued" in steps and steps.index("queued") < steps.index("abandoned")
    ivr = every_page(pipeline, figure="abandoned_ivr", window="1h")
    assert ivr
    for c in ivr:  # where the caller went before hanging up: the stage it left from is there
        stages = [t["stage"] for t in c["timeline"] if t["event"] == "stage"]
        assert c["abandon_stage"] in stages, c
        waits = every_page(pipeline, figure="answered", window="1h", sort="wait")
    values = [c["wait_seconds"] for c in waits]
    assert values == sorted(values, reverse=True) and len(values) > 10
    # refusals name the parameter
    r = httpx.get(f"{pipeline.api_url}/api/v1/contacts", params={"figure": "nope"}, timeout=10)
    assert r.status_code == 422 and "figure" in r.text
    r = httpx.get(
        f"{pipeline.api_url}/api/v1/contacts",
        params={"figure": "answered", "stage": "ivr"},
        timeout=10,
    )
    assert r.status_code == 422 and r.json()["detail"].startswith("stage:")
    r = httpx.get(
        f"{pipeline.api_url}/api/v1/contacts",
        params={"figure": "answered", "cursor": "!!"},
        timeout=10,
    )
    assert r.status_code == 422 and r.json()["detail"].startswith("cursor:")
