"""Decoding untrusted JSON: bounded nesting and valid Unicode, refusals naming where.

`json.loads` raises RecursionError (not a JSONDecodeError) on deep nesting, and accepts escaped
lone surrogates (`"\\ud800"`) that no later step can encode: both used to end in a 500. Checked
once here, iteratively, so no later recursive walk or UTF-8 encode can fail on them.
"""

from __future__ import annotations

import json
import re
from typing import Any

MAX_DEPTH = 64
_SURROGATE = re.compile("[\ud800-\udfff]")


class JsonRefused(ValueError):
    """The body is not usable JSON; `field` says where (a dotted path, or `body`)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field[:200]
        self.message = message


class NotJson(JsonRefused):
    """Not JSON at all (the caller may try another framing, such as NDJSON)."""

    def __init__(self, exc: json.JSONDecodeError) -> None:
        super().__init__("body", f"is not JSON ({exc.msg}, line {exc.lineno})")
        self.msg = exc.msg


def loads(text: str) -> Any:
    """Parse and check; raises JsonRefused, never RecursionError or JSONDecodeError."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise NotJson(exc) from exc
    except RecursionError as exc:
        raise JsonRefused("body", f"is nested deeper than {MAX_DEPTH} levels") from exc
    check(value)
    return value


def check(value: Any) -> None:
    """Depth and Unicode of every string, key and value, without recursion."""
    stack: list[tuple[Any, str, int]] = [(value, "", 0)]
    while stack:
        item, path, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise JsonRefused(path or "body", f"is nested deeper than {MAX_DEPTH} levels")
        if isinstance(item, str):
            _text(item, path)
        elif isinstance(item, dict):
            for key, inner in item.items():
                _text(key, path)
                stack.append((inner, f"{path}.{key}" if path else key, depth + 1))
        elif isinstance(item, list):
            stack.extend(
                (inner, f"{path}.{i}" if path else str(i), depth + 1)
                for i, inner in enumerate(item)
            )


def _text(text: str, path: str) -> None:
    if not text.isascii() and _SURROGATE.search(text):
        raise JsonRefused(path or "body", "holds a lone surrogate (invalid Unicode)")
