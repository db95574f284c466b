"""A response's head goes out with its body in one write, and never later or out of order than
without it (services/serving.py `HeadWithBody`)."""

from __future__ import annotations

import asyncio
import gc
import weakref
from types import SimpleNamespace
from typing import Any, cast

from services.serving import BoundedHttpToolsProtocol, HeadWithBody


class Wire:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def close(self) -> None:
        self.closed = True
        self.writes.append(b"<close>")

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str) -> str:
        return f"info {name}"


def held(loop: asyncio.AbstractEventLoop) -> tuple[HeadWithBody, Wire, Any, Any]:
    wire = Wire()
    protocol = SimpleNamespace(transport=wire, loop=loop, _holding=None)
    cycle = SimpleNamespace(response_started=False)
    sending = HeadWithBody(cast(BoundedHttpToolsProtocol, protocol), cycle)
    return sending, wire, cycle, protocol


async def test_head_and_body_go_out_in_one_write() -> None:
    sending, wire, cycle, protocol = held(asyncio.get_running_loop())
    sending.write(b"HTTP/1.1 100 Continue\r\n\r\n")  # before the response: at once
    assert wire.writes == [b"HTTP/1.1 100 Continue\r\n\r\n"]
    cycle.response_started = True
    sending.write(b"HEAD\r\n\r\n")
    assert len(wire.writes) == 1 and protocol._holding is sending
    sending.write(b"body")
    assert wire.writes[1:] == [b"HEAD\r\n\r\nbody"] and protocol._holding is None
    sending.write(b"more")  # a later body chunk: at once
    await asyncio.sleep(0)
    assert wire.writes[1:] == [b"HEAD\r\n\r\nbody", b"more"]


async def test_a_head_without_its_body_goes_out_on_the_next_turn() -> None:
    sending, wire, cycle, _ = held(asyncio.get_running_loop())
    cycle.response_started = True
    sending.write(b"HEAD\r\n\r\n")
    assert wire.writes == []
    await asyncio.sleep(0)
    assert wire.writes == [b"HEAD\r\n\r\n"]
    sending.write(b"chunk")
    assert wire.writes == [b"HEAD\r\n\r\n", b"chunk"]


async def test_a_close_or_a_refusal_sends_a_held_head_first() -> None:
    sending, wire, cycle, protocol = held(asyncio.get_running_loop())
    cycle.response_started = True
    sending.write(b"HEAD\r\n\r\n")
    sending.close()
    assert wire.writes == [b"HEAD\r\n\r\n", b"<close>"] and sending.is_closing()
    assert sending.get_extra_info("peername") == "info peername"
    sending, wire, cycle, protocol = held(asyncio.get_running_loop())
    cycle.response_started = True
    sending.write(b"HEAD\r\n\r\n")
    protocol._holding.flush()  # what `_refuse` does before it writes or closes
    assert wire.writes == [b"HEAD\r\n\r\n"] and protocol._holding is None
    await asyncio.sleep(0)
    assert wire.writes == [b"HEAD\r\n\r\n"]  # sent once


class Cycle:
    """Stands for uvicorn's cycle, which holds its transport."""

    def __init__(self) -> None:
        self.response_started = False
        self.transport: Any = None


async def test_a_finished_cycle_is_freed_without_the_collector() -> None:
    """No reference cycle between a request's cycle and its transport: one per request would
    leave every request's objects to the garbage collector."""
    loop = asyncio.get_running_loop()
    protocol = SimpleNamespace(transport=Wire(), loop=loop, _holding=None)
    cycle = Cycle()
    cycle.transport = HeadWithBody(cast(BoundedHttpToolsProtocol, protocol), cycle)
    cycle.response_started = True
    cycle.transport.write(b"HEAD\r\n\r\n")
    cycle.transport.write(b"body")
    await asyncio.sleep(0)  # the flush callback has run and let go of the transport
    gone = weakref.ref(cycle)
    gc.disable()
    try:
        del cycle
        assert gone() is None
    finally:
        gc.enable()
