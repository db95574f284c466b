"""Vendor webhook routes, generated from the vendor records (`ingest.adapters.registry.VENDORS`).

Every route does the same steps, each vendor's part taken from its record: refuse a bad or missing
signature (401, counted) when the source has a secret configured; keep the payload, personal values
hashed, on `ccpulse.raw` so a replay can re-map it; map it with the vendor's adapter (400 naming the
field when malformed); and publish the events, answering 2xx only once the broker has them. A
well-formed vendor event we do not use is answered 2xx and counted as ignored, so the vendor does
not retry it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import SecretStr

from services import keys, problems
from services.apikeys import is_loopback
from services.settings import Settings
from services.sources import sources_of

from . import signatures as sig
from .adapters import registry as reg
from .adapters.base import Mapped, PayloadError
from .adapters.vendor import Decoded, Delivery, Vendor
from .edge import BodyError, broker_unavailable, read_body
from .publisher import BrokerUnavailable
from .state import IngestState, refusal, too_old_answer

router = APIRouter(tags=["webhooks"])
log = logging.getLogger("ccpulse.ingest")


class RateLimited(Exception):
    """A verified source over its budget."""

    def __init__(self, wait_s: float) -> None:
        super().__init__(f"retry in {wait_s:.1f} s")
        self.wait_s = wait_s


class Refused(Exception):
    """A request answered with an error before anything is published."""

    def __init__(self, status: int, field: str, message: str, reason: str) -> None:
        super().__init__(message)
        self.status, self.field, self.message, self.reason = status, field, message, reason


def _state(request: Request) -> IngestState:
    state: IngestState = request.app.state.ingest
    return state


def _now(request: Request) -> datetime:
    return datetime.fromtimestamp(_state(request).clock.now(), UTC)


async def _body(request: Request) -> bytes:
    """The body within its size limit and the body timeout (a slow sender holds no worker)."""
    try:
        return await read_body(request, _state(request).settings)
    except TimeoutError as exc:
        raise Refused(408, "body", "not received within the timeout", "slow_body") from exc
    except BodyError as exc:
        raise Refused(exc.status, exc.field, exc.message, "body") from exc


def _malformed(exc: PayloadError) -> Refused:
    return Refused(exc.status, exc.field, exc.message, exc.reason)


def _check(verdict: sig.Verdict, header: str) -> None:
    if verdict is not sig.Verdict.OK:
        raise Refused(401, header, f"signature {verdict.value}", f"signature_{verdict.value}")


def _secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value is not None else None


async def _deliver(request: Request, vendor: Vendor, decoded: Decoded) -> Mapped | Response:
    """Keep the raw payload, then map it; an error response instead when either step fails."""
    state, source = _state(request), vendor.source
    received_at = _now(request)
    record = reg.raw_record(source, decoded.payload, received_at, state.hash_key, decoded.query)
    try:
        topic = state.settings.topic(keys.TOPIC_RAW)
        await state.publisher.send_all(topic, [(source.encode(), record)])
    except BrokerUnavailable as exc:
        return _unavailable(state, exc)
    options = sources_of(state.settings)
    try:
        return vendor.map(decoded.payload, received_at, options, decoded.query)
    except PayloadError as exc:
        return _refuse(state, source, _malformed(exc))


async def _publish(request: Request, source: str, mapped: Mapped) -> Response:
    """202 once the broker has the events; 200 when the payload held only unused events."""
    state = _state(request)
    if mapped.events:
        response = await state.accept(mapped.events, source=source)
        if response.status_code != 202:
            return response
    if mapped.ignored:
        state.metrics.events.labels(source, "ignored").inc(mapped.ignored)
    body: dict[str, Any] = {"accepted": len(mapped.events), "ignored": mapped.ignored}
    if old := state.too_old(mapped.events):
        body.update(too_old_answer(old, state.settings))
    return JSONResponse(body, status_code=202 if mapped.events else 200)


async def _handle(request: Request, vendor: Vendor, decoded: Decoded) -> Response:
    """Called once the request verified: only now is it charged to its source's budget."""
    wait = _state(request).limits.admit(request.url.path)
    if wait > 0:
        raise RateLimited(wait)
    outcome = await _deliver(request, vendor, decoded)
    if isinstance(outcome, Response):
        return outcome
    return await _publish(request, vendor.source, outcome)


def _refuse(state: IngestState, source: str, exc: Refused) -> JSONResponse:
    state.metrics.refused.labels(exc.reason).inc()
    state.metrics.events.labels(source, "rejected").inc()
    detail = f"{exc.field}: {exc.message}"
    return refusal(
        exc.status, detail, [{"index": None, "field": exc.field, "message": exc.message}]
    )


def _unavailable(state: IngestState, exc: BrokerUnavailable) -> JSONResponse:
    state.metrics.refused.labels("broker_unavailable").inc()
    log.warning("refused a webhook: %s", exc)
    return broker_unavailable()


async def _guarded(
    request: Request, vendor: Vendor, run: Callable[[], Awaitable[Response]]
) -> Response:
    """Run a route body; a `Refused` becomes its counted error response.

    A failed verification (401) is charged to the client's address, never to the source, and
    is answered 429 once that client's failure budget is spent.
    """
    state = _state(request)
    try:
        _require_secret(request, vendor)
        response = await run()
    except RateLimited as exc:
        return state.too_many(exc.wait_s, request.url.path)
    except Refused as exc:
        if exc.status == 401:
            wait = state.limits.failed(request.client.host if request.client else None)
            if wait > 0:
                return state.too_many(wait, "failed verifications from this client")
        return problems.at(_refuse(state, vendor.source, exc), request.url.path)
    return problems.at(response, request.url.path)


def _require_secret(request: Request, vendor: Vendor) -> None:
    """With access control on, a source without a configured secret is not accepted at all."""
    settings = _state(request).settings
    if settings.auth == "off":
        return
    if getattr(sources_of(settings), vendor.secret) is None:
        variable = f"CCPULSE_SOURCES__{vendor.secret.upper()}"
        message = f"this source is not configured: set {variable}"
        raise Refused(401, variable, message, "unconfigured")


# --- the steps each record fills in: delivery, verification, decoding, the vendor's answer ---


async def _delivery(request: Request) -> Delivery:
    """A GET carries no body: its parameters are the query string."""
    settings = _state(request).settings
    body = b"" if request.method == "GET" else await _body(request)
    return Delivery(
        method=request.method,
        headers=request.headers,
        body=body,
        url=_signed_url(request, settings),
        query=request.query_params,
        now=_now(request),
        options=sources_of(settings),
    )


def _verified_and_decoded(vendor: Vendor, delivery: Delivery) -> Decoded:
    """Verified first, so a bad signature is a 401 whatever the payload, then decoded; a verifier
    that reads the body (Twilio's signed form) answers 400 for one it cannot parse."""
    secret = _secret(getattr(delivery.options, vendor.secret))
    try:
        if secret is not None:
            _check(vendor.verify(secret, delivery), vendor.signature_header)
        return vendor.decode(delivery)
    except PayloadError as exc:
        raise _malformed(exc) from exc


async def _receive(request: Request, vendor: Vendor) -> Response:
    delivery = await _delivery(request)
    decoded = _verified_and_decoded(vendor, delivery)
    response = await _handle(request, vendor, decoded)
    if vendor.answer is None:
        return response
    own = vendor.answer(decoded.payload, response.status_code, bytes(response.body), _now(request))
    return response if own is None else JSONResponse(own[1], status_code=own[0])


def _endpoint(vendor: Vendor) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        return await _guarded(request, vendor, lambda: _receive(request, vendor))

    return endpoint


def _add_routes(vendors: tuple[Vendor, ...]) -> None:
    for vendor in vendors:
        for route in vendor.routes:
            router.add_api_route(
                vendor.path,
                _endpoint(vendor),
                methods=[route.method],
                name=route.name,
                summary=route.summary,
            )


_add_routes(reg.VENDORS)


# --- the URL Twilio signs ---


def public_url(settings: Settings) -> str | None:
    """The base URL vendors call: CCPULSE_INGEST_PUBLIC_URL (or the older sources setting)."""
    value = settings.ingest_public_url or sources_of(settings).twilio_public_url
    return value.rstrip("/") if value else None


def check_public_url(settings: Settings) -> None:
    """Off loopback, Twilio signatures are verified against the configured public URL only:
    refuse to start without it rather than trust the client's Host header."""
    base = public_url(settings)
    if base is not None and urlsplit(base).scheme not in ("http", "https"):
        raise ConfigError(f"CCPULSE_INGEST_PUBLIC_URL must be an http(s) URL, not {base!r}")
    twilio = sources_of(settings).twilio_auth_token is not None
    if base is None and twilio and not is_loopback(settings.ingest_host):
        raise ConfigError(
            "CCPULSE_INGEST_PUBLIC_URL is required when CCPULSE_INGEST_HOST is not loopback "
            f"({settings.ingest_host}) and a Twilio auth token is set: Twilio signs the URL "
            "it called, which the Host header cannot be trusted to tell"
        )


class ConfigError(ValueError):
    """A setting the ingest refuses to start with; the message names it."""


def _signed_url(request: Request, settings: Settings) -> str:
    """The configured public URL with this path and query; on loopback, the request's URL."""
    base = public_url(settings)
    if base is None:
        return str(request.url)
    query = f"?{request.url.query}" if request.url.query else ""
    return base + request.url.path + query
