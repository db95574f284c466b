"""The api's documents as types: what the builders produce is what the models describe.

The routes serialise through `api.documents` (response models); the websocket sends the
builders' dicts as they are. Both must be the same JSON, key for key and number for number (an
int through a `float` field would come out as `3.0`), for any counters.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter

from api.documents import AgentFigures, QueueFigures
from api.snapshot import _agent
from services import kpis

PLAIN = [v for k, v in vars(kpis).items() if k.isupper() and isinstance(v, str) and ":" not in v]
HISTOGRAMS = [
    kpis.ANSWER_HIST,
    kpis.ANSWER_BH_HIST,
    kpis.QUEUE_ABANDON_HIST,
    kpis.IVR_ABANDON_HIST,
    kpis.HANDLE_HIST,
]
NAMED = [
    kpis.ABANDON_STAGE,
    kpis.STAGE_ENTERED,
    kpis.STAGE_RANK,
    kpis.ESCALATION_REASON,
    kpis.ISSUE_RESOLVED,
    kpis.ISSUE_RESOLUTION_MS,
]
FIELDS = (
    PLAIN
    + [f"{family}{i}" for family in HISTOGRAMS for i in range(kpis.OVERFLOW + 1)]
    + [f"{family}{name}" for family in NAMED for name in ("menu", "queue", "billing")]
)
COUNTERS = st.dictionaries(st.sampled_from(FIELDS), st.integers(0, 10**9), max_size=60)


def strict(value: Any) -> str:
    """JSON with sorted keys: 3 and 3.0 differ, as they do on the wire."""
    return json.dumps(value, sort_keys=True)


def through(adapter: TypeAdapter[Any], value: Any) -> Any:
    return json.loads(adapter.dump_json(adapter.validate_python(value)))


@settings(max_examples=200, deadline=None)
@given(COUNTERS, st.sampled_from(kpis.WAIT_EDGES_S), st.booleans())
def test_queue_figures_serialise_exactly_as_built(
    counters: dict[str, int], threshold: int, exclude_short: bool
) -> None:
    opts = kpis.ReadOptions(sl_threshold_s=threshold, sl_exclude_short=exclude_short)
    gauges = {"in_queue": counters.get(kpis.QUEUED, 0), "longest_wait_seconds": 12.5, "active": 3}
    agents = {
        "available": 2,
        "on_contact": 1,
        "after_contact_work": 0,
        "not_ready": 3,
        "not_ready_by_reason": {"Lunch": 2, "unspecified": 1},
        "offline": 0,
        "longest_available_seconds": 41.5,
        "current_state_seconds": {
            "available": {"longest_seconds": 41.5, "total_seconds": 50.25},
            "on_contact": {"longest_seconds": 7.0, "total_seconds": 7.0},
            "after_contact_work": {"longest_seconds": None, "total_seconds": 0.0},
            "not_ready": {"longest_seconds": 600.0, "total_seconds": 900.5},
            "offline": {"longest_seconds": None, "total_seconds": 0.0},
        },
    }
    built = {"channel": "voice", **kpis.figures(counters, opts), **gauges, "agents": agents}
    assert strict(through(TypeAdapter(QueueFigures), built)) == strict(built)


@given(COUNTERS)
def test_agent_figures_serialise_exactly_as_built(counters: dict[str, int]) -> None:
    built: dict[str, Any] = _agent(counters)
    built.update(time_in_state_seconds={"available": 1.5}, occupancy=None)
    assert strict(through(TypeAdapter(AgentFigures), built)) == strict(built)
    with_state = {
        **built,
        "state": "break",
        "state_reason": None,
        "state_since": "x",
        "state_seconds": 0.0,
        "queues": ["sales"],
    }
    assert strict(through(TypeAdapter(AgentFigures), with_state)) == strict(with_state)


def test_figures_catalogue_is_the_typed_model() -> None:
    """`kpis.figures` returns exactly the keys `kpis.Figures` declares (mypy checks the types)."""
    assert list(kpis.figures({}, kpis.ReadOptions())) == list(kpis.Figures.__annotations__)
