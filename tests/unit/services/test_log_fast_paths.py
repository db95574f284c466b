"""The access line's fast paths write exactly what the plain ones wrote: the time formatted once
per second, the record built without `Logger.info`, and the cheaper random request id."""

from __future__ import annotations

import json
import logging
import time
import uuid
from typing import Any

import pytest

from services import logs

# across second boundaries, back in time (a clock step), and the same second again
TIMES = [
    1_700_000_000.0,
    1_700_000_000.999,
    1_700_000_001.0,
    1_700_000_001.5004,
    1_699_999_999.9996,
    1_700_000_001.25,
    86_400.25,
    0.0,
]


def record_at(created: float) -> logging.LogRecord:
    record = logging.LogRecord("ccpulse.x", logging.INFO, __file__, 1, "hello %s", ("w",), None)
    record.created = created
    record.msecs = int((created - int(created)) * 1000) + 0.0  # as LogRecord sets it
    record.request_id = "abcdefgh1"
    return record


def test_text_time_is_the_uncached_formatting() -> None:
    cached, plain = logs.TextFormatter(logs.TEXT_FORMAT), logging.Formatter(logs.TEXT_FORMAT)
    for created in TIMES:
        assert cached.format(record_at(created)) == plain.format(record_at(created)), created


def test_text_time_follows_a_given_date_format() -> None:
    cached, plain = logs.TextFormatter(logs.TEXT_FORMAT), logging.Formatter(logs.TEXT_FORMAT)
    for created in TIMES:
        record = record_at(created)
        assert cached.formatTime(record, "%H:%M") == plain.formatTime(record, "%H:%M")


def test_json_time_is_the_uncached_formatting() -> None:
    formatter = logs.JsonFormatter()
    for created in TIMES:
        plain = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created))
        expected = plain + f".{int(record_at(created).msecs):03d}Z"
        assert json.loads(formatter.format(record_at(created)))["time"] == expected, created


def test_new_request_ids_are_distinct_uuid4s() -> None:
    ids = [logs.new_request_id() for _ in range(2_000)]
    assert len(set(ids)) == len(ids)
    for value in ids:
        parsed = uuid.UUID(hex=value)
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122
        assert parsed.hex == value and len(value) == 32
    # every other bit is left random: each of them is seen both set and clear
    ones = 0
    zeros = 0
    for value in ids:
        bits = int(value, 16)
        ones |= bits
        zeros |= ~bits
    assert ones & zeros & ((1 << 128) - 1) == ((1 << 128) - 1) & logs._UUID4_CLEAR


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def access() -> Any:
    logger = logging.getLogger(logs.ACCESS_LOGGER)
    handler, level = Records(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield logger, handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def scope() -> dict[str, Any]:
    return {"type": "http", "method": "POST", "path": "/v1/events", "query_string": b"a=1"}


def test_access_record_is_what_logger_info_made(access: Any) -> None:
    logger, handler = access
    logs.AccessLog(app=None, enabled=True)._write(scope(), 202, 1.234)  # type: ignore[arg-type]
    fields = {"method": "POST", "path": "/v1/events?a", "status": 202, "duration_ms": 1.23}
    logger.info("%s %s %d %.1fms", "POST", "/v1/events?a", 202, 1.234, extra=fields)
    ours, plain = handler.records
    assert ours.getMessage() == plain.getMessage() == "POST /v1/events?a 202 1.2ms"
    for name in ("name", "levelno", "levelname", "msg", "args", "exc_info", *fields):
        assert getattr(ours, name) == getattr(plain, name), name
    text = logging.Formatter(logs.TEXT_FORMAT)
    for record in (ours, plain):
        record.request_id = "abcdefgh1"
        record.created, record.msecs = 86_400.25, 250.0
    assert text.format(ours) == text.format(plain)
    assert logs.JsonFormatter().format(ours) == logs.JsonFormatter().format(plain)


def test_no_access_record_below_info(access: Any) -> None:
    logger, handler = access
    logger.setLevel(logging.WARNING)
    logs.AccessLog(app=None, enabled=True)._write(scope(), 202, 1.0)  # type: ignore[arg-type]
    assert handler.records == []
