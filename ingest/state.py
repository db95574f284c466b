"""What every ingest route shares: settings, the publisher, the pseudonymising key, counters."""

from __future__ import annotations

import hmac
import logging
from dataclasses import dataclass, field
from typing import Any

from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry, Counter

from services import keys
from services.contract import ContactEvent
from services.privacy import pseudonymise, scrub
from services.settings import Settings

from .publisher import BrokerUnavailable, Publisher

log = logging.getLogger("ccpulse.ingest")

RETRY_AFTER_S = 5
MAX_ROWS = 100  # error rows in one refusal


class IngestMetrics:
    """Prometheus counters of this ingest process (`/metrics` on the ingest port)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.events = Counter(
            "ccpulse_ingest_events", "Events by outcome", ["source", "outcome"],
            registry=self.registry,
        )  # fmt: skip
        self.refused = Counter(
            "ccpulse_ingest_refused_requests", "Requests refused, by reason", ["reason"],
            registry=self.registry,
        )  # fmt: skip

    def rejected(self, reason: str, events: int) -> None:
        self.refused.labels(reason).inc()
        self.events.labels("events", "rejected").inc(events)


@dataclass
class IngestState:
    settings: Settings
    publisher: Publisher
    metrics: IngestMetrics = field(default_factory=IngestMetrics)

    def __post_init__(self) -> None:
        self.clock = self.settings.clock()

    def authorised(self, authorization: str | None) -> bool:
        """`/v1/events` takes a bearer token when access control is on."""
        if self.settings.auth == "off":
            return True
        if not authorization or not authorization.lower().startswith("bearer "):
            return False
        token = authorization[7:].strip()
        return any(
            hmac.compare_digest(token, t.get_secret_value()) for t in self.settings.ingest_tokens
        )

    @property
    def hash_key(self) -> bytes:
        return self.settings.hash_key.get_secret_value().encode()

    def protect(self, event: ContactEvent) -> ContactEvent:
        """Replace personal data by the keyed hash before anything is stored or logged."""
        changes: dict[str, Any] = {}
        if event.customer is not None:
            changes["customer"] = pseudonymise(event.customer, self.hash_key)
        if event.attributes:
            changes["attributes"] = scrub(event.attributes, self.hash_key)
        return event.model_copy(update=changes) if changes else event

    def too_old(self, events: list[ContactEvent]) -> list[int]:
        """Indexes of events older than the lateness window: the aggregator sends them to the
        dead-letter topic, never into live figures (docs/reliability.md#old-events)."""
        floor = self.clock.now() - self.settings.lateness_seconds
        return [i for i, e in enumerate(events) if e.time.timestamp() < floor]

    def _all_too_old(self, old: list[int], source: str) -> JSONResponse:
        hours = self.settings.lateness_seconds / 3600
        message = (
            f"is older than the lateness window ({hours:g} h): live figures would never count "
            "it; import past data with `ccpulse history import`"
        )
        self.metrics.refused.labels("too_old").inc()
        self.metrics.events.labels(source, "too_old").inc(len(old))
        rows = [{"index": i, "field": "time", "message": message} for i in old[:MAX_ROWS]]
        return refusal(422, f"time: every event {message}", rows)

    async def accept(self, events: list[ContactEvent], source: str) -> JSONResponse:
        old = self.too_old(events)
        if events and len(old) == len(events):
            return self._all_too_old(old, source)
        protected = [self.protect(e) for e in events]
        try:
            await self.publisher.publish(protected)
        except BrokerUnavailable as exc:
            self.metrics.refused.labels("broker_unavailable").inc()
            log.warning("refused %d events: %s", len(events), exc)
            return JSONResponse(
                {
                    "detail": "the event broker is unavailable; retry later",
                    "retry_after": RETRY_AFTER_S,
                },
                status_code=503,
                headers={"Retry-After": str(RETRY_AFTER_S)},
            )
        self.metrics.events.labels(source, "accepted").inc(len(events))
        body: dict[str, Any] = {"accepted": len(events)}
        if old:
            self.metrics.events.labels(source, "too_old").inc(len(old))
            body.update(too_old_answer(old, self.settings.lateness_seconds))
        return JSONResponse(body, status_code=202)


def too_old_answer(old: list[int], lateness_s: int) -> dict[str, Any]:
    """What a 202 says when some events are too old for live figures, and where they go."""
    return {
        "too_old": len(old),
        "too_old_detail": (
            f"{len(old)} event(s) older than the lateness window ({lateness_s / 3600:g} h) "
            f"go to the dead-letter topic {keys.TOPIC_DLQ}, not into live figures; import past "
            "data with `ccpulse history import`"
        ),
    }


def refusal(status: int, detail: str, errors: list[dict[str, Any]]) -> JSONResponse:
    return JSONResponse({"detail": detail, "errors": errors}, status_code=status)
