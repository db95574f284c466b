"""`asyncio.timeout` for a delay used over and over, at a fraction of its cost per use.

`asyncio.timeout` pushes a timer on the event loop's heap and cancels it, for every use: twice per
webhook (the body's read, the broker's acknowledgement), a measurable part of its CPU. Every use of
one delay ends in the order it began, so a queue in that order and one loop timer, armed for the
oldest open deadline, do the same: an overdue task is cancelled at its deadline and the context
raises TimeoutError on the way out, exactly as `asyncio.timeout` does.
"""

from __future__ import annotations

import asyncio
from collections import deque
from types import TracebackType

_OPEN, _EXPIRING, _CLOSED = 0, 1, 2


class Deadlines:
    """The open deadlines of one delay, oldest first, and the loop timer of the oldest."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self._open: deque[Deadline] = deque()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._armed: float | None = None  # the loop time the timer was set for

    def __call__(self) -> Deadline:
        """An `async with` context: the body runs within `delay` or the context raises
        TimeoutError (only when its own expiry cancelled the task, as `asyncio.timeout`)."""
        return Deadline(self)

    def _add(self, deadline: Deadline, loop: asyncio.AbstractEventLoop) -> None:
        if loop is not self._loop:  # a new loop (tests): nothing of the old one carries over
            self._loop, self._open, self._armed = loop, deque(), None
        self._open.append(deadline)
        if self._armed is None:
            self._arm(loop, deadline.when)

    def _arm(self, loop: asyncio.AbstractEventLoop, when: float) -> None:
        self._armed = when
        loop.call_at(when, self._expire, loop)

    def _close(self) -> None:
        """Forget the deadlines already closed at the front (most close in order)."""
        queue = self._open
        while queue and queue[0].state == _CLOSED:
            queue.popleft()

    def _expire(self, loop: asyncio.AbstractEventLoop) -> None:
        if loop is not self._loop or self._armed is None:
            return  # a timer of an earlier loop
        # the loop runs a timer up to its clock resolution early: all set for then are due
        due = max(loop.time(), self._armed)
        self._armed = None
        queue = self._open
        while queue:
            deadline = queue[0]
            if deadline.state == _OPEN:
                if deadline.when > due:
                    self._arm(loop, deadline.when)
                    return
                deadline.state = _EXPIRING
                deadline.task.cancel()
            queue.popleft()


class Deadline:
    """One use of `Deadlines`: an async context manager, like `asyncio.Timeout`."""

    __slots__ = ("cancelling", "keeper", "state", "task", "when")

    def __init__(self, keeper: Deadlines) -> None:
        self.keeper = keeper

    async def __aenter__(self) -> Deadline:
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("a deadline must be used inside a task")
        loop = asyncio.get_running_loop()
        self.task, self.cancelling, self.state = task, task.cancelling(), _OPEN
        self.when = loop.time() + self.keeper.delay
        self.keeper._add(self, loop)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        expiring = self.state == _EXPIRING
        self.state = _CLOSED
        self.keeper._close()
        # as asyncio.Timeout: its own cancellation, and no other since, becomes TimeoutError
        if (
            expiring
            and self.task.uncancel() <= self.cancelling
            and exc_type is asyncio.CancelledError
        ):
            raise TimeoutError from exc


_KEEPERS: dict[float, Deadlines] = {}


def within(delay: float) -> Deadline:
    """`async with within(delay):` behaves as `async with asyncio.timeout(delay):`."""
    keeper = _KEEPERS.get(delay)
    if keeper is None:
        keeper = _KEEPERS[delay] = Deadlines(delay)
    return keeper()
