"""OpenTelemetry traces from a webhook through Kafka and Redis to the websocket push.

The three processes export to a real OTLP/HTTP receiver on loopback (protobuf, decoded with the
OpenTelemetry protocol's own classes). A batch posted with a caller's `traceparent` must give:
the ingest's server span in the caller's trace, its publish span under it, the aggregator's
process span linking to the publish span (through the Kafka record header), and the api's push
linking to the aggregator's span (through the Redis change notice).
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
import websockets
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from tests.conftest import PipelineFactory
from tests.e2e.test_pipeline import corpus
from tests.harness import Pipeline


@dataclass(frozen=True)
class Span:
    service: str
    name: str
    trace_id: str
    span_id: str
    parent_id: str
    links: tuple[tuple[str, str], ...]  # (trace id, span id)
    values: str  # every attribute's value, for the personal-data check


class Receiver(ThreadingHTTPServer):
    """An OTLP/HTTP trace receiver keeping every span it is sent."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.spans: list[Span] = []
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def keep(self, body: bytes) -> None:
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        for resource_spans in request.resource_spans:
            attributes = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for s in scope_spans.spans:
                    span = Span(
                        attributes.get("service.name", ""),
                        s.name,
                        s.trace_id.hex(),
                        s.span_id.hex(),
                        s.parent_span_id.hex(),
                        tuple((link.trace_id.hex(), link.span_id.hex()) for link in s.links),
                        " ".join(str(a.value) for a in s.attributes),
                    )
                    with self.lock:
                        self.spans.append(span)

    def snapshot(self) -> list[Span]:
        with self.lock:
            return list(self.spans)


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        assert isinstance(self.server, Receiver)
        ok = self.path == "/v1/traces"
        if ok:
            self.server.keep(body)
        self.send_response(200 if ok else 404)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def _chain(spans: list[Span], trace_id: str) -> dict[str, Span] | None:
    """The four spans of the chain, or None while one is missing."""
    server = [s for s in spans if s.service == "ccpulse-ingest" and s.trace_id == trace_id]
    publish = [s for s in server if s.name.endswith(" publish")]
    if not publish:
        return None
    produced = {(s.trace_id, s.span_id) for s in publish}
    process = [
        s
        for s in spans
        if s.service == "ccpulse-aggregator" and any(link in produced for link in s.links)
    ]
    processed = {(s.trace_id, s.span_id) for s in process}
    push = [
        s
        for s in spans
        if s.service == "ccpulse-api"
        and s.name == "wallboard push"
        and any(link in processed for link in s.links)
    ]
    if not process or not push:
        return None
    return {"publish": publish[0], "process": process[0], "push": push[0], "server": server[0]}


async def _watch_until(pipeline: Pipeline, receiver: Receiver, trace_id: str) -> dict[str, Span]:
    """Keep a wallboard connected (pushes happen only for clients) until the chain is there."""
    url = pipeline.api_url.replace("http", "ws") + "/ws/wallboard"
    deadline = time.monotonic() + 60
    async with websockets.connect(url) as ws:
        while time.monotonic() < deadline:
            chain = _chain(receiver.snapshot(), trace_id)
            if chain is not None:
                return chain
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(ws.recv(), 1)
    raise AssertionError(f"no whole chain for trace {trace_id}: {receiver.snapshot()}")


def test_a_webhooks_trace_reaches_the_push_that_showed_it(
    pipeline_factory: PipelineFactory, receiver: Receiver
) -> None:
    pipeline = pipeline_factory({"CCPULSE_OTEL_ENDPOINT": receiver.url})
    trace_id, caller_span = secrets.token_hex(16), secrets.token_hex(8)
    events = corpus(contacts=5, seed=41, hours=1)
    response = httpx.post(
        f"{pipeline.ingest_url}/v1/events?caller=alice%40example.com",
        json=events,
        headers={"traceparent": f"00-{trace_id}-{caller_span}-01"},
        timeout=30,
    )
    assert response.status_code == 202, response.text
    pipeline.wait_applied(len(events))
    chain = asyncio.run(_watch_until(pipeline, receiver, trace_id))
    # The ingest continued the caller's trace, and published inside it.
    assert chain["server"].trace_id == trace_id
    assert chain["publish"].trace_id == trace_id
    assert chain["process"].links and chain["push"].links
    # No span carries personal data: names are routes and topics, URLs lose their query.
    spans = receiver.snapshot()
    assert all("@" not in s.name and "+" not in s.name for s in spans)
    assert [s for s in spans if "alice" in s.values] == []
    assert any("/v1/events" in s.values for s in spans)
