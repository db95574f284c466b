"""Log lines: request ids, the access line's path, the JSON format (services/logs.py)."""

from __future__ import annotations

import json
import logging
import subprocess
import sys

import pytest

from services import logs


@pytest.mark.parametrize(
    ("incoming", "kept"),
    [
        ("4b1f0c7e-9d2a-4c55-8e1b-2f6d7a9c0e13", True),
        ("req.abc:123_x-y", True),
        (None, False),
        ("", False),
        ("short", False),  # fewer than 8 characters
        ("447911123456", False),  # a bare number may be a phone number
        ("jane@example.org", False),
        ("has space in it", False),
        ("x" * 129, False),
    ],
)
def test_request_id_is_kept_only_when_well_formed(incoming: str | None, kept: bool) -> None:
    got = logs.accepted_request_id(incoming)
    assert (got == incoming) is kept
    assert logs.accepted_request_id(None) != logs.accepted_request_id(None)  # fresh each time


@pytest.mark.parametrize(
    ("path", "route", "query", "logged"),
    [
        ("/api/v1/live", None, b"window=5m", "/api/v1/live?window"),
        ("/api/v1/live", None, b"from=1&to=2&from=3", "/api/v1/live?from&to"),
        (
            "/v1/webhooks/twilio",
            None,
            b"From=%2B447911123456&Email=a%40b.c",
            "/v1/webhooks/twilio?From&Email",
        ),
        ("/v1/x/+44 20 7946 0000/y", None, b"", "/v1/x/:redacted/y"),
        ("/v1/x/jane%40example.org", None, b"", "/v1/x/:redacted"),
        ("/agents/Jane Roe", "/agents/{name}", b"", "/agents/{name}"),
        ("/v1/x", None, b"%2B447911123456=1", "/v1/x"),  # a number as a parameter name
    ],
)
def test_logged_path_has_no_values(path: str, route: str | None, query: bytes, logged: str) -> None:
    assert logs.loggable_path(path, route, query) == logged


def test_json_line_carries_request_id_and_access_fields() -> None:
    record = logging.LogRecord("ccpulse.access", logging.INFO, __file__, 1, "GET %s", ("/x",), None)
    record.method, record.path, record.status, record.duration_ms = "GET", "/x", 200, 1.5
    token = logs.request_id_var.set("abcdefgh1")
    try:
        logs.RequestIdFilter().filter(record)
    finally:
        logs.request_id_var.reset(token)
    line = json.loads(logs.JsonFormatter().format(record))
    assert line["message"] == "GET /x"
    assert line["request_id"] == "abcdefgh1"
    assert (line["method"], line["path"], line["status"], line["duration_ms"]) == (
        "GET",
        "/x",
        200,
        1.5,
    )
    assert line["level"] == "INFO" and line["logger"] == "ccpulse.access"
    record.created, record.msecs = 86_400.25, 250.0
    assert json.loads(logs.JsonFormatter().format(record))["time"] == "1970-01-02T00:00:00.250Z"


@pytest.mark.parametrize("log_format", ["json", "text"])
def test_a_process_logs_in_the_chosen_format(log_format: str) -> None:
    code = (
        "import logging; from services import logs; "
        f"logs.configure('info', {log_format!r}); logs.configure('info', {log_format!r}); "
        "logging.getLogger('ccpulse.x').info('hello %s', 1); "
        "logging.getLogger('uvicorn.error').info('hidden')"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    lines = run.stderr.splitlines()
    assert len(lines) == 1, run.stderr  # configured twice: still one handler; uvicorn INFO quiet
    if log_format == "json":
        line = json.loads(lines[0])
        assert (line["logger"], line["message"], line["request_id"]) == (
            "ccpulse.x",
            "hello 1",
            "-",
        )
    else:
        assert lines[0].endswith("ccpulse.x INFO [-] hello 1"), lines[0]


def test_leaves_someone_elses_root_handlers_alone() -> None:
    root = logging.getLogger()
    before, level = list(root.handlers), root.level
    assert before  # pytest's capture handler, while the test runs
    logs.configure("DEBUG", "json")
    assert root.handlers == before and root.level == level
