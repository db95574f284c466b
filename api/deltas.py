"""What changed between two wallboard frames, as the websocket's `patch` message carries it.

A patch has two parts. `set` is a tree shaped like the frame: where both the old and the new
value are objects it holds the changes inside (recursively), anywhere else the new value whole
(numbers, strings, null, lists, or an object where there was none). `unset` lists the paths
(lists of keys) that the new frame no longer has. Unlike JSON merge-patch (RFC 7396), null is an
ordinary value here: a figure that becomes null stays in the document as null, so the page
rebuilds exactly the document a full message would carry.

Applying: for each key of `set`, recurse when both the patch value and the target are objects,
else assign the patch value; then delete each `unset` path.
"""

from __future__ import annotations

from typing import Any

import orjson

Path = list[str]


def diff(old: dict[str, Any], new: dict[str, Any]) -> tuple[dict[str, Any], list[Path]]:
    """(set, unset) turning `old` into `new`; both empty when nothing changed."""
    changes: dict[str, Any] = {}
    removed: list[Path] = []
    _diff(old, new, [], changes, removed)
    return changes, removed


def _diff(
    old: dict[str, Any], new: dict[str, Any], at: Path, changes: dict[str, Any], removed: list[Path]
) -> None:
    for key, value in new.items():
        before = old.get(key, _MISSING)
        if isinstance(before, dict) and isinstance(value, dict):
            inner: dict[str, Any] = {}
            _diff(before, value, [*at, key], inner, removed)
            if inner:
                changes[key] = inner
        elif before is _MISSING or not _same(before, value):
            changes[key] = value
    removed.extend([*at, key] for key in old if key not in new)


def _same(a: Any, b: Any) -> bool:
    """Equal as JSON: 1 and 1.0 and True differ in the text the page parses, inside lists and
    objects too (Python's == finds [False] and [0] equal), so those compare as their text."""
    if type(a) is not type(b):
        return False
    if type(a) is list or type(a) is dict:
        return bool(a == b) and orjson.dumps(a) == orjson.dumps(b)
    return bool(a == b)


class _Missing:
    pass


_MISSING = _Missing()
