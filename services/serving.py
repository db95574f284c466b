"""Serve an ASGI app with uvicorn on httptools, bounded: header time, idle keep-alive,
connections, head size.

httptools (llhttp, in C) rather than h11: h11's pure-Python parser was ~40% of a single
webhook's CPU. uvicorn bounds neither a request head's time (a connection that sends half its
headers and stops stays open for ever: 300 such sockets held the ingest's file descriptors) nor,
on httptools, its size. `BoundedHttpToolsProtocol` gives every request head a deadline from the
moment the connection (or its previous response) is ready for it, refuses a head whose URL and
header fields exceed the limit (431), closes connections beyond the cap at once, and answers a
malformed request with a 400 naming llhttp's reason. uvicorn does the rest: `timeout_keep_alive`
and `limit_concurrency` (503 beyond it).
"""

from __future__ import annotations

import asyncio
import json
import logging
from http import HTTPStatus
from typing import Any

import httptools
import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from services.settings import Settings

log = logging.getLogger("ccpulse.serving")


class HeadTooLarge(Exception):
    """Raised in a parser callback; httptools re-raises it as the context of its own error."""


class BadHead(Exception):
    """A head llhttp accepts but HTTP/1.1 does not: a request without Host must be a 400
    (RFC 9112, 3.2), as h11 answered it."""


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """httptools with a deadline and a size limit for each request head, and a connection cap."""

    header_timeout_s: float = 10.0
    max_connections: int = 1000
    max_head_bytes: int = 16 * 1024

    _head_timer: asyncio.TimerHandle | None
    _head_deadline: float | None  # loop time by which the awaited head must be in
    _in_head: bool  # the parser is before or inside a request head, not in a body
    _head_bytes: int  # URL and header names and values of the head being parsed
    _raw_head_bytes: int  # bytes received while the head was incomplete
    _deferred: bytes | None  # a refusal waiting for the responses before it

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._head_timer = None
        self._head_deadline = None
        self._in_head = True
        self._head_bytes = self._raw_head_bytes = 0
        self._deferred = None
        if len(self.connections) > self.max_connections:
            transport.close()  # beyond the cap: refused before it costs anything
            return
        self._arm_head_timer()

    def data_received(self, data: bytes) -> None:
        if self.transport.is_closing() or self._deferred is not None:
            return  # refused already: the parser is in its error state
        self._unset_keepalive_if_required()
        if self._in_head:
            self._raw_head_bytes += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
        except httptools.HttpParserError as exc:
            if isinstance(exc.__context__, HeadTooLarge):
                self._refuse(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, str(exc.__context__))
            elif isinstance(exc.__context__, BadHead):
                self._refuse(HTTPStatus.BAD_REQUEST, f"invalid HTTP request: {exc.__context__}")
            else:
                self._refuse(HTTPStatus.BAD_REQUEST, f"invalid HTTP request: {exc}")
        else:
            self._check_incomplete_head()

    # --- parser callbacks: count the head, follow where the parser is -----------------------

    def on_message_begin(self) -> None:
        self._head_bytes = 0
        super().on_message_begin()

    def on_url(self, url: bytes) -> None:
        self._count_head(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count_head(len(name) + len(value))
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        if self.parser.get_http_version() == "1.1" and all(n != b"host" for n, _ in self.headers):
            raise BadHead("an HTTP/1.1 request needs a Host header")
        self._in_head = False
        self._raw_head_bytes = 0
        self._clear_head_deadline()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._in_head = True  # what follows on the wire is the next request's head
        self._raw_head_bytes = 0
        super().on_message_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self.transport.is_closing():
            return
        if self._deferred is None:
            self._arm_head_timer()  # the next request's head has the same deadline
        elif self.cycle.response_complete:  # the last request before the refused one
            self.transport.write(self._deferred)
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self._head_deadline = None
        if self._head_timer is not None:  # nothing left to bound: the timer goes now
            self._head_timer.cancel()
            self._head_timer = None
        super().connection_lost(exc)

    # --- the bounds ---------------------------------------------------------------------------

    def _count_head(self, size: int) -> None:
        self._head_bytes += size
        if self._head_bytes > self.max_head_bytes:
            raise HeadTooLarge(f"request head larger than {self.max_head_bytes} bytes")

    def _check_incomplete_head(self) -> None:
        """httptools holds a header's bytes until the next one starts, unseen by the callbacks:
        an unfinished head twice the limit is refused too, so a client cannot grow that buffer."""
        if self._in_head and self._raw_head_bytes > 2 * self.max_head_bytes:
            message = f"request head larger than {self.max_head_bytes} bytes"
            self._refuse(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, message)

    def _refuse(self, status: HTTPStatus, detail: str) -> None:
        """Answer `status` with a JSON reason, as the apps' own refusals, and close. A bad head
        behind pipelined requests still running is answered after them, in order."""
        log.warning("refused a request at the HTTP layer: %s %s", int(status), detail)
        answer = refusal(status, detail, self.server_state.default_headers)
        cycle = self.cycle
        if not self._in_head:  # the body of `cycle` is malformed
            if not cycle.response_started:
                self.transport.write(answer)  # mid-response nothing can be said but the close
            self.transport.close()
        elif cycle is None or cycle.response_complete:
            self.transport.write(answer)
            self.transport.close()
        else:
            self._deferred = answer

    def _awaiting_head(self) -> bool:
        return self._in_head and (self.cycle is None or self.cycle.response_complete)

    def _arm_head_timer(self) -> None:
        """A new deadline for the head. One timer per connection follows the deadlines (it
        moves itself on when it fires early): a timer made and cancelled per request cost a
        keep-alive webhook more than the bound is worth."""
        self._head_deadline = self.loop.time() + self.header_timeout_s
        if self._head_timer is None:
            self._head_timer = self.loop.call_at(self._head_deadline, self._head_overdue)

    def _clear_head_deadline(self) -> None:
        self._head_deadline = None  # the timer, when it fires, finds nothing due

    def _head_overdue(self) -> None:
        self._head_timer = None
        deadline = self._head_deadline
        if deadline is None or self.transport.is_closing():
            return
        if self.loop.time() < deadline:  # armed again since the timer was set
            self._head_timer = self.loop.call_at(deadline, self._head_overdue)
        elif self._awaiting_head():
            self.transport.close()


def refusal(status: HTTPStatus, detail: str, headers: list[tuple[bytes, bytes]]) -> bytes:
    """A whole response that closes the connection: `{"detail": ...}` as JSON."""
    body = json.dumps({"detail": detail}).encode()
    lines = [f"HTTP/1.1 {int(status)} {status.phrase}".encode()]
    lines += [name + b": " + value for name, value in headers]
    lines += [
        b"content-type: application/json",
        b"content-length: " + str(len(body)).encode(),
        b"connection: close",
    ]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def bounded_protocol(settings: Settings) -> type[BoundedHttpToolsProtocol]:
    """The protocol class with this installation's bounds (uvicorn instantiates it per socket)."""
    return type(
        "ConfiguredHttpToolsProtocol",
        (BoundedHttpToolsProtocol,),
        {
            "header_timeout_s": settings.http_header_timeout_seconds,
            "max_connections": settings.http_max_connections,
            "max_head_bytes": settings.http_max_header_bytes,
        },
    )


def serve(app: Any, settings: Settings, host: str, port: int) -> None:
    """Run `app` until SIGTERM, with the bounds of `settings` (uvloop: loop="auto" picks it)."""
    uvicorn.run(
        app,
        host=host,
        port=port,
        http=bounded_protocol(settings),
        log_level="warning",
        log_config=None,  # the process's own handlers (services/logs.py), text or JSON
        access_log=False,  # services.logs.AccessLog writes them, without personal data
        timeout_keep_alive=int(max(1, settings.http_keep_alive_seconds)),
        limit_concurrency=settings.http_max_connections,
    )
