"""Agent activity names: each agent is in exactly one of five states, whatever the vendor says."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from aggregator import engine
from ingest.adapters.twilio_taskrouter import map_taskrouter
from services import agentstates as st
from services import kpis
from services.contract import ContactEvent
from services.settings import Settings
from services.sources import SourceSettings


@pytest.mark.parametrize(
    ("vendor", "name", "state", "reason"),
    [
        # Twilio's default activities (TaskRouter workspaces are created with these four).
        ("twilio", "Available", st.AVAILABLE, None),
        ("twilio", "Unavailable", st.NOT_READY, "Unavailable"),
        ("twilio", "Offline", st.OFFLINE, None),
        ("twilio", "Break", st.NOT_READY, "Break"),
        ("twilio", "Coaching", st.NOT_READY, "Coaching"),  # a custom activity
        # Connect routing profiles: Available, Offline, custom statuses.
        ("amazon_connect", "Available", st.AVAILABLE, None),
        ("amazon_connect", "Offline", st.OFFLINE, None),
        ("amazon_connect", "Lunch", st.NOT_READY, "Lunch"),
        ("chatwoot", "busy", st.NOT_READY, "busy"),
        ("zendesk", "Transfers only", st.NOT_READY, "Transfers only"),
        (None, "AVAILABLE", st.AVAILABLE, None),
        (None, "On Contact", st.ON_CONTACT, None),
        (None, "After Call Work", st.WRAP_UP, None),
        (None, "wrap-up", st.WRAP_UP, None),
        (None, "logged_out", st.OFFLINE, None),
        (None, "not_ready", st.NOT_READY, None),
    ],
)
def test_vendor_names_map_to_one_of_five(
    vendor: str | None, name: str, state: str, reason: str | None
) -> None:
    assert st.normalise(name, vendor) == (state, reason)


def test_the_installation_mapping_wins_case_insensitively() -> None:
    mapping = {"OUTBOUND CALLS": "on_contact", "training": "Offline"}
    assert st.normalise("Outbound Calls", "twilio", mapping) == (st.ON_CONTACT, None)
    assert st.normalise("Training", "twilio", mapping) == (st.OFFLINE, None)


def _activity(name: str, at: datetime, n: int) -> dict[str, str]:
    stamp = str(int(at.timestamp() * 1000) + n)
    return {
        "EventType": "worker.activity.update",
        "WorkerSid": "WK1",
        "WorkerName": "alice",
        "WorkerActivityName": name,
        "TimestampMs": stamp,
    }


def test_twilio_default_activities_give_occupancy_and_one_state() -> None:
    """Available 10 min, on a call 30 min (native event, any case), Break 20 min: occupancy
    = 30 / (30 + 10); the wallboard shows `not_ready` with the reason `Break`."""
    t0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
    sources = SourceSettings()
    events = [
        *map_taskrouter(_activity("Available", t0, 0), t0, sources).events,
        ContactEvent.model_validate(
            {
                "id": "n1",
                "type": "agent.state",
                "time": (t0 + timedelta(minutes=10)).isoformat(),
                "agent": "alice",
                "state": "ON_CONTACT",
            }
        ),
        *map_taskrouter(_activity("Break", t0 + timedelta(minutes=40), 0), t0, sources).events,
    ]
    plan = engine.plan(events, {}, {})
    sheet = plan.agents["alice"]
    assert sheet.state is not None and (sheet.state.value, sheet.reason) == ("not_ready", "Break")
    changes = sorted((ms, i, s) for _, i, s, ms in plan.agent_log)
    end = int((t0 + timedelta(hours=1)).timestamp() * 1000)
    seconds = kpis.time_in_state(changes, int(t0.timestamp() * 1000), end)
    assert {k: round(v) for k, v in seconds.items()} == {
        "available": 600,
        "on_contact": 1800,
        "not_ready": 1200,
    }
    settings = Settings(auth="off")
    assert kpis.occupancy(seconds, settings.busy_states, settings.idle_states) == pytest.approx(
        0.75
    )


def test_the_reason_follows_the_winning_state_event_in_any_order() -> None:
    t0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
    a = map_taskrouter(_activity("Break", t0, 1), t0).events
    b = map_taskrouter(_activity("Available", t0 + timedelta(minutes=1), 2), t0).events
    for order in ([*a, *b], [*b, *a]):
        sheet = engine.plan(order, {}, {}).agents["alice"]
        assert sheet.state is not None and (sheet.state.value, sheet.reason) == ("available", None)
    sheet = engine.plan(a, {}, {}).agents["alice"]
    again: Any = engine.plan(b[:0], {}, {"alice": sheet})
    assert again.agents == {} and sheet.reason == "Break"
