"""Notifications: Alertmanager webhook v4, Slack incoming webhooks, PagerDuty Events API v2.

Each receiver gets each firing and each resolve once: the outbox (store.py) holds one entry per
notification and receiver until it is delivered; here a delivery is retried with exponential
backoff and jitter on network errors, 429 and 5xx, and dropped on any other 4xx (the receiver
refuses it: sending it again would not change that).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from typing import Any, Literal

import httpx
from tenacity import (
    AsyncRetrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from services.settings import Settings

from ..live_reader import iso
from .alert_state import Notice

log = logging.getLogger("ccpulse.alerts")

Kind = Literal["webhook", "slack", "pagerduty"]
Outcome = Literal["sent", "refused", "failed"]
ZERO_TIME = "0001-01-01T00:00:00Z"  # Alertmanager's "no end yet"
BACKOFF_FIRST_S = 0.5
BACKOFF_MAX_S = 8.0
TIMEOUT_S = 5.0


@dataclass(frozen=True, slots=True)
class Receiver:
    name: str  # stable per configuration slot: "webhook:0", "slack:1", "pagerduty"
    kind: Kind
    url: str
    routing_key: str | None = None


def receivers(settings: Settings) -> list[Receiver]:
    out = [
        Receiver(f"webhook:{i}", "webhook", u) for i, u in enumerate(settings.alert_webhook_urls)
    ]
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
    return f"{value:.0f}"


def summary(n: Notice) -> str:
    """One line a person on call understands without opening anything."""
    a, r = n.alert, n.rule
    scope = a.channel if a.queue is None else f"{a.channel}/{a.queue}"
    sign = ">" if r.comparison == "gt" else "<"
    figure = r.metric.replace("_", " ")
    text = (
        f"{r.name} on {scope}: {figure} {describe(a.value, r.metric)} {sign} "
        f"{describe(a.limit, r.metric)} ({a.volume} contacts, last "
        f"{r.window_seconds // 60} min)"
    )
    return text if n.kind == "firing" else f"{text}; back to normal"


def labels(n: Notice) -> dict[str, str]:
    out = {
        "alertname": n.rule.name,
        "severity": n.rule.severity,
        "metric": n.rule.metric,
        "channel": n.alert.channel,
        "service": "ccpulse",
    }
    if n.alert.queue is not None:
        out["queue"] = n.alert.queue
    return out


def alertmanager(n: Notice, external_url: str) -> dict[str, Any]:
    """Alertmanager's webhook payload, version 4: one alert per message."""
    status = "firing" if n.kind == "firing" else "resolved"
    fired = n.alert.fired_at if n.alert.fired_at is not None else n.at
    alert = {
        "status": status,
        "labels": labels(n),
        "annotations": {"summary": summary(n), "value": describe(n.alert.value, n.rule.metric)},
        "startsAt": iso(fired),
        "endsAt": iso(n.at) if status == "resolved" else ZERO_TIME,
        "generatorURL": f"{external_url}/api/v1/alerts",
        "fingerprint": hashlib.sha256(n.alert.id.encode()).hexdigest()[:16],
    }
    return {
        "version": "4",
        "groupKey": f'{{}}:{{alertname="{n.rule.name}"}}',
        "truncatedAlerts": 0,
        "status": status,
        "receiver": "ccpulse",
        "groupLabels": {"alertname": n.rule.name},
        "commonLabels": labels(n),
        "commonAnnotations": alert["annotations"],
        "externalURL": external_url,
        "alerts": [alert],
    }


def slack(n: Notice) -> dict[str, Any]:
    head = f"[FIRING] {n.rule.severity.upper()}" if n.kind == "firing" else "[RESOLVED]"
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
            "severity": n.rule.severity,
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


def payload(receiver: Receiver, n: Notice, external_url: str) -> dict[str, Any]:
    if receiver.kind == "webhook":
        return alertmanager(n, external_url)
    if receiver.kind == "slack":
        return slack(n)
    assert receiver.routing_key is not None
    return pagerduty(n, receiver.routing_key)


class Retryable(Exception):
    """The receiver may accept it later: network error, 429 or 5xx."""


class Sender:
    def __init__(self, client: httpx.AsyncClient, attempts: int, external_url: str) -> None:
        self.client = client
        self.attempts = attempts
        self.external_url = external_url

    async def send(self, receiver: Receiver, n: Notice) -> Outcome:
        body = payload(receiver, n, self.external_url)
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

    async def _post(self, url: str, body: dict[str, Any]) -> int:
        try:
            response = await self.client.post(url, json=body, timeout=TIMEOUT_S)
        except httpx.TransportError as exc:
            raise Retryable(type(exc).__name__) from exc
        if response.status_code == 429 or response.status_code >= 500:
            raise Retryable(f"HTTP {response.status_code}")
        return response.status_code
