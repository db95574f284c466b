"""What every ingest route shares: settings, the publisher, the pseudonymising key, counters."""

from __future__ import annotations

import hmac
import logging
import math
from dataclasses import dataclass, field
from typing import Any

from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry, Counter

from services.contract import IDENT_MAX, NAME_MAX, TEXT_MAX, ContactEvent, FieldError
from services.privacy import pseudonymise, pseudonymise_id, scrub, scrub_text
from services.settings import Settings

from .limits import Limits
from .publisher import BrokerUnavailable, Publisher

log = logging.getLogger("ccpulse.ingest")

RETRY_AFTER_S = 5


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
        self.limits = Limits.of(self.settings.ingest_rate_per_second, self.settings.ingest_burst)

    def too_many(self, wait_s: float, what: str) -> JSONResponse:
        """429 with Retry-After, counted."""
        self.metrics.refused.labels("rate_limited").inc()
        retry = max(1, math.ceil(wait_s))
        message = f"rate limit for {what} exceeded; retry in {retry} s"
        return refusal(
            429,
            message,
            [{"index": None, "field": "rate", "message": message}],
            headers={"Retry-After": str(retry)},
        )

    def authorised(self, authorization: str | None) -> bool:
        """`/v1/events` takes a bearer token when access control is on.

        Compared as bytes: `hmac.compare_digest` refuses a str holding non-ASCII characters (a
        500 before), and a header is whatever bytes a client sent.
        """
        if self.settings.auth == "off":
            return True
        if not authorization or not authorization.lower().startswith("bearer "):
            return False
        token = as_bytes(authorization[7:].strip())
        return any(
            hmac.compare_digest(token, as_bytes(t.get_secret_value()))
            for t in self.settings.ingest_tokens
        )

    @property
    def hash_key(self) -> bytes:
        return self.settings.hash_key.get_secret_value().encode()

    def protect(self, event: ContactEvent) -> ContactEvent:
        return protect(event, self.hash_key)

    async def accept(self, events: list[ContactEvent], source: str) -> JSONResponse:
        problems = time_errors(events, self.clock.now(), self.settings.lateness_seconds)
        if problems:
            self.metrics.rejected("invalid", len(events))
            rows = [e.model_dump() for e in problems]
            return refusal(422, f"{len(rows)} problem(s); nothing was accepted", rows)
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
        return JSONResponse({"accepted": len(events)}, status_code=202)


def protect(event: ContactEvent, key: bytes) -> ContactEvent:
    """Replace personal data by the keyed hash before anything is stored or logged.

    The customer is always hashed; a contact or agent id that is (or holds) a number or an
    address is hashed whole, so no Kafka or Redis key holds it; every other text has the numbers
    and addresses inside it hashed, and personal attributes (`customer_name`) whole.
    """
    changes: dict[str, Any] = {"id": scrub_text(event.id, key, IDENT_MAX)}
    if event.customer is not None:
        changes["customer"] = pseudonymise(event.customer, key)
    for name in ("contact", "agent"):
        value = getattr(event, name)
        if value is not None:
            changes[name] = pseudonymise_id(value, key)
    for name in ("queue", "stage", "issue", "state"):
        value = getattr(event, name)
        if value is not None:
            changes[name] = scrub_text(value, key, NAME_MAX).strip()
    if event.reason is not None:
        changes["reason"] = scrub_text(event.reason, key, TEXT_MAX)
    if event.attributes:
        changes["attributes"] = scrub(event.attributes, key, TEXT_MAX)
    return event.model_copy(update=changes)


FUTURE_LIMIT_S = 300  # well inside the aggregator's own tolerance (an hour)


def time_errors(
    events: list[ContactEvent], now_s: float, lateness_s: int, first_index: int = 0
) -> list[FieldError]:
    """One rule for every source: an event the live figures would not count is refused here,
    naming `time`, instead of being accepted and dead-lettered by the aggregator.

    Too far ahead (a sender's clock) or older than the lateness window, less a margin for the
    trip through Kafka. Older events are for `ccpulse history rebuild --export FILE`.
    """
    oldest_s = lateness_s - min(60, lateness_s // 10)
    errors = []
    for offset, event in enumerate(events):
        age = now_s - event.time.timestamp()
        if age < -FUTURE_LIMIT_S:
            message = (
                f"is {int(-age)} s in the future; the limit is {FUTURE_LIMIT_S} s "
                "(is the sender's clock right?)"
            )
        elif age > oldest_s:
            message = (
                f"is {int(age)} s old; events older than the lateness window "
                f"(CCPULSE_LATENESS_SECONDS, {oldest_s} s with the transit margin) are not "
                "counted live: load them with `ccpulse history rebuild --export FILE`"
            )
        else:
            continue
        errors.append(FieldError(index=first_index + offset, field="time", message=message))
    return errors


def as_bytes(text: str) -> bytes:
    """Header values arrive as latin-1 text; any str, lone surrogates included, becomes bytes."""
    return text.encode("utf-8", "surrogatepass")


def refusal(
    status: int,
    detail: str,
    errors: list[dict[str, Any]],
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse({"detail": detail, "errors": errors}, status_code=status, headers=headers)
