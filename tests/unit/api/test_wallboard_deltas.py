"""api.deltas: a patch applied to the old frame gives the new one exactly (nulls included)."""

from __future__ import annotations

import copy
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from api.deltas import diff
from tests.wallboard_feed import apply_patch

KEYS = st.sampled_from(["a", "b", "c", "voice", "sales:voice", "asa_s"])
LEAVES = st.none() | st.booleans() | st.integers(-5, 5) | st.floats(-2, 2) | st.text(max_size=3)
JSON = st.recursive(
    LEAVES,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEYS, inner, max_size=4),
    max_leaves=20,
)
OBJECTS = st.dictionaries(KEYS, JSON, max_size=5)


def patched(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    changes, removed = diff(old, new)
    wire = json.loads(json.dumps({"set": changes, "unset": removed}))  # as the page gets it
    target = copy.deepcopy(old)
    apply_patch(target, wire["set"], wire["unset"])
    return target


@settings(max_examples=400, deadline=None)
@given(OBJECTS, OBJECTS)
def test_a_patch_rebuilds_the_new_frame(old: dict[str, Any], new: dict[str, Any]) -> None:
    assert json.dumps(patched(old, new), sort_keys=True) == json.dumps(new, sort_keys=True)


def test_a_number_that_was_a_boolean_inside_a_list_is_sent() -> None:
    # Found by the property above: [[False, False]] == [[False, 0]] in Python, not in JSON.
    old = {"c": [[False, False]], "d": [{"n": 1}]}
    new = {"c": [[False, 0]], "d": [{"n": 1.0}]}
    assert diff(old, new) == ({"c": [[False, 0]], "d": [{"n": 1.0}]}, [])
    assert json.dumps(patched(old, new)) == json.dumps(new)


def test_null_is_a_value_and_a_removed_key_is_listed() -> None:
    old = {"data": {"channels": {"voice": {"asa_s": 12.5, "offered": 3}, "chat": {"offered": 1}}}}
    new = {"data": {"channels": {"voice": {"asa_s": None, "offered": 3}}}}
    changes, removed = diff(old, new)
    assert changes == {"data": {"channels": {"voice": {"asa_s": None}}}}
    assert removed == [["data", "channels", "chat"]]
    assert patched(old, new) == new


def test_nothing_changed_is_an_empty_patch() -> None:
    frame = {"data": {"as_of": "t", "channels": {"voice": {"offered": 3, "list": [1, 2]}}}}
    assert diff(frame, copy.deepcopy(frame)) == ({}, [])
