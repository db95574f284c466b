"""What every ingest route shares: settings, the publisher, the pseudonymising key, counters."""

from __future__ import annotations

import hmac
import json
import logging
import math
from dataclasses import dataclass, field
from typing import Any

from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry, Counter, ProcessCollector
from redis.asyncio import Redis

from services import keys, problems
from services.contract import IDENT_MAX, NAME_MAX, TEXT_MAX, ContactEvent, FieldError
from services.privacy import pseudonymise, pseudonymise_id, scrub, scrub_text
from services.settings import Settings

from . import admin_keys
from .edge import broker_unavailable
from .limits import Limits
from .publisher import BrokerUnavailable, Publisher

log = logging.getLogger("ccpulse.ingest")

MAX_ROWS = 100  # error rows in one refusal


class IngestMetrics:
    """Prometheus counters of this ingest process (`/metrics` on the ingest port)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)  # process_* (RSS, CPU, open fds) of this process
        self.events = Counter(
            "ccpulse_ingest_events",
            "Events by outcome",
            ["source", "outcome"],
            registry=self.registry,
        )
        self.refused = Counter(
            "ccpulse_ingest_refused_requests",
            "Requests refused, by reason",
            ["reason"],
            registry=self.registry,
        )

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
        self._redis: Redis | None = None
        self._accepted: dict[str, Counter] = {}  # source -> its counter of accepted events

    @property
    def redis(self) -> Redis:
        """Only history imports use Redis (admin keys, the job's state): connected on first use,
        so live webhooks never depend on it."""
        if self._redis is None:
            self._redis = admin_keys.connect(self.settings)
        return self._redis

    async def close(self) -> None:
        await self.publisher.close()
        if self._redis is not None:
            await self._redis.aclose()

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

    def protect_all(self, events: list[ContactEvent]) -> list[ContactEvent]:
        key = self.hash_key  # once per request, not per event
        return [protect(e, key) for e in events]

    def too_old(self, events: list[ContactEvent]) -> list[int]:
        """Indexes of events too old for live figures; they go to the dead-letter topic, never
        into live figures (docs/reliability.md#old-events)."""
        return self._too_old([e.time.timestamp() for e in events])

    def _too_old(self, stamps: list[float]) -> list[int]:
        floor = self.clock.now() - live_age_limit_s(self.settings.lateness_seconds)
        return [i for i, stamp in enumerate(stamps) if stamp < floor]

    def _all_too_old(self, old: list[int], source: str) -> JSONResponse:
        hours = self.settings.lateness_seconds / 3600
        message = (
            f"is older than the lateness window ({hours:g} h): live figures would never count "
            "it; import past data with `ccpulse history import`"
        )
        self.metrics.refused.labels("too_old").inc()
        self.metrics.events.labels(source, "too_old").inc(len(old))
        rows = [{"index": i, "field": "time", "message": message} for i in old[:MAX_ROWS]]
        return problems.problem(422, f"time: every event {message}", rows, too_old=len(old))

    async def accept(self, events: list[ContactEvent], source: str) -> JSONResponse:
        stamps = [e.time.timestamp() for e in events]  # once: pydantic's time zone is slow
        problems = future_errors(stamps, self.clock.now())
        if problems:
            self.metrics.rejected("invalid", len(events))
            rows = [e.model_dump() for e in problems]
            return refusal(422, f"{len(rows)} problem(s); nothing was accepted", rows)
        old = self._too_old(stamps)
        if events and len(old) == len(events):
            return self._all_too_old(old, source)
        protected = self.protect_all(events)
        aged = set(old)
        try:
            await self.publisher.publish([e for i, e in enumerate(protected) if i not in aged])
            if aged:  # straight to the dead-letter topic: the live figures would never count them
                await self.publisher.send_all(
                    self.settings.topic(keys.TOPIC_DLQ),
                    [(None, too_old_letter(protected[i], self.settings)) for i in old],
                )
        except BrokerUnavailable as exc:
            self.metrics.refused.labels("broker_unavailable").inc()
            log.warning("refused %d events: %s", len(events), exc)
            return broker_unavailable()
        counter = self._accepted.get(source)
        if counter is None:  # `labels` looks the child up under a lock on every call
            counter = self._accepted[source] = self.metrics.events.labels(source, "accepted")
        counter.inc(len(events))
        if not old and len(events) == 1:
            return accepted_one()
        body: dict[str, Any] = {"accepted": len(events)}
        if old:
            self.metrics.events.labels(source, "too_old").inc(len(old))
            body.update(too_old_answer(old, self.settings))
        return JSONResponse(body, status_code=202)


_ACCEPTED_ONE = JSONResponse({"accepted": 1}, status_code=202)


def accepted_one() -> JSONResponse:
    """The 202 of a single event, as `JSONResponse({"accepted": 1}, status_code=202)` renders it,
    without rendering it again: most webhooks carry one event. Its own header list, which an
    outer middleware may extend."""
    response = JSONResponse.__new__(JSONResponse)
    response.status_code = 202
    response.background = None
    response.body = _ACCEPTED_ONE.body
    response.raw_headers = list(_ACCEPTED_ONE.raw_headers)
    return response


def too_old_answer(old: list[int], settings: Settings) -> dict[str, Any]:
    """What a 202 says when some events are too old for live figures, and where they go."""
    lateness_s, dlq = settings.lateness_seconds, settings.topic(keys.TOPIC_DLQ)
    return {
        "too_old": len(old),
        "too_old_detail": (
            f"{len(old)} event(s) older than the lateness window ({lateness_s / 3600:g} h) "
            f"go to the dead-letter topic {dlq}, not into live figures; import past "
            "data with `ccpulse history import`"
        ),
    }


def protect(event: ContactEvent, key: bytes) -> ContactEvent:
    """Replace personal data by the keyed hash before anything is stored or logged.

    The customer is always hashed; a contact or agent id that is (or holds) a number or an
    address is hashed whole, so no Kafka or Redis key holds it; every other text has the numbers
    and addresses inside it hashed, and personal attributes (`customer_name`) whole.
    """
    changes: dict[str, Any] = {"id": scrub_text(event.id, key, IDENT_MAX)}
    # field by field, not by name lists and getattr: this runs for every event accepted
    if (customer := event.customer) is not None:
        changes["customer"] = pseudonymise(customer, key)
    if (contact := event.contact) is not None:
        changes["contact"] = pseudonymise_id(contact, key)
    if (agent := event.agent) is not None:
        changes["agent"] = pseudonymise_id(agent, key)
    if (queue := event.queue) is not None:
        changes["queue"] = scrub_text(queue, key, NAME_MAX).strip()
    if (stage := event.stage) is not None:
        changes["stage"] = scrub_text(stage, key, NAME_MAX).strip()
    if (issue := event.issue) is not None:
        changes["issue"] = scrub_text(issue, key, NAME_MAX).strip()
    if (state := event.state) is not None:
        changes["state"] = scrub_text(state, key, NAME_MAX).strip()
    if event.reason is not None:
        changes["reason"] = scrub_text(event.reason, key, TEXT_MAX)
    if event.attributes:
        changes["attributes"] = scrub(event.attributes, key, TEXT_MAX)
    return event.replaced(changes)


FUTURE_LIMIT_S = 300  # well inside the aggregator's own tolerance (an hour)


def live_age_limit_s(lateness_s: int) -> int:
    """The oldest age the live figures take: the lateness window less a margin for the trip
    through Kafka, so an accepted event is never dead-lettered by the aggregator on arrival."""
    return lateness_s - min(60, lateness_s // 10)


def time_errors(events: list[ContactEvent], now_s: float, first_index: int = 0) -> list[FieldError]:
    """Events too far ahead (a sender's clock is wrong) refuse the batch, naming `time`; too old
    ones are decided by `IngestState.too_old` (counted in the answer, or 422 when all are)."""
    return future_errors([e.time.timestamp() for e in events], now_s, first_index)


def future_errors(stamps: list[float], now_s: float, first_index: int = 0) -> list[FieldError]:
    """`time_errors` of events whose times (epoch seconds) are already known."""
    errors = []
    for offset, stamp in enumerate(stamps):
        ahead = stamp - now_s
        if ahead > FUTURE_LIMIT_S:
            message = (
                f"is {int(ahead)} s in the future; the limit is {FUTURE_LIMIT_S} s "
                "(is the sender's clock right?)"
            )
            errors.append(FieldError(index=first_index + offset, field="time", message=message))
    return errors


def too_old_letter(event: ContactEvent, settings: Settings) -> bytes:
    """A dead letter in the aggregator's shape, written by the ingest (no partition or offset)."""
    lateness_s, topic = settings.lateness_seconds, settings.topic(keys.TOPIC_EVENTS)
    reason = f"too_old: older than the lateness window ({lateness_s / 3600:g} h) at ingest"
    value = event.to_wire().decode()
    body = {"reason": reason, "topic": topic, "partition": None, "offset": None}
    return json.dumps({**body, "value": value}).encode()


def as_bytes(text: str) -> bytes:
    """Header values arrive as latin-1 text; any str, lone surrogates included, becomes bytes."""
    return text.encode("utf-8", "surrogatepass")


def refusal(
    status: int,
    detail: str,
    errors: list[dict[str, Any]],
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """A problem+json answer (services.problems): `detail` starts with the field at fault."""
    return problems.problem(status, detail, errors, headers=headers)
