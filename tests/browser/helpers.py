"""Reading the page as a test: every figure carries data-* attributes with its raw value."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

from .conftest import LiveApi

LIVE = '#link[data-link="live"]'

FIGURES_JS = """
() => Array.from(document.querySelectorAll('[data-scope][data-field]')).map(e => ({
  scope: e.dataset.scope, channel: e.dataset.channel, queue: e.dataset.queue,
  agent: e.dataset.agent, field: e.dataset.field, window: e.dataset.window,
  value: JSON.parse(e.dataset.value ?? 'null'),
  text: (e.querySelector(':scope > .value') ?? e).textContent.trim(),
  status: e.dataset.status ?? null,
}))
"""


def open_wallboard(page: Any, api: LiveApi, query: str = "") -> None:
    """Sign in once with the viewer link (a cookie), then open the wallboard."""
    page.goto(api.login_url(), wait_until="domcontentloaded")
    if query:
        page.goto(f"{api.url}/{query}", wait_until="domcontentloaded")
    page.wait_for_selector(LIVE, timeout=15_000)
    page.wait_for_selector('[data-scope="channel"][data-field="offered"]', timeout=15_000)


def figures(page: Any) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = page.evaluate(FIGURES_JS)
    return result


def wait_for(check: Callable[[], Any], timeout: float, what: str, every: float = 0.25) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last is True or (last and not isinstance(last, list)):
            return last
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last}")


# Figures that grow with the clock: compared after taking out the time between the page's
# document and the api's (their `as_of`), within a second. Occupancy drifts with time too.
CLOCKED = {"longest_wait_seconds", "state_seconds"}
SLACK = {"longest_wait_seconds": 1.0, "state_seconds": 1.0, "occupancy": 0.05}


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def lookup(figures: dict[str, Any], field: str) -> Any:
    """A figure by its data-field; a dotted one (`agents.available`) is read from nested
    records."""
    value: Any = figures
    for part in field.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def mismatches(
    shown: list[dict[str, Any]],
    live: dict[str, Any],
    today: dict[str, Any],
    page_as_of: str | None = None,
) -> list[str]:
    """Every figure on the page against the api document it comes from; [] when all agree."""
    lag = _epoch(live["as_of"]) - _epoch(page_as_of) if page_as_of else 0.0
    bad: list[str] = []
    for f in shown:
        doc = today if f["window"] == "today" else live
        if f["scope"] == "channel":
            expected = lookup(doc["channels"].get(f["channel"], {}), f["field"])
        elif f["scope"] == "queue":
            if f["field"] in ("queue", "channel"):
                continue
            expected = lookup(doc["queues"].get(f["queue"], {}), f["field"])
        elif f["scope"] == "agent":
            if f["field"] == "agent":
                continue
            expected = doc["agents"].get(f["agent"], {}).get(f["field"])
            if f["field"] in ("answered", "handled", "transferred") and expected is None:
                expected = 0
        else:
            continue
        got = f["value"]
        slack = SLACK.get(f["field"])
        if slack is not None and isinstance(got, int | float) and isinstance(expected, int | float):
            if f["field"] in CLOCKED and expected > 0:
                expected = max(0.0, expected - lag)
            if abs(got - expected) > slack:
                bad.append(
                    f"{f['scope']}:{f.get('channel') or f.get('queue') or f.get('agent')}"
                    f"/{f['field']}: page {got} api {expected}"
                )
        elif got != expected:
            bad.append(
                f"{f['scope']}:{f.get('channel') or f.get('queue') or f.get('agent')}"
                f"/{f['field']}[{f['window']}]: page {got!r} api {expected!r}"
            )
    return bad


class Getter(Protocol):
    def get(self, path: str, **params: Any) -> Any: ...


def agree(page: Any, api: Getter) -> list[str] | bool:
    """True when every figure on the page equals the api's; else what differs (for the message)."""
    shown = figures(page)
    if not shown:
        return ["no figures on the page"]
    as_of = page.get_attribute("body", "data-as-of")
    bad = mismatches(shown, api.get("/api/v1/live"), api.get("/api/v1/live", window="today"), as_of)
    return bad or True
