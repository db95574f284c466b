"""Vendor webhook routes: each checks its signature, maps with a pure adapter, then publishes.

Every route does the same four steps: refuse a bad or missing signature (401, counted) when the
source has a secret configured; keep the payload, personal values hashed, on `ccpulse.raw` so a
replay can re-map it; map it with the vendor's adapter (400 naming the field when malformed); and
publish the events, answering 2xx only once the broker has them. A well-formed vendor event we do
not use is answered 2xx and counted as ignored, so the vendor does not retry it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import SecretStr

from services import keys, problems
from services.apikeys import is_loopback
from services.settings import Settings
from services.sources import sources_of

from . import jsonsafe
from . import signatures as sig
from .adapters import registry as reg
from .adapters.amazon_connect import is_firehose
from .adapters.base import Mapped, PayloadError
from .adapters.cloudevents import binary_event
from .publisher import BrokerUnavailable
from .routes import BodyError, read_limited
from .state import IngestState, broker_unavailable, refusal, too_old_answer

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
    settings = _state(request).settings
    try:
        async with asyncio.timeout(settings.ingest_body_timeout_seconds):
            return await read_limited(request, settings.max_body_bytes)
    except TimeoutError as exc:
        raise Refused(408, "body", "not received within the timeout", "slow_body") from exc
    except BodyError as exc:
        raise Refused(exc.status, exc.field, exc.message, "body") from exc


def _json(body: bytes) -> Any:
    try:
        return jsonsafe.loads(body.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise Refused(400, "body", f"is not UTF-8 (byte {exc.start})", "malformed") from exc
    except jsonsafe.JsonRefused as exc:
        raise Refused(400, exc.field, exc.message, "malformed") from exc


def _form(body: bytes) -> list[tuple[str, str]]:
    try:
        return parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=bool(body))
    except (UnicodeDecodeError, ValueError) as exc:
        raise Refused(400, "body", "is not a form-encoded body", "malformed") from exc


def _check(verdict: sig.Verdict, header: str) -> None:
    if verdict is not sig.Verdict.OK:
        raise Refused(401, header, f"signature {verdict.value}", f"signature_{verdict.value}")


def _secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value is not None else None


async def _deliver(
    request: Request, source: str, payload: Any, query: dict[str, str] | None
) -> Mapped | Response:
    """Keep the raw payload, then map it; an error response instead when either step fails."""
    state = _state(request)
    received_at = _now(request)
    record = reg.raw_record(source, payload, received_at, state.hash_key, query)
    try:
        await state.publisher.send_all(keys.TOPIC_RAW, [(source.encode(), record)])
    except BrokerUnavailable as exc:
        return _unavailable(state, exc)
    try:
        return reg.dispatch(source, payload, received_at, sources_of(state.settings), query)
    except PayloadError as exc:
        return _refuse(state, source, Refused(400, exc.field, exc.message, "malformed"))


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
        body.update(too_old_answer(old, state.settings.lateness_seconds))
    return JSONResponse(body, status_code=202 if mapped.events else 200)


async def _handle(
    request: Request, source: str, payload: Any, query: dict[str, str] | None = None
) -> Response:
    """Called once the request verified: only now is it charged to its source's budget."""
    wait = _state(request).limits.admit(request.url.path)
    if wait > 0:
        raise RateLimited(wait)
    outcome = await _deliver(request, source, payload, query)
    return outcome if isinstance(outcome, Response) else await _publish(request, source, outcome)


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
    request: Request, source: str, run: Callable[[], Awaitable[Response]]
) -> Response:
    """Run a route body; a `Refused` becomes its counted error response.

    A failed verification (401) is charged to the client's address, never to the source, and
    is answered 429 once that client's failure budget is spent.
    """
    state = _state(request)
    try:
        _require_secret(request, source)
        response = await run()
    except RateLimited as exc:
        return state.too_many(exc.wait_s, request.url.path)
    except Refused as exc:
        if exc.status == 401:
            wait = state.limits.failed(request.client.host if request.client else None)
            if wait > 0:
                return state.too_many(wait, "failed verifications from this client")
        return problems.at(_refuse(state, source, exc), request.url.path)
    return problems.at(response, request.url.path)


SECRET_OF = {
    reg.TWILIO_VOICE: "twilio_auth_token",
    reg.TWILIO_TASKROUTER: "twilio_auth_token",
    reg.AMAZON_CONNECT: "amazon_connect_token",
    reg.CHATWOOT: "chatwoot_secret",
    reg.ZENDESK: "zendesk_secret",
    reg.CLOUDEVENTS: "cloudevents_token",
    reg.ASTERISK: "asterisk_token",
}


def _require_secret(request: Request, source: str) -> None:
    """With access control on, a source without a configured secret is not accepted at all."""
    settings = _state(request).settings
    name = SECRET_OF.get(source)
    if settings.auth == "off" or name is None:
        return
    if getattr(sources_of(settings), name) is None:
        variable = f"CCPULSE_SOURCES__{name.upper()}"
        message = f"this source is not configured: set {variable}"
        raise Refused(401, variable, message, "unconfigured")


# --- Twilio ---


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


def _twilio_url(request: Request, settings: Settings) -> str:
    """The configured public URL with this path and query; on loopback, the request's URL."""
    base = public_url(settings)
    if base is None:
        return str(request.url)
    query = f"?{request.url.query}" if request.url.query else ""
    return base + request.url.path + query


async def _twilio(request: Request, source: str) -> Response:
    body = await _body(request)
    options = sources_of(_state(request).settings)
    is_json = "json" in request.headers.get("content-type", "")
    pairs = [] if is_json else _form(body)
    token = _secret(options.twilio_auth_token)
    if token is not None:
        signature = request.headers.get("x-twilio-signature")
        url = _twilio_url(request, _state(request).settings)
        _check(sig.check_twilio(token, url, signature, pairs, body), "X-Twilio-Signature")
    payload = _json(body) if is_json else dict(pairs)
    query = {k: v for k, v in request.query_params.items() if k != "bodySHA256"}
    return await _handle(request, source, payload, query)


@router.post(
    "/webhooks/twilio/voice", summary="Twilio Voice status callbacks and <Enqueue> results"
)
async def twilio_voice(request: Request) -> Response:
    return await _guarded(request, reg.TWILIO_VOICE, lambda: _twilio(request, reg.TWILIO_VOICE))


async def _twilio_get(request: Request, source: str) -> Response:
    """A callback configured with method GET: the parameters are the query string, and the
    signature covers the full URL with it and nothing else (Twilio's documented rule)."""
    options = sources_of(_state(request).settings)
    token = _secret(options.twilio_auth_token)
    if token is not None:
        signature = request.headers.get("x-twilio-signature")
        url = _twilio_url(request, _state(request).settings)
        _check(sig.check_twilio(token, url, signature), "X-Twilio-Signature")
    params = dict(request.query_params)
    return await _handle(request, source, params, params)


@router.get("/webhooks/twilio/voice", summary="Twilio Voice status callbacks sent with GET")
async def twilio_voice_get(request: Request) -> Response:
    source = reg.TWILIO_VOICE
    return await _guarded(request, source, lambda: _twilio_get(request, source))


@router.post("/webhooks/twilio/taskrouter", summary="Twilio TaskRouter event callbacks")
async def twilio_taskrouter(request: Request) -> Response:
    source = reg.TWILIO_TASKROUTER
    return await _guarded(request, source, lambda: _twilio(request, source))


# --- Amazon Connect ---

CONNECT_TOKEN_HEADERS = ("x-amz-firehose-access-key", "x-api-key", "authorization")


async def _connect(request: Request) -> Response:
    body = await _body(request)
    token = _secret(sources_of(_state(request).settings).amazon_connect_token)
    if token is not None:
        presented = next(
            (request.headers[h] for h in CONNECT_TOKEN_HEADERS if h in request.headers), None
        )
        _check(sig.check_token(token, presented), "X-Amz-Firehose-Access-Key")
    payload = _json(body)
    response = await _handle(request, reg.AMAZON_CONNECT, payload)
    return _firehose_answer(payload, response, _now(request)) if is_firehose(payload) else response


def _firehose_answer(payload: Any, response: Response, now: datetime) -> Response:
    """Firehose HTTP endpoints must echo the requestId, with an errorMessage when refused."""
    answer: dict[str, Any] = {
        "requestId": payload.get("requestId"),
        "timestamp": int(now.timestamp() * 1000),
    }
    if response.status_code >= 300:
        answer["errorMessage"] = bytes(response.body).decode(errors="replace")[:500]
    return JSONResponse(
        answer, status_code=200 if response.status_code < 300 else response.status_code
    )


@router.post(
    "/webhooks/amazon-connect", summary="Amazon Connect contact events and contact records"
)
async def amazon_connect(request: Request) -> Response:
    return await _guarded(request, reg.AMAZON_CONNECT, lambda: _connect(request))


# --- Chatwoot and Zendesk: timestamped HMAC signatures ---


async def _chatwoot(request: Request) -> Response:
    body = await _body(request)
    options = sources_of(_state(request).settings)
    secret = _secret(options.chatwoot_secret)
    if secret is not None:
        h = request.headers
        stamp, signature = h.get("x-chatwoot-timestamp"), h.get("x-chatwoot-signature")
        window = options.replay_window_seconds
        verdict = sig.check_chatwoot(secret, stamp, signature, body, _now(request), window)
        _check(verdict, "X-Chatwoot-Signature")
    return await _handle(request, reg.CHATWOOT, _json(body))


@router.post("/webhooks/chatwoot", summary="Chatwoot webhooks")
async def chatwoot(request: Request) -> Response:
    return await _guarded(request, reg.CHATWOOT, lambda: _chatwoot(request))


async def _zendesk(request: Request) -> Response:
    body = await _body(request)
    options = sources_of(_state(request).settings)
    secret = _secret(options.zendesk_secret)
    if secret is not None:
        h = request.headers
        stamp = h.get("x-zendesk-webhook-signature-timestamp")
        signature = h.get("x-zendesk-webhook-signature")
        window = options.replay_window_seconds
        verdict = sig.check_zendesk(secret, stamp, signature, body, _now(request), window)
        _check(verdict, "X-Zendesk-Webhook-Signature")
    return await _handle(request, reg.ZENDESK, _json(body))


@router.post("/webhooks/zendesk", summary="Zendesk webhooks (ticket events and triggers)")
async def zendesk(request: Request) -> Response:
    return await _guarded(request, reg.ZENDESK, lambda: _zendesk(request))


# --- CloudEvents and the Asterisk queue_log follower: shared bearer tokens ---


def _bearer(request: Request, secret: SecretStr | None) -> None:
    token = _secret(secret)
    if token is not None:
        _check(sig.check_token(token, request.headers.get("authorization")), "Authorization")


async def _cloudevents(request: Request) -> Response:
    body = await _body(request)
    _bearer(request, sources_of(_state(request).settings).cloudevents_token)
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if "ce-specversion" in request.headers:
        headers = {k.lower(): v for k, v in request.headers.items()}
        try:
            payload: Any = binary_event(headers, body, content_type or "application/json")
        except PayloadError as exc:
            raise Refused(400, exc.field, exc.message, "malformed") from exc
    elif "json" in content_type or not content_type:
        payload = _json(body)
    else:
        raise Refused(
            415, "Content-Type", f"{content_type!r} is not a CloudEvents JSON mode", "body"
        )
    if content_type == "application/cloudevents-batch+json" and not isinstance(payload, list):
        raise Refused(400, "body", "a batch must be a JSON array", "malformed")
    return await _handle(request, reg.CLOUDEVENTS, payload)


@router.post("/v1/cloudevents", summary="CloudEvents 1.0 whose data is the ccpulse event contract")
async def cloudevents(request: Request) -> Response:
    return await _guarded(request, reg.CLOUDEVENTS, lambda: _cloudevents(request))


async def _queue_log(request: Request) -> Response:
    body = await _body(request)
    _bearer(request, sources_of(_state(request).settings).asterisk_token)
    try:
        lines = [line for line in body.decode("utf-8").splitlines() if line.strip()]
    except UnicodeDecodeError as exc:
        raise Refused(400, "body", f"is not UTF-8 (byte {exc.start})", "malformed") from exc
    if not lines:
        raise Refused(400, "body", "holds no queue_log line", "malformed")
    return await _handle(request, reg.ASTERISK, lines)


@router.post("/webhooks/asterisk/queue-log", summary="Asterisk queue_log lines (from the follower)")
async def asterisk_queue_log(request: Request) -> Response:
    return await _guarded(request, reg.ASTERISK, lambda: _queue_log(request))
