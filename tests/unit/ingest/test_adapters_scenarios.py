"""Each vendor scenario through its adapter and the aggregator's engine, in shuffled batches.

The figures the end-to-end tests expect on `/api/v1/live` must already come out of the pure core:
adapters -> engine plan -> counter deltas, whatever the order and however the batches fall.
"""

from __future__ import annotations

import json
import random
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

import pytest

from aggregator import engine
from aggregator.facts import ContactFacts
from ingest.adapters import registry as reg
from ingest.adapters.cloudevents import binary_event
from services import keys
from services.contract import ContactEvent
from services.sources import SourceSettings
from tests.e2e import scenarios_vendors as sv

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC).timestamp()
SOURCES = {
    "/webhooks/twilio/voice": reg.TWILIO_VOICE,
    "/webhooks/twilio/taskrouter": reg.TWILIO_TASKROUTER,
    "/webhooks/amazon-connect": reg.AMAZON_CONNECT,
    "/webhooks/chatwoot": reg.CHATWOOT,
    "/webhooks/zendesk": reg.ZENDESK,
    "/v1/cloudevents": reg.CLOUDEVENTS,
    "/webhooks/asterisk/queue-log": reg.ASTERISK,
}


def decode(headers: dict[str, str], body: bytes, source: str) -> Any:
    """What the route hands the adapter, for these well-formed requests."""
    if source == reg.ASTERISK:
        return [line for line in body.decode().splitlines() if line.strip()]
    if "ce-specversion" in headers:
        return binary_event(headers, body, headers["content-type"])
    if "form-urlencoded" in headers.get("content-type", ""):
        return dict(parse_qsl(body.decode(), keep_blank_values=True))
    return json.loads(body)


def adapt(scenario: sv.Scenario) -> list[ContactEvent]:
    received = datetime.fromtimestamp(NOW, UTC)
    events: list[ContactEvent] = []
    for path, headers, body in scenario.requests:
        source = SOURCES[path]
        mapped = reg.dispatch(source, decode(headers, body, source), received, SourceSettings())
        events.extend(mapped.events)
    return events


def apply(events: list[ContactEvent], seed: int) -> dict[str, dict[str, int]]:
    shuffled = list(events)
    random.Random(seed).shuffle(shuffled)
    facts: dict[str, ContactFacts] = {}
    totals: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    step = 1 + seed % 5
    for start in range(0, len(shuffled), step):
        batch = shuffled[start : start + step]
        plan = engine.plan(batch, {c: facts.get(c) for c in engine.contacts_of(batch)}, {})
        facts.update(plan.facts)
        for (_, scope), fields in plan.deltas.items():
            for name, value in fields.items():
                totals[scope][name] += value
    return totals


def live_figures(counts: dict[str, int]) -> dict[str, Any]:
    stages = {k.split(":", 1)[1]: v for k, v in counts.items() if k.startswith("abst:") and v}
    return {
        "offered": counts["offered"],
        "answered": counts["answered"],
        "abandoned": counts["abandoned"],
        "abandoned_by_stage": stages,
        "timed_out": counts["timed_out"],
    }


@pytest.mark.parametrize("scenario", sv.ALL, ids=lambda f: f.__name__)
@pytest.mark.parametrize("seed", range(5))
def test_scenario_figures_from_the_pure_core(scenario: Any, seed: int) -> None:
    built = scenario(NOW, "u", sv.Secrets())
    totals = apply(adapt(built), seed)
    for channel, want in built.expected.items():
        assert live_figures(totals[keys.channel_scope(channel)]) == want
