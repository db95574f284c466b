"""The websocket's messages as the page parses them: strict JSON, and a patch that rebuilds."""

from __future__ import annotations

import copy
import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from api.broadcaster import Frame, full_message, patch_message
from tests.wallboard_feed import apply_patch


def strict(text: str) -> dict[str, Any]:
    """JSON.parse's view: NaN and Infinity are not JSON."""

    def refuse(name: str) -> None:
        raise ValueError(f"{name} is not JSON")

    parsed: dict[str, Any] = json.loads(text, parse_constant=refuse)
    return parsed


def test_a_figure_that_is_not_finite_reaches_the_page_as_null_not_as_invalid_json() -> None:
    old = {"data": {"queues": {"sales": {"asa_seconds": 4.0, "offered": 3}}}}
    new = {"data": {"queues": {"sales": {"asa_seconds": math.nan, "offered": math.inf}}}}
    patch = strict(patch_message(2, 1, old, new))
    assert patch["set"] == {"data": {"queues": {"sales": {"asa_seconds": None, "offered": None}}}}
    assert strict(full_message("snapshot", 1, new))["data"]["queues"]["sales"] == {
        "asa_seconds": None,
        "offered": None,
    }


def test_the_whole_state_is_encoded_once_when_asked() -> None:
    state = {"data": {"channels": {"voice": {"offered": 3}}}, "today": {"offered": 9}}
    frame = Frame(7, state, 6, patch_message(7, 6, {}, state))
    assert frame.full is frame.full
    assert strict(frame.full) == {"type": "update", "seq": 7, **state}


LEAVES = st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.floats(-1e6, 1e6)
TEXT = st.text(max_size=4)
DOCS = st.recursive(
    LEAVES | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=25,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(TEXT, DOCS, max_size=4), st.dictionaries(TEXT, DOCS, max_size=4))
def test_the_patch_message_on_the_wire_rebuilds_the_new_state(
    old: dict[str, Any], new: dict[str, Any]
) -> None:
    message = strict(patch_message(2, 1, old, new))
    assert (message["type"], message["seq"], message["base"]) == ("patch", 2, 1)
    target = copy.deepcopy(old)
    apply_patch(target, message["set"], message.get("unset", []))
    assert json.dumps(target, sort_keys=True) == json.dumps(new, sort_keys=True)


@pytest.mark.parametrize("kind", ["snapshot", "update"])
def test_a_whole_state_message_keeps_its_kind_and_number(kind: str) -> None:
    assert strict(full_message(kind, 3, {"data": {}, "today": {}})) == {
        "type": kind,
        "seq": 3,
        "data": {},
        "today": {},
    }
