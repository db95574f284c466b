"""`deadlines.within` behaves as `asyncio.timeout` however a body ends (ingest/deadlines.py)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager, suppress
from types import SimpleNamespace
from typing import Any, cast

import pytest
from starlette.requests import Request

from ingest import deadlines, edge
from services.settings import Settings

Within = Callable[[float], AbstractAsyncContextManager[Any]]
BOTH: list[Within] = [asyncio.timeout, deadlines.within]


async def outcome(within: Within, delay: float, body: Callable[[], Any]) -> str:
    try:
        async with within(delay):
            await body()
    except TimeoutError:
        return "timeout"
    except asyncio.CancelledError:
        return "cancelled"
    return "done"


@pytest.mark.parametrize("within", BOTH)
async def test_a_prompt_body_is_left_alone(within: Within) -> None:
    assert await outcome(within, 0.05, lambda: asyncio.sleep(0)) == "done"
    await asyncio.sleep(0.08)  # past the deadline: nothing cancels the task afterwards
    task = asyncio.current_task()
    assert task is not None and task.cancelling() == 0


@pytest.mark.parametrize("within", BOTH)
async def test_an_overdue_body_times_out_at_its_deadline(within: Within) -> None:
    started = time.monotonic()
    assert await outcome(within, 0.05, lambda: asyncio.sleep(5)) == "timeout"
    assert 0.045 <= time.monotonic() - started < 0.5
    task = asyncio.current_task()
    assert task is not None and task.cancelling() == 0


@pytest.mark.parametrize("within", BOTH)
async def test_a_body_that_swallows_the_cancellation_ends_normally(within: Within) -> None:
    async def stubborn() -> None:
        with suppress(asyncio.CancelledError):
            await asyncio.sleep(5)

    assert await outcome(within, 0.02, stubborn) == "done"
    task = asyncio.current_task()
    assert task is not None and task.cancelling() == 0


@pytest.mark.parametrize("within", BOTH)
async def test_a_cancellation_from_outside_stays_a_cancellation(within: Within) -> None:
    task = asyncio.create_task(outcome(within, 5, lambda: asyncio.sleep(5)))
    await asyncio.sleep(0.01)
    task.cancel()
    assert await task == "cancelled"


@pytest.mark.parametrize("within", BOTH)
async def test_only_the_overdue_ones_of_many_time_out(within: Within) -> None:
    """Deadlines that end out of order, and slow ones among fast ones, as under load."""
    delays = [0.001 * (i % 7) for i in range(60)]
    slow = {5, 17, 18, 41}

    def body(i: int) -> Callable[[], Any]:
        return lambda: asyncio.sleep(5 if i in slow else delays[i])

    results = await asyncio.gather(*(outcome(within, 0.1, body(i)) for i in range(60)))
    assert [i for i, r in enumerate(results) if r != "done"] == sorted(slow)
    assert all(results[i] == "timeout" for i in slow)


async def test_later_deadlines_still_fire_after_earlier_ones_closed() -> None:
    """The timer armed for a closed deadline re-arms for the next open one."""
    first = asyncio.create_task(outcome(deadlines.within, 0.05, lambda: asyncio.sleep(0.01)))
    await asyncio.sleep(0.03)
    started = time.monotonic()
    second = asyncio.create_task(outcome(deadlines.within, 0.05, lambda: asyncio.sleep(5)))
    assert await first == "done"
    assert await second == "timeout"
    assert 0.045 <= time.monotonic() - started < 0.5
    assert not deadlines._KEEPERS[0.05]._open  # nothing is kept once every deadline closed


def test_each_event_loop_gets_its_own_timer() -> None:
    """A keeper used on one loop, then on another (the first one closed), still times out."""
    for _ in range(2):
        assert asyncio.run(outcome(deadlines.within, 0.03, lambda: asyncio.sleep(5))) == "timeout"
        assert asyncio.run(outcome(deadlines.within, 0.03, lambda: asyncio.sleep(0))) == "done"


def test_outside_a_task_it_refuses_like_asyncio() -> None:
    async def enter() -> None:
        async with deadlines.within(1):
            pass

    coro = enter()
    with pytest.raises(RuntimeError):
        coro.send(None)
    coro.close()


def hanging_request(first: bytes) -> Request:
    """A request whose sender sends `first` and then nothing more."""
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": first, "more_body": True}
        await asyncio.sleep(60)
        return {"type": "http.disconnect"}

    scope = {"type": "http", "method": "POST", "path": "/v1/events", "headers": []}
    return Request(scope, receive)


def body_settings(timeout_s: float) -> Settings:
    return cast(
        Settings,
        SimpleNamespace(ingest_body_timeout_seconds=timeout_s, max_body_bytes=1_000),
    )


async def test_a_body_not_received_within_the_timeout_is_a_timeout() -> None:
    """What the 408 of `/v1/events` and the webhooks rests on (ingest/edge.py)."""
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        await edge.read_body(hanging_request(b'{"id"'), body_settings(0.05))
    assert 0.045 <= time.monotonic() - started < 0.5


async def test_a_whole_body_is_read_within_the_timeout() -> None:
    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"{}", "more_body": False}

    scope = {"type": "http", "method": "POST", "path": "/v1/events", "headers": []}
    assert await edge.read_body(Request(scope, receive), body_settings(0.05)) == b"{}"
