"""Logging for every process: text or JSON lines (CCPULSE_LOG_FORMAT), each carrying the request
id of the request it was written for, and an access log of one line per HTTP request.

Only the stdlib: a small Formatter and a Filter, and a pure ASGI middleware, so the ingest, the
api and the aggregator configure their logs one way. A path or query value may hold personal
data (a phone number in a webhook's query, an agent's name), so the access line names the route
template when one matched, redacts path segments that look like a phone number or an e-mail
address otherwise, and keeps only the names of query parameters, never their values.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
import random
import re
import time
from typing import Any, Literal, TextIO

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.clock import SystemClock

LogFormat = Literal["text", "json"]

REQUEST_ID_HEADER = "x-request-id"
ACCESS_LOGGER = "ccpulse.access"
TEXT_FORMAT = "%(asctime)s %(name)s %(levelname)s [%(request_id)s] %(message)s"
# A client's id is kept only in this shape: short, no spaces or quotes, not a bare number (a
# phone number sent as a request id would otherwise land in every line of that request).
_WELL_FORMED_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{7,127}")
_PERSONAL_SEGMENT = re.compile(r"@|%40|\d[\d ()+.%-]{6,}\d", re.IGNORECASE)
# What a record carries besides the message, copied into JSON lines when set.
ACCESS_FIELDS = ("method", "path", "status", "duration_ms")
_NO_REQUEST = "-"
_ACCESS = "%s %s %d %.1fms"
# What `logging` records as the place of a line when it does not look for it.
_NO_CALLER = ("(unknown file)", 0, "(unknown function)")
# The time a log record gets (the wall clock, with no test offset): an access line made without
# a record is stamped as the other lines of the same log.
RECORD_CLOCK = SystemClock()

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar(
    "ccpulse_request_id", default=_NO_REQUEST
)


def accepted_request_id(incoming: str | None) -> str:
    """The client's X-Request-ID when well formed (so traces join across services), else a new
    random one: the id ends up in log lines, so nothing else a client sends is trusted there."""
    if incoming and _WELL_FORMED_ID.fullmatch(incoming) and not incoming.isdigit():
        return incoming
    return new_request_id()


# Version 4 and the RFC 4122 variant (10xx), as `uuid.uuid4()` sets them.
_UUID4_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))
_UUID4_SET = (0x4000 << 64) | (0x8000 << 48)


def new_request_id() -> str:
    """A random UUID4 as 32 hex digits, like `uuid.uuid4().hex` at a fifth of the cost: an id only
    has to differ, not be secret (the module's generator is reseeded in a forked worker)."""
    return "%032x" % (random.getrandbits(128) & _UUID4_CLEAR | _UUID4_SET)


def loggable_path(path: str, route: str | None, query: bytes) -> str:
    """The path as logged: the route template if one matched, else the path with personal-
    looking segments redacted; query parameter names only (`?window&from`), never values."""
    shown = route or path
    if not route and _PERSONAL_SEGMENT.search(path):  # no match spans a "/": a segment has it
        shown = "/".join(
            ":redacted" if _PERSONAL_SEGMENT.search(segment) else segment
            for segment in path.split("/")
        )
    if not query:
        return shown
    names = [part.split("=", 1)[0] for part in query.decode("latin-1").split("&") if part]
    safe = [n for n in names if n and not _PERSONAL_SEGMENT.search(n)]
    return f"{shown}?{'&'.join(dict.fromkeys(safe))}" if safe else shown


class RequestIdFilter(logging.Filter):
    """Stamps every record with the current request's id (`-` outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = request_id_var.get()
        return True


Fields = dict[str, Any]  # an access line's ACCESS_FIELDS


def _msecs(created: float) -> float:
    """`LogRecord.msecs` of a record created at `created`, as logging computes it."""
    return int((created - int(created)) * 1000) + 0.0


class TextFormatter(logging.Formatter):
    """`logging.Formatter` whose default time text is formatted once per second: the same
    text, without a `localtime` and a `strftime` for every line."""

    def __init__(self, fmt: str | None = None) -> None:
        super().__init__(fmt)
        self._second: float | None = None
        self._second_text = ""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        if datefmt or not self.default_msec_format:
            return super().formatTime(record, datefmt)
        return self._clock(record.created, record.msecs)

    def _clock(self, created: float, msecs: float) -> str:
        second = created // 1  # localtime floors a time to its second, as this does
        if second != self._second:
            self._second_text = time.strftime(self.default_time_format, self.converter(second))
            self._second = second
        return self.default_msec_format % (self._second_text, msecs)  # type: ignore[operator]

    def access_line(self, created: float, request_id: str, message: str, _: Fields) -> str | None:
        """What `format` makes of an access record logged at `created`, without the record
        (None in another format than TEXT_FORMAT)."""
        if self._fmt != TEXT_FORMAT or not self.default_msec_format:
            return None
        clock = self._clock(created, _msecs(created))
        return f"{clock} {ACCESS_LOGGER} INFO [{request_id}] {message}"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC), level, logger, message, request id, access fields."""

    def __init__(self) -> None:
        super().__init__()
        self._second: float | None = None
        self._second_text = ""

    def utc_time(self, created: float) -> str:
        """`created` to the second in UTC, formatted once per second (the same second repeats
        for every line logged within it)."""
        second = created // 1  # gmtime floors a time to its second, as this does
        if second != self._second:
            self._second_text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._second = second
        return self._second_text

    def access_line(
        self, created: float, request_id: str, message: str, fields: Fields
    ) -> str | None:
        """What `format` makes of an access record logged at `created`, without the record."""
        line: dict[str, Any] = {
            "time": self.utc_time(created) + f".{int(_msecs(created)):03d}Z",
            "level": "INFO",
            "logger": ACCESS_LOGGER,
            "message": message,
            "request_id": request_id,
            **fields,
        }
        return json.dumps(line, ensure_ascii=False)

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": self.utc_time(record.created) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", _NO_REQUEST),
        }
        line.update({k: getattr(record, k) for k in ACCESS_FIELDS if hasattr(record, k)})
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


class LineHandler(logging.StreamHandler[TextIO]):
    """stderr lines logged in the event loop written together, at most DELAY_S later, not once
    each: a write per access line was a twentieth of a single-event webhook's CPU. A WARNING or
    worse, a line logged outside a running loop, or a full buffer writes at once, behind the
    lines waiting."""

    MAX_WAITING = 1000
    DELAY_S = 0.1

    def __init__(self) -> None:
        super().__init__()
        self._waiting: list[str] = []
        self._due: asyncio.AbstractEventLoop | None = None  # the loop that will write them

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._queue(self.format(record), at_once=record.levelno >= logging.WARNING)
        except RecursionError:
            raise
        except Exception:
            self.handleError(record)

    def _queue(self, line: str, at_once: bool) -> None:
        """Add a line; write now when asked to, when the buffer is full, or outside a loop."""
        self._waiting.append(line + self.terminator)
        if at_once or len(self._waiting) >= self.MAX_WAITING or not self._write_later():
            self.flush()

    def _write_later(self) -> bool:
        """Ask the running loop, if any, to write DELAY_S later; False outside a loop."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return False
        if self._due is not loop:
            loop.call_later(self.DELAY_S, self._write_due)
            self._due = loop
        return True

    def write_access(self, request_id: str, message: str, fields: Fields) -> bool:
        """Queue an access line as `emit` would queue its record's; False when this handler's
        formatter cannot render one without the record."""
        formatter = self.formatter
        if not isinstance(formatter, TextFormatter | JsonFormatter):
            return False
        line = formatter.access_line(RECORD_CLOCK.now(), request_id, message, fields)
        if line is None:
            return False
        try:
            with self.lock:  # type: ignore[union-attr]
                self._queue(line, at_once=False)
        except Exception:  # reported and dropped, as `emit` does with a line it cannot write
            self.handleError(logging.makeLogRecord({"msg": message}))
        return True

    def _write_due(self) -> None:
        with self.lock:  # type: ignore[union-attr]  # Handler.__init__ made it
            self._due = None
        try:
            self.flush()
        except Exception:  # as `emit` reports a failed write, not as the loop's callback error
            self.handleError(logging.makeLogRecord({"msg": "writing waiting log lines"}))

    def flush(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            if self._waiting:
                text = "".join(self._waiting)
                self._waiting.clear()
                self.stream.write(text)
            super().flush()


def configure(level: str, log_format: LogFormat) -> None:
    """One stderr handler on the root logger in the chosen format (uvicorn's own loggers
    propagate to it: `serve` passes no log config). Like `logging.basicConfig`, it leaves a
    root logger that already has someone else's handlers alone (a test runner's capture, an
    embedding application); calling it again replaces only its own handler."""
    root = logging.getLogger()
    if any(not getattr(h, "ccpulse", False) for h in root.handlers):
        return
    handler = LineHandler()
    handler.ccpulse = True  # type: ignore[attr-defined]
    handler.addFilter(RequestIdFilter())
    if log_format == "json":
        formatter: logging.Formatter = JsonFormatter()
    else:
        formatter = TextFormatter(TEXT_FORMAT)
    handler.setFormatter(formatter)
    # Neither format shows a thread, a process or a multiprocessing name: records skip finding
    # them (the logging HOWTO's "Optimization"). Where a line was logged from is still found.
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for noisy in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


class AccessLog:
    """ASGI middleware: binds the request id for the request's log lines, echoes it in the
    response's X-Request-ID, and writes one access line when `enabled` (websockets: ids only)."""

    def __init__(self, app: ASGIApp, enabled: bool = True) -> None:
        self.app = app
        self.enabled = enabled
        self.log = logging.getLogger(ACCESS_LOGGER)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        request_id = accepted_request_id(_header(scope, REQUEST_ID_HEADER))
        token = request_id_var.set(request_id)
        status = 500  # what the client sees if the app raises before answering
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                headers = list(message.get("headers", []))
                headers.append((REQUEST_ID_HEADER.encode(), request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            if self.enabled and scope["type"] == "http":
                self._write(scope, status, (time.perf_counter() - started) * 1000)
            request_id_var.reset(token)

    def _write(self, scope: Scope, status: int, duration_ms: float) -> None:
        log = self.log
        if not log.isEnabledFor(logging.INFO):
            return
        route = getattr(scope.get("route"), "path", None)
        path = loggable_path(scope.get("path", ""), route, scope.get("query_string", b""))
        fields = {
            "method": scope.get("method", ""),
            "path": path,
            "status": status,
            "duration_ms": round(duration_ms, 2),
        }
        args = (fields["method"], path, status, duration_ms)
        handler = _sole_handler(log)
        if handler is not None and handler.write_access(
            request_id_var.get(), _ACCESS % args, fields
        ):
            return
        # what `log.info` does, less finding the caller in the stack (this line names none)
        file, line, function = _NO_CALLER
        record = log.makeRecord(
            log.name, logging.INFO, file, line, _ACCESS, args, None, function, fields
        )
        log.handle(record)


def _sole_handler(log: logging.Logger) -> LineHandler | None:
    """`configure`'s handler when a record of `log` would reach it and nothing else: no
    handler, filter or stop on the way up, and the handler filters only with RequestIdFilter.
    Then an access line can skip the record (`LineHandler.write_access`): a sixth of a
    single-event webhook's CPU went into making, filtering and formatting it."""
    found: LineHandler | None = None
    current: logging.Logger | None = log
    while current is not None:
        if current.filters or current.disabled:
            return None
        for handler in current.handlers:
            if found is not None or not isinstance(handler, LineHandler):
                return None
            found = handler
        if not current.propagate:
            break
        current = current.parent
    if found is None or found.level > logging.INFO or len(found.filters) != 1:
        return None
    return found if isinstance(found.filters[0], RequestIdFilter) else None


def _header(scope: Scope, name: str) -> str | None:
    """The last value of a header (as a dict of the headers would keep it)."""
    wanted, value = name.encode(), None
    for key, found in scope.get("headers", ()):
        if key == wanted:
            value = found
    return value.decode("latin-1") if value is not None else None
