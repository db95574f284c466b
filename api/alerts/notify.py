"""Notifications: Alertmanager API v2 alerts, Alertmanager webhook v4, Slack incoming
webhooks, PagerDuty Events API v2.

Each receiver gets each firing and each resolve once: the outbox (store.py) holds one entry per
notification and receiver until it is delivered; here a delivery is retried with exponential
backoff and jitter on network errors, 429 and 5xx, and dropped on any other 4xx (the receiver
refuses it: sending it again would not change that).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlencode

import httpx
from tenacity import (
    AsyncRetrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from services.alerting import SHORTFALL, severity_of
from services.settings import Settings

from ..live_reader import iso
from .alert_state import Notice
from .rules import AlertState

log = logging.getLogger("ccpulse.alerts")

Kind = Literal["webhook", "slack", "pagerduty", "alertmanager"]
Outcome = Literal["sent", "refused", "failed"]
ZERO_TIME = "0001-01-01T00:00:00Z"  # Alertmanager's "no end yet"
BACKOFF_FIRST_S = 0.5
BACKOFF_MAX_S = 8.0
TIMEOUT_S = 5.0
RESENDS_TO_MISS = 3  # Alertmanager resolves a firing alert not re-sent for this many periods
RUNBOOK_SECTIONS = {
    "abandon_rate": "abandon-rate",
    "service_level": "service-level",
    "longest_wait_seconds": "longest-wait",
    "waiting": "contacts-waiting",
    "staffing_shortfall": "staffing-shortfall",
}


@dataclass(frozen=True, slots=True)
class Receiver:
    name: str  # stable per configuration slot: "webhook:0", "slack:1", "pagerduty"
    kind: Kind
    url: str
    routing_key: str | None = None


@dataclass(frozen=True, slots=True)
class Links:
    """What a notification links to, and how long Alertmanager holds a firing alert."""

    public_url: str  # the wallboard, as people open it
    runbook_url: str | None = None  # docs/runbook.md as published; None: the repository path
    hold_s: float = 180.0  # endsAt of a firing alert, from the moment it is sent

    @classmethod
    def of(cls, settings: Settings) -> Links:
        hold = RESENDS_TO_MISS * settings.alertmanager_resend_seconds
        return cls(settings.public_base_url(), settings.alert_runbook_url, hold)


def alertmanager_api(url: str) -> str:
    """An Alertmanager base URL (http://alertmanager:9093) to its alerts endpoint."""
    base = url.rstrip("/")
    return base if base.endswith("/api/v2/alerts") else f"{base}/api/v2/alerts"


def receivers(settings: Settings) -> list[Receiver]:
    out = [
        Receiver(f"webhook:{i}", "webhook", u) for i, u in enumerate(settings.alert_webhook_urls)
    ]
    for i, url in enumerate(settings.alertmanager_urls):
        out.append(Receiver(f"alertmanager:{i}", "alertmanager", alertmanager_api(url)))
    for i, secret in enumerate(settings.alert_slack_urls):
        out.append(Receiver(f"slack:{i}", "slack", secret.get_secret_value()))
    if settings.alert_pagerduty_routing_key is not None:
        key = settings.alert_pagerduty_routing_key.get_secret_value()
        out.append(Receiver("pagerduty", "pagerduty", settings.alert_pagerduty_url, key))
    return out


def describe(value: float | None, metric: str) -> str:
    if value is None:
        return "n/a"
    if metric in ("abandon_rate", "service_level"):
        return f"{value * 100:.1f}%"
    if metric == "longest_wait_seconds":
        return f"{value:.0f}s"
    if metric == SHORTFALL:
        return f"{value * 100:.0f}% short"
    return f"{value:.0f}"


def scope_text(channel: str, queue: str | None) -> str:
    return channel if queue is None else f"{channel}/{queue}"


def window_of(n: Notice) -> int:
    """The window the alert's figure is for: the short one when only it crossed."""
    return n.alert.window_seconds or n.rule.window_seconds


def summary(n: Notice) -> str:
    """One line a person on call understands without opening anything."""
    a, r = n.alert, n.rule
    scope = scope_text(a.channel, a.queue)
    figure = r.metric.replace("_", " ")
    window = f"last {window_of(n) // 60} min"
    if n.kind != "firing":
        return (
            f"{r.name} on {scope} resolved: {figure} back to {describe(a.value, r.metric)} "
            f"(limit {describe(a.limit, r.metric)}, {a.volume} contacts, {window})"
        )
    if r.metric == SHORTFALL and a.value is not None:
        return (
            f"{r.name} on {scope}: agents staffed {a.value * 100:.0f}% short of those needed "
            f"for the last {window_of(n) // 60} min of arrivals ({a.volume} contacts)"
        )
    sign = ">" if r.comparison == "gt" else "<"
    return (
        f"{r.name} on {scope}: {figure} {describe(a.value, r.metric)} {sign} "
        f"{describe(a.limit, r.metric)} ({a.volume} contacts, {window})"
    )


def description(n: Notice) -> str:
    """The few sentences under the summary: what was crossed, how the limit is made, since
    when; a resolve says the figure is back inside, not still over."""
    a, r = n.alert, n.rule
    figure = r.metric.replace("_", " ")
    side = "above" if r.comparison == "gt" else "below"
    now = "is" if n.kind == "firing" else "is back to"
    where = f"{side} the limit" if n.kind == "firing" else "inside the limit"
    parts = [
        f"The {figure} of {scope_text(a.channel, a.queue)} over the last "
        f"{window_of(n) // 60} minutes {now} {describe(a.value, r.metric)}, {where} "
        f"{describe(a.limit, r.metric)} ({a.volume} contacts)."
    ]
    if r.baseline_factor is not None:
        usual = "unknown" if a.baseline is None else describe(a.baseline, r.metric)
        factor = f"{r.baseline_factor:g}x the usual rate for this hour of the week ({usual})"
        parts.append(
            f"Limit: {factor}."
            if r.threshold is None
            else f"Limit: the threshold {describe(r.threshold, r.metric)} and {factor}, "
            "whichever is stricter."
        )
    seen = breach_seen_at(a)
    if seen is not None:
        parts.append(f"Breach first seen at {iso(seen)}.")
    if n.kind != "firing" and a.resolved_at is not None:
        parts.append(f"Resolved at {iso(a.resolved_at)}.")
    return " ".join(parts)


def breach_seen_at(a: AlertState) -> float | None:
    """The first evaluation that saw this breach (kept through firing until resolved)."""
    return a.pending_since if a.pending_since is not None else a.fired_at


def wallboard_link(public_url: str, channel: str, queue: str | None) -> str:
    """The wallboard view of the alert's scope: the page people look at, not a JSON API."""
    query = {"channel": channel} if queue is None else {"channel": channel, "queue": queue}
    return f"{public_url}/?{urlencode(query)}"


def runbook_link(links: Links, metric: str) -> str:
    base = links.runbook_url or "docs/runbook.md"
    return f"{base}#{RUNBOOK_SECTIONS[metric]}"


def alert_annotations(n: Notice, links: Links) -> dict[str, str]:
    return {
        "summary": summary(n),
        "description": description(n),
        "runbook_url": runbook_link(links, n.rule.metric),
        "value": describe(n.alert.value, n.rule.metric),
    }


def labels(n: Notice) -> dict[str, str]:
    out = {
        "alertname": n.rule.name,
        "severity": severity_of(n.rule, n.alert.baseline),
        "metric": n.rule.metric,
        "channel": n.alert.channel,
        "service": "ccpulse",
    }
    if n.alert.queue is not None:
        out["queue"] = n.alert.queue
    return out


GROUP_BY = ("alertname", "channel", "queue")  # as deploy/alertmanager/alertmanager.yml


def group_labels(n: Notice) -> dict[str, str]:
    """One notification group per alert, channel and queue: two incidents never share a key."""
    own = labels(n)
    return {name: own[name] for name in GROUP_BY if name in own}


def group_key(n: Notice) -> str:
    """Alertmanager's own shape: `{}:{name="value", ...}`, names sorted."""
    pairs = ", ".join(f'{k}="{v}"' for k, v in sorted(group_labels(n).items()))
    return f"{{}}:{{{pairs}}}"


def alertmanager(n: Notice, links: Links) -> dict[str, Any]:
    """Alertmanager's webhook payload, version 4: one alert per message."""
    status = "firing" if n.kind == "firing" else "resolved"
    seen = breach_seen_at(n.alert)
    alert = {
        "status": status,
        "labels": labels(n),
        "annotations": alert_annotations(n, links),
        "startsAt": iso(seen if seen is not None else n.at),
        "endsAt": iso(n.at) if status == "resolved" else ZERO_TIME,
        "generatorURL": wallboard_link(links.public_url, n.alert.channel, n.alert.queue),
        "fingerprint": hashlib.sha256(n.alert.id.encode()).hexdigest()[:16],
    }
    return {
        "version": "4",
        "groupKey": group_key(n),
        "truncatedAlerts": 0,
        "status": status,
        "receiver": "ccpulse",
        "groupLabels": group_labels(n),
        "commonLabels": labels(n),
        "commonAnnotations": alert["annotations"],
        "externalURL": links.public_url,
        "alerts": [alert],
    }


def api_alert(n: Notice, links: Links, now: float) -> dict[str, Any]:
    """One alert for Alertmanager's `POST /api/v2/alerts`. A firing alert ends `hold_s` after
    it is sent unless sent again (so Alertmanager resolves it if ccpulse goes away); a resolved
    one ends when it resolved."""
    seen = breach_seen_at(n.alert)
    ends = n.at if n.kind != "firing" else now + links.hold_s
    return {
        "labels": labels(n),
        "annotations": alert_annotations(n, links),
        "startsAt": iso(seen if seen is not None else n.at),
        "endsAt": iso(ends),
        "generatorURL": wallboard_link(links.public_url, n.alert.channel, n.alert.queue),
    }


def slack(n: Notice) -> dict[str, Any]:
    severity = severity_of(n.rule, n.alert.baseline).upper()
    head = f"[FIRING] {severity}" if n.kind == "firing" else "[RESOLVED]"
    return {"text": f"{head} {summary(n)}"}


def dedup_key(n: Notice) -> str:
    """Same alert, same key: PagerDuty merges a repeated trigger and the resolve closes it."""
    return f"ccpulse/{n.alert.id}"


def pagerduty(n: Notice, routing_key: str) -> dict[str, Any]:
    if n.kind != "firing":
        return {"routing_key": routing_key, "event_action": "resolve", "dedup_key": dedup_key(n)}
    return {
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": dedup_key(n),
        "payload": {
            "summary": summary(n)[:1024],
            "source": "ccpulse",
            "severity": severity_of(n.rule, n.alert.baseline),
            "timestamp": iso(n.at),
            "component": n.alert.channel,
            "group": n.alert.queue or n.alert.channel,
            "class": n.rule.metric,
            "custom_details": {
                "value": n.alert.value,
                "limit": n.alert.limit,
                "baseline": n.alert.baseline,
                "volume": n.alert.volume,
            },
        },
    }


def payload(receiver: Receiver, n: Notice, links: Links, now: float) -> Any:
    if receiver.kind == "alertmanager":
        return [api_alert(n, links, now)]
    if receiver.kind == "webhook":
        return alertmanager(n, links)
    if receiver.kind == "slack":
        return slack(n)
    assert receiver.routing_key is not None
    return pagerduty(n, receiver.routing_key)


class Retryable(Exception):
    """The receiver may accept it later: network error, 429 or 5xx."""


class Sender:
    def __init__(
        self,
        client: httpx.AsyncClient,
        attempts: int,
        links: Links,
        now: Callable[[], float],
    ) -> None:
        self.client = client
        self.attempts = attempts
        self.links = links
        self.now = now

    async def send(self, receiver: Receiver, n: Notice) -> Outcome:
        body = payload(receiver, n, self.links, self.now())
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.attempts),
            wait=wait_exponential_jitter(initial=BACKOFF_FIRST_S, max=BACKOFF_MAX_S),
            retry=retry_if_exception_type(Retryable),
            reraise=True,
        )
        status = 0
        try:
            async for attempt in retrying:
                with attempt:
                    status = await self._post(receiver.url, body)
        except Retryable as exc:
            log.warning(
                "%s: %s not delivered after %d tries: %s", receiver.name, n.kind, self.attempts, exc
            )
            return "failed"
        if status >= 400:
            log.error("%s refused the %s notification (HTTP %d)", receiver.name, n.kind, status)
            return "refused"
        return "sent"

    async def resend(self, receiver: Receiver, firing: list[Notice]) -> bool:
        """Alertmanager forgets a firing alert that is not sent again: one best-effort POST
        of every firing alert (the next period tries again)."""
        if not firing:
            return True
        now = self.now()
        body = [api_alert(n, self.links, now) for n in firing]
        try:
            status = await self._post(receiver.url, body)
        except Retryable as exc:
            log.warning("%s: firing alerts not re-sent: %s", receiver.name, exc)
            return False
        if status >= 400:
            log.error("%s refused the firing alerts (HTTP %d)", receiver.name, status)
        return status < 400

    async def _post(self, url: str, body: Any) -> int:
        try:
            response = await self.client.post(url, json=body, timeout=TIMEOUT_S)
        except httpx.TransportError as exc:
            raise Retryable(type(exc).__name__) from exc
        if response.status_code == 429 or response.status_code >= 500:
            raise Retryable(f"HTTP {response.status_code}")
        return response.status_code
