"""Formats the vendors do send: Twilio callbacks with method GET, Firehose records holding
indented (multi-line) JSON. Through the real ingest app, signed as the vendors sign."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
from datetime import UTC, datetime
from email.utils import format_datetime
from urllib.parse import urlencode

import httpx
import pytest

from ingest.queue_log import HttpSink
from tests.clock import clock
from tests.integration.test_webhooks import make_app, make_client, settings_with
from tests.unit.ingest.test_adapters_amazon_connect import CTR
from tests.unit.ingest.test_adapters_twilio import STATUS_CALLBACK


def _twilio_get_signature(token: str, url: str) -> str:
    """Twilio's rule for GET: HMAC-SHA1 over the full URL, query string included, nothing else."""
    digest = hmac.new(token.encode(), url.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


async def test_twilio_status_callback_with_method_get() -> None:
    client, publisher = make_client()
    stamp = format_datetime(datetime.fromtimestamp(clock.now() - 60, UTC))
    query = urlencode({**STATUS_CALLBACK, "CallSid": "CAget1", "Timestamp": stamp})
    url = f"http://testserver/webhooks/twilio/voice?{query}&stage=menu"
    signature = _twilio_get_signature("twilio-token", url)
    async with client:
        answer = await client.get(url, headers={"x-twilio-signature": signature})
        assert answer.status_code == 202, answer.text
        assert answer.json()["accepted"] == 4  # offered, IVR, completed, end-of-call report
        forged = await client.get(url + "x", headers={"x-twilio-signature": signature})
        assert forged.status_code == 401
    events = publisher.events()
    assert {e["contact"] for e in events} == {"twilio:CAget1"}
    assert any(e.get("stage") == "menu" for e in events)  # the URL's own `stage` still applies


def _firehose(texts: list[str]) -> bytes:
    records = [{"data": base64.b64encode(t.encode()).decode()} for t in texts]
    body = {"requestId": "req-indented", "timestamp": int(clock.now() * 1000), "records": records}
    return json.dumps(body).encode()


async def test_firehose_records_with_indented_json_are_accepted() -> None:
    """One record pretty-printed over many lines, one holding two documents back to back."""
    # The documented record, moved to yesterday (under the 48 h lateness window at any hour).
    yesterday = datetime.fromtimestamp(clock.now() - 86400, UTC).date().isoformat()
    ctr = json.loads(json.dumps(CTR).replace("2021-08-04", yesterday))
    other = {**ctr, "ContactId": "22222222-2222-2222-2222-222222222222"}
    texts = [json.dumps(ctr, indent=2), json.dumps(other, indent=4) + json.dumps(ctr)]
    client, publisher = make_client()
    headers = {"content-type": "application/json", "x-amz-firehose-access-key": "connect-token"}
    async with client:
        answer = await client.post(
            "/webhooks/amazon-connect", headers=headers, content=_firehose(texts)
        )
    assert answer.status_code == 200, answer.text
    assert "errorMessage" not in answer.json()
    contacts = {e["contact"] for e in publisher.events()}
    assert contacts == {
        "connect:11111111-1111-1111-1111-111111111111",
        "connect:22222222-2222-2222-2222-222222222222",
    }


# --- events older than the lateness window (48 h): said in the answer, refused when all are ---


def _event(n: str, age_s: float) -> dict[str, object]:
    when = datetime.fromtimestamp(clock.now() - age_s, UTC).isoformat()
    return {"id": n, "type": "contact.offered", "time": when, "contact": n, "channel": "voice"}


async def test_the_answer_says_how_many_events_are_too_old() -> None:
    client, _ = make_client()
    batch = [_event("fresh", 60), _event("old", 49 * 3600)]
    async with client:
        answer = await client.post("/v1/events", json=batch)
        assert answer.status_code == 202, answer.text
        body = answer.json()
        assert (body["accepted"], body["too_old"]) == (2, 1)
        assert "ccpulse.events.dlq" in body["too_old_detail"]
        fresh = await client.post("/v1/events", json=[_event("fresh2", 60)])
        assert "too_old" not in fresh.json()
        assert (
            client.counter("ccpulse_ingest_events_total", source="events", outcome="too_old") == 1
        )


async def test_a_batch_only_of_old_events_is_refused_naming_time() -> None:
    client, publisher = make_client()
    async with client:
        answer = await client.post("/v1/events", json=[_event("a", 49 * 3600), _event("b", 90e5)])
    assert answer.status_code == 422
    assert [(e["index"], e["field"]) for e in answer.json()["errors"]] == [(0, "time"), (1, "time")]
    assert "history import" in answer.json()["detail"]
    assert not publisher.events()


async def test_a_vendor_callback_older_than_the_window_is_refused_naming_time() -> None:
    client, publisher = make_client(secrets=None)
    stamp = format_datetime(datetime.fromtimestamp(clock.now() - 50 * 3600, UTC))
    params = {**STATUS_CALLBACK, "Timestamp": stamp}
    async with client:
        answer = await client.post("/webhooks/twilio/voice", data=params)
    assert answer.status_code == 422, answer.text
    assert answer.json()["errors"][0]["field"] == "time"
    assert not publisher.events()


async def test_the_queue_log_backfill_of_old_lines_is_acknowledged_and_said(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A rotated log older than the window: the follower must not retry it forever."""
    app, _ = make_app(settings_with(None))
    old = int(clock.now() - 50 * 3600)
    lines = [
        f"{old}|1.1|support|NONE|ENTERQUEUE||4155550100|1",
        f"{old + 9}|1.1|support|NONE|ABANDON|1|1|9",
    ]
    caplog.set_level(logging.WARNING, logger="ccpulse.ingest")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app)) as http:
        await HttpSink(http, "http://testserver")(lines)
    assert any("too old for live figures" in r.getMessage() for r in caplog.records)
