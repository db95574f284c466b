"""The bounds `services/serving.py` puts on both servers, held by the real ingest on a real socket:
a request head's size (431) and deadline, the connection cap, malformed framing refused with a
reason (400), and pipelined requests answered in order before a refusal.

Each test starts `python -m ingest` (the `ingest` fixture) with small bounds and talks raw
HTTP/1.1 over sockets: a client library would refuse to send most of these requests.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import pytest

from tests.harness import RawHttp, wait_until
from tests.stackfixtures import Ingest

HEAD_LIMIT = 2048
BOUNDS = {
    "CCPULSE_HTTP_MAX_HEADER_BYTES": str(HEAD_LIMIT),
    "CCPULSE_HTTP_HEADER_TIMEOUT_SECONDS": "2",
    "CCPULSE_HTTP_KEEP_ALIVE_SECONDS": "120",  # idle keep-alive never closes first here
}


@contextmanager
def connection(url: str) -> Iterator[RawHttp]:
    raw = RawHttp(url)
    try:
        yield raw
    finally:
        raw.close()


def detail(body: bytes) -> str:
    """The refusal's reason: a JSON `detail`, as every refusal of the apps has."""
    return str(json.loads(body)["detail"])


def get(path: str, *headers: bytes) -> bytes:
    return b"\r\n".join([f"GET {path} HTTP/1.1".encode(), b"Host: bounds", *headers]) + b"\r\n\r\n"


def soon() -> float:
    return time.monotonic() + 10


def test_an_oversized_head_is_refused_with_431_whole_or_unfinished(ingest: Ingest) -> None:
    url = ingest(BOUNDS)
    big = b"x" * (HEAD_LIMIT + 100)
    for request in (get("/healthz", b"X-Big: " + big), get("/healthz?q=" + big.decode())):
        with connection(url) as raw:
            raw.send(request)
            status, body = raw.answer()
            assert status == 431 and str(HEAD_LIMIT) in detail(body), body
            assert raw.closed_within(soon())
    with connection(url) as raw:  # a header that never ends: refused, not buffered for ever
        raw.send(get("/healthz").removesuffix(b"\r\n") + b"X-Endless: ")
        for _ in range(40):  # stop once answered: bytes sent after the close would reset it
            raw.send(b"y" * (HEAD_LIMIT // 4))
            if raw.answered(0.2):
                break
        status, body = raw.answer()
        assert status == 431 and str(HEAD_LIMIT) in detail(body), body
    with connection(url) as raw:  # under the limit: served
        raw.send(get("/healthz", b"X-Big: " + b"x" * (HEAD_LIMIT - 200)))
        assert raw.answer()[0] == 200


def test_a_head_still_unfinished_at_its_deadline_is_closed(ingest: Ingest) -> None:
    url = ingest(BOUNDS)
    with connection(url) as raw:  # bytes keep coming, but the head never ends
        raw.send(b"GET /healthz HTTP/1.1\r\nHost: bounds\r\nX-Slow: ")
        deadline = time.monotonic() + 15
        while not raw.closed_within(time.monotonic() + 0.3):
            assert time.monotonic() < deadline, "a dribbled head was not cut off"
            raw.send(b"z")
    with connection(url) as raw:  # the next head on a keep-alive connection has its own
        raw.send(get("/healthz"))
        assert raw.answer()[0] == 200
        raw.send(b"GET /healthz HTTP/1.1\r\nHost: bo")
        assert raw.closed_within(time.monotonic() + 15), "a stalled second head stayed open"


def test_connections_beyond_the_cap_are_closed_at_once(ingest: Ingest) -> None:
    cap, extra = 10, 4
    url = ingest(
        {
            **BOUNDS,
            "CCPULSE_HTTP_MAX_CONNECTIONS": str(cap),
            "CCPULSE_HTTP_HEADER_TIMEOUT_SECONDS": "120",
        }
    )
    with ExitStack() as stack:
        raws = [stack.enter_context(connection(url)) for _ in range(cap + extra)]
        until = time.monotonic() + 5
        closed = [raw for raw in raws if raw.closed_within(until)]
        assert len(closed) == extra, f"{len(closed)} of {cap + extra} closed, cap {cap}"
        kept = next(raw for raw in raws if raw not in closed)
        kept.send(get("/healthz"))
        assert kept.answer()[0] == 503  # at the cap: uvicorn's limit_concurrency answers
    wait_until(lambda: httpx.get(f"{url}/healthz").status_code == 200, 15, "served again")


@pytest.mark.parametrize(
    ("framing", "reason"),
    [
        (b"Content-Length: abc", "Content-Length"),
        (b"Content-Length: -2", "Content-Length"),
        (b"Content-Length: 99999999999999999999999", "Content-Length overflow"),
        (b"Content-Length: 2\r\nContent-Length: 2", "Duplicate Content-Length"),
        (b"Content-Length: 2\r\nTransfer-Encoding: chunked", "Transfer-Encoding"),
        (b"Transfer-Encoding: gzip", "Transfer-Encoding"),
        (b"Transfer-Encoding: chunked\r\n\r\nzz", "chunk size"),
    ],
)
def test_malformed_framing_is_a_400_naming_the_reason(
    ingest: Ingest, framing: bytes, reason: str
) -> None:
    url = ingest(BOUNDS)
    head = b"POST /v1/events HTTP/1.1\r\nHost: bounds\r\nContent-Type: application/json\r\n"
    with connection(url) as raw:
        raw.send(head + framing + b"\r\n\r\n{}\r\n0\r\n\r\n")
        status, body = raw.answer()
        assert status == 400 and reason in detail(body), body
        assert raw.closed_within(soon())
    with connection(url) as raw:  # framed right, the same body reaches the app
        raw.send(head + b"Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n")
        status, body = raw.answer()
        assert status == 422 and "time" in body.decode(), body


def test_an_http_1_1_request_without_host_is_a_400(ingest: Ingest) -> None:
    url = ingest(BOUNDS)
    with connection(url) as raw:
        raw.send(b"GET /healthz HTTP/1.1\r\n\r\n")
        status, body = raw.answer()
        assert status == 400 and "Host header" in detail(body), body
        assert raw.closed_within(soon())
    with connection(url) as raw:  # HTTP/1.0 has no Host requirement
        raw.send(b"GET /healthz HTTP/1.0\r\n\r\n")
        assert raw.answer()[0] == 200


def test_pipelined_requests_are_answered_in_order_before_a_refusal(ingest: Ingest) -> None:
    url = ingest(BOUNDS)
    with connection(url) as raw:
        raw.send(get("/healthz") + get("/healthz") + b"NOT HTTP\r\n\r\n")
        assert [raw.answer()[0] for _ in range(2)] == [200, 200]
        status, body = raw.answer()
        assert status == 400 and "invalid HTTP request" in detail(body), body
        assert raw.closed_within(soon())


@pytest.mark.parametrize("path", ["/v1/events", "/v1/history/imports?format=events"])
def test_a_sender_gone_mid_body_is_a_counted_refusal_not_a_crash(
    ingest: Ingest, tmp_path: Path, path: str
) -> None:
    """A sender that hangs up halfway through its body: a refused request on /metrics and a
    400 access line, not an 'Exception in ASGI application' with a 500 in the log."""
    url = ingest()
    with connection(url) as raw:
        raw.send(
            f"POST {path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
            "content-length: 1000\r\n\r\n".encode()
            + b'{"id": "half'
        )
    wait_until(lambda: refused(url) > 0, 15, "the refusal counted")
    log = (tmp_path / f"ingest{url.rsplit(':', 1)[1]}.log").read_text()
    assert "Exception in ASGI application" not in log and "Traceback" not in log, log


def refused(url: str) -> float:
    text = httpx.get(f"{url}/metrics", timeout=5).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("ccpulse_ingest_refused_requests_total{")
    )
