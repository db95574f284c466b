"""Serve an ASGI app with uvicorn, bounded: header time, idle keep-alive, connections, head size.

uvicorn's h11 server has no timeout for a request head: a connection that sends half its
headers and stops stays open for ever, so 300 such sockets held the ingest's file descriptors.
`BoundedH11Protocol` gives every request head a deadline from the moment the connection (or its
previous response) is ready for it, closes connections beyond the cap at once, and leaves the
rest to uvicorn: `timeout_keep_alive`, `limit_concurrency` (503 beyond it) and
`h11_max_incomplete_event_size` (a head larger than that is a 400).
"""

from __future__ import annotations

import asyncio
from typing import Any

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from services.settings import Settings


class BoundedH11Protocol(H11Protocol):
    """h11 with a deadline for each request head and a hard cap on open connections."""

    header_timeout_s: float = 10.0
    max_connections: int = 1000

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._head_timer: asyncio.TimerHandle | None = None
        if len(self.connections) > self.max_connections:
            transport.close()  # beyond the cap: refused before it costs anything
            return
        self._arm_head_timer()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if not self._awaiting_head():
            self._cancel_head_timer()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._arm_head_timer()  # the next request's head has the same deadline

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        super().connection_lost(exc)

    def _awaiting_head(self) -> bool:
        return bool(self.conn.their_state is h11.IDLE)

    def _arm_head_timer(self) -> None:
        self._cancel_head_timer()
        self._head_timer = self.loop.call_later(self.header_timeout_s, self._head_overdue)

    def _cancel_head_timer(self) -> None:
        timer = getattr(self, "_head_timer", None)
        if timer is not None:
            timer.cancel()
            self._head_timer = None

    def _head_overdue(self) -> None:
        self._head_timer = None
        if self._awaiting_head() and not self.transport.is_closing():
            self.transport.close()


def bounded_protocol(settings: Settings) -> type[BoundedH11Protocol]:
    """The protocol class with this installation's bounds (uvicorn instantiates it per socket)."""
    return type(
        "ConfiguredH11Protocol",
        (BoundedH11Protocol,),
        {
            "header_timeout_s": settings.http_header_timeout_seconds,
            "max_connections": settings.http_max_connections,
        },
    )


def serve(app: Any, settings: Settings, host: str, port: int) -> None:
    """Run `app` until SIGTERM, with the bounds of `settings`."""
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
        h11_max_incomplete_event_size=settings.http_max_header_bytes,
    )
