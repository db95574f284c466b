"""Optional OpenTelemetry traces: webhook -> Kafka -> aggregator step -> websocket push.

Off unless `CCPULSE_OTEL_ENDPOINT` names an OTLP/HTTP collector: then every process exports its
spans there in batches. The trace context crosses Kafka in each record's `traceparent` header and
Redis in the change notice, so one webhook's trace reaches the push that showed it. A batch
consumes many webhooks' events: its span *links* to them (OpenTelemetry's messaging conventions)
rather than claiming one parent. Nothing here may stop the pipeline: export runs in the SDK's
background thread, and a collector that is down only loses spans.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Link, SpanKind, Tracer

TRACEPARENT = "traceparent"
MAX_LINKS = 64  # per span: a batch of 2,000 records links to a sample, not all of them

_provider: TracerProvider | None = None

__all__ = ["Link", "SpanKind", "Tracer"]


def configure(service: str, endpoint: str | None, *, instance: str = "") -> bool:
    """Export this process's spans to `endpoint` (OTLP/HTTP, e.g. http://collector:4318).
    Without an endpoint nothing is set up and every span is a no-op. True when on."""
    global _provider
    if not endpoint or _provider is not None:
        return _provider is not None
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    attributes = {"service.name": f"ccpulse-{service}", "service.namespace": "ccpulse"}
    if instance:
        attributes["service.instance.id"] = instance
    provider = TracerProvider(resource=Resource.create(attributes))
    url = endpoint.rstrip("/") + "/v1/traces"
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=url, timeout=5)))
    trace.set_tracer_provider(provider)
    _provider = provider
    return True


def enabled() -> bool:
    return _provider is not None


def tracer(name: str) -> Tracer:
    return trace.get_tracer(name)


def shutdown() -> None:
    """Flush what is buffered (a stopping process), bounded by the exporter's timeout."""
    global _provider
    if _provider is not None:
        _provider.shutdown()
        _provider = None


def instrument(app: Any) -> None:
    """Server spans for every request of a FastAPI app, continuing an incoming `traceparent`."""
    if not enabled():
        return
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    FastAPIInstrumentor.instrument_app(
        app, excluded_urls="healthz,readyz,metrics", server_request_hook=_without_query
    )


QUERY_ATTRIBUTES = ("http.url", "url.full", "http.target", "url.query")


def _without_query(span: Any, scope: dict[str, Any]) -> None:
    """Query values can hold keys or personal data (as in access logs: routes only): the
    instrumentation records them whole, so every URL attribute is cut at its '?'."""
    if not span.is_recording():
        return
    attributes = getattr(span, "attributes", None) or {}
    for name in QUERY_ATTRIBUTES:
        value = attributes.get(name)
        if isinstance(value, str):
            span.set_attribute(name, "" if name == "url.query" else value.split("?", 1)[0])


def current_traceparent() -> str | None:
    """The current span's context as a W3C `traceparent` value (None when tracing is off)."""
    if not enabled():
        return None
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier.get(TRACEPARENT)


def kafka_headers() -> list[tuple[str, bytes]] | None:
    """Headers that carry the current trace into a Kafka record; None when off (no bytes added)."""
    value = current_traceparent()
    return None if value is None else [(TRACEPARENT, value.encode())]


def traceparent_of(headers: Sequence[tuple[str, bytes]] | None) -> str | None:
    for name, value in headers or ():
        if name == TRACEPARENT and value:
            return value.decode(errors="replace")
    return None


def links(traceparents: Iterable[str]) -> list[Link]:
    """Links to the spans these `traceparent` values name (duplicates once, at most MAX_LINKS)."""
    out: list[Link] = []
    seen: set[str] = set()
    for value in traceparents:
        if value in seen:
            continue
        seen.add(value)
        context = trace.get_current_span(propagate.extract({TRACEPARENT: value})).get_span_context()
        if context.is_valid:
            out.append(Link(context))
            if len(out) >= MAX_LINKS:
                break
    return out
