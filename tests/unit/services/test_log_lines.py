"""How log lines reach stderr (services/logs.py): written once per beat of the event loop, and
access lines rendered without a log record exactly as the record would have rendered them."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
import time
from collections.abc import Callable

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from services import logs
from tests.clock import clock

TEXT_ACCESS = re.compile(
    r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} ccpulse\.access INFO \[trace-12345678\] "
    r"GET /hello/\{who\}\?q 201 \d+\.\dms"
)


def handler_on(stream: io.StringIO, formatter: logging.Formatter) -> logs.LineHandler:
    """A handler as `logs.configure` makes it, writing to `stream`."""
    handler = logs.LineHandler()
    handler.setStream(stream)
    handler.addFilter(logs.RequestIdFilter())
    handler.setFormatter(formatter)
    return handler


def access_lines(stream: io.StringIO) -> list[str]:
    """The access lines written (httpx logs each request it makes too)."""
    return [line for line in stream.getvalue().splitlines() if " ccpulse.access " in line]


def formatter_of(log_format: str) -> logging.Formatter:
    return logs.JsonFormatter() if log_format == "json" else logs.TextFormatter(logs.TEXT_FORMAT)


@pytest.mark.parametrize("log_format", ["text", "json"])
@pytest.mark.parametrize("fraction", [0.0, 0.25, 0.9995, 0.999_999_9])
def test_an_access_line_is_what_its_record_would_print(
    monkeypatch: pytest.MonkeyPatch, log_format: str, fraction: float
) -> None:
    created = float(int(clock.now())) + fraction
    monkeypatch.setattr(time, "time", lambda: created)  # what LogRecord reads for `created`
    fields = {"method": "POST", "path": "/v1/events", "status": 202, "duration_ms": 1.23}
    message = "POST /v1/events 202 1.2ms"
    log = logging.getLogger(logs.ACCESS_LOGGER)
    record = log.makeRecord(log.name, logging.INFO, "", 0, message, (), None, "", fields)
    token = logs.request_id_var.set("trace-12345678")
    try:
        logs.RequestIdFilter().filter(record)
    finally:
        logs.request_id_var.reset(token)
    formatter = formatter_of(log_format)
    assert isinstance(formatter, logs.TextFormatter | logs.JsonFormatter)
    line = formatter.access_line(created, "trace-12345678", message, fields)
    assert line == formatter.format(record)
    if log_format == "json":
        assert json.loads(line)["status"] == 202


def test_another_text_format_renders_from_the_record() -> None:
    assert logs.TextFormatter("%(message)s").access_line(0.0, "-", "GET / 200 1.0ms", {}) is None


def test_lines_wait_for_the_loop_and_warnings_do_not() -> None:
    stream = io.StringIO()
    handler = handler_on(stream, logging.Formatter("%(message)s"))
    log = logging.getLogger("ccpulse.test.lines")
    log.addHandler(handler)
    log.propagate, log.level = False, logging.INFO

    async def run() -> list[str]:
        seen = []
        log.info("one")
        seen.append(stream.getvalue())  # nothing yet: the loop writes it later
        for _ in range(100):  # bounded: the write is due after DELAY_S
            await asyncio.sleep(handler.DELAY_S / 4)
            if stream.getvalue():
                break
        seen.append(stream.getvalue())
        log.info("two")
        log.warning("three")  # at once, behind the line waiting
        seen.append(stream.getvalue())
        return seen

    try:
        assert asyncio.run(run()) == ["", "one\n", "one\ntwo\nthree\n"]
        log.info("four")  # no loop runs here: written at once
        assert stream.getvalue().endswith("three\nfour\n")
        handler.MAX_WAITING = 2

        async def burst() -> str:
            log.info("five")
            log.info("six")  # the buffer is full: written without waiting for the loop
            return stream.getvalue()

        assert asyncio.run(burst()).endswith("four\nfive\nsix\n")
    finally:
        log.removeHandler(handler)
        log.propagate, log.level = True, logging.NOTSET


async def hello(request: Request) -> PlainTextResponse:
    return PlainTextResponse("ok", status_code=201)


def get_hello() -> None:
    async def run() -> None:
        asgi = logs.AccessLog(Starlette(routes=[Route("/hello/{who}", hello)]))
        transport = httpx.ASGITransport(app=asgi)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            response = await client.get("/hello/x?q=1", headers={"X-Request-ID": "trace-12345678"})
            assert response.status_code == 201

    asyncio.run(run())


@pytest.fixture
def only(monkeypatch: pytest.MonkeyPatch) -> Callable[[logging.Handler], None]:
    """Make `handler` the root's only one, with the access record's way up to it open: other
    tests may have left a logger on it disabled (a `fileConfig`), filtered or quieter."""

    def install(handler: logging.Handler) -> None:
        root = logging.getLogger()
        monkeypatch.setattr(root, "handlers", [handler])  # pytest's capture set aside
        monkeypatch.setattr(root, "level", logging.INFO)
        monkeypatch.setattr(root.manager, "disable", logging.NOTSET)
        current: logging.Logger | None = logging.getLogger(logs.ACCESS_LOGGER)
        while current is not None and current is not root:
            open_way = {"disabled": False, "level": logging.NOTSET, "propagate": True}
            for name, value in open_way.items():
                monkeypatch.setattr(current, name, value)
            monkeypatch.setattr(current, "handlers", [])
            monkeypatch.setattr(current, "filters", [])
            current = current.parent
        monkeypatch.setattr(logging.getLogger(logs.ACCESS_LOGGER), "_cache", {})

    return install


@pytest.mark.parametrize("also_listening", [False, True])
def test_access_lines_skip_the_record_only_for_the_sole_handler(
    monkeypatch: pytest.MonkeyPatch, only: Callable[[logging.Handler], None], also_listening: bool
) -> None:
    stream = io.StringIO()
    handler = handler_on(stream, logs.TextFormatter(logs.TEXT_FORMAT))
    only(handler)
    if also_listening:
        monkeypatch.setattr(logging.getLogger(), "handlers", [handler, logging.NullHandler()])
    made: list[str] = []
    make = logging.Logger.makeRecord

    def counting(self: logging.Logger, name: str, *args: object, **kwargs: object) -> object:
        made.append(name)
        return make(self, name, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(logging.Logger, "makeRecord", counting)
    get_hello()
    handler.flush()
    lines = access_lines(stream)
    assert len(lines) == 1 and TEXT_ACCESS.fullmatch(lines[0]), stream.getvalue()
    # another handler would miss a line that skipped the record: then the record is made
    assert made.count(logs.ACCESS_LOGGER) == (1 if also_listening else 0)


def test_a_filter_on_the_way_sends_the_record(only: Callable[[logging.Handler], None]) -> None:
    stream = io.StringIO()
    handler = handler_on(stream, logs.TextFormatter(logs.TEXT_FORMAT))
    only(handler)
    access = logging.getLogger(logs.ACCESS_LOGGER)
    get_hello()
    handler.flush()
    assert len(access_lines(stream)) == 1  # the way is open
    access.addFilter(logging.Filter("ccpulse.nothing"))  # refuses every access record
    get_hello()
    handler.flush()
    assert len(access_lines(stream)) == 1  # the filter saw the record: no second line


class Broken(io.StringIO):
    def write(self, text: str) -> int:
        raise OSError("stderr is gone")


def test_a_failed_write_is_reported_not_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    handler = handler_on(Broken(), logs.TextFormatter(logs.TEXT_FORMAT))
    reported: list[str] = []
    monkeypatch.setattr(handler, "handleError", lambda record: reported.append(record.msg))
    assert handler.write_access("-", "GET / 200 1.0ms", {})  # outside a loop: written at once

    async def later() -> None:
        handler.write_access("-", "GET /x 200 1.0ms", {})
        await asyncio.sleep(handler.DELAY_S * 3)  # the loop's write fails in its callback

    asyncio.run(later())
    assert reported == ["GET / 200 1.0ms", "writing waiting log lines"]
