"""The ingest as a real process on a real socket, attacked: rate limits unauthenticated traffic
cannot spend, hostile header bytes, Twilio's signed URL, slow headers, and dates out of range.

Each test starts `python -m ingest` against the session's embedded broker, with its own settings.
"""

from __future__ import annotations

import json
import socket
import time
from collections import Counter

import httpx
import pytest
from pydantic import ValidationError

from services.sources import SourceSettings
from simulator.scenario import iso
from tests.clock import clock
from tests.conftest import PipelineFactory
from tests.e2e import scenarios_vendors as sv
from tests.harness import closed_within
from tests.stackfixtures import Ingest

SECRET = "chatwoot-hardening-secret-0123456789"
TOKEN = "ingest-hardening-token-0123456789"


def chatwoot_body(tag: str) -> dict[str, object]:
    return {
        "event": "conversation_created",
        "id": tag,
        "inbox_id": 1,
        "status": "open",
        "channel": "Channel::WebWidget",
        "created_at": int(clock.now()) - 5,
        "meta": {"sender": {"type": "contact", "email": "x@example.com"}},
    }


def test_unsigned_junk_cannot_starve_a_signed_webhook(ingest: Ingest) -> None:
    limits = {"CCPULSE_INGEST_RATE_PER_SECOND": "20", "CCPULSE_INGEST_BURST": "100"}
    url = ingest({"CCPULSE_SOURCES__CHATWOOT_SECRET": SECRET, **limits})
    junk = json.dumps(chatwoot_body("junk")).encode()
    with httpx.Client(base_url=url, timeout=30) as client:
        answers = Counter(
            client.post(
                "/webhooks/chatwoot", content=junk, headers={"content-type": "application/json"}
            ).status_code
            for _ in range(700)
        )
        path, headers, body = sv._chatwoot_request(
            chatwoot_body("good"), sv.Secrets(chatwoot_secret=SECRET), clock.now()
        )
        signed = client.post(path, headers=headers, content=body)
    assert answers[401] >= 1 and answers[429] >= 1, answers  # the junk's own budget ran out
    assert set(answers) <= {401, 429}, answers
    assert signed.status_code == 202, signed.text


@pytest.mark.parametrize(
    "value",
    ["Bearer tökén".encode(), b"Bearer \xff\xfe\x80", "Bearer ключ".encode(), b"Bearer \xc3"],
)
def test_a_non_ascii_bearer_token_is_a_clear_401(ingest: Ingest, value: bytes) -> None:
    url = ingest(
        {
            "CCPULSE_AUTH": "on",
            "CCPULSE_INGEST_TOKENS": json.dumps([TOKEN]),
            "CCPULSE_ADMIN_KEY": "ccp_hardening_admin_key_0123456789",
            "CCPULSE_SOURCES__CLOUDEVENTS_TOKEN": TOKEN,
        }
    )
    event = {
        "id": "na1",
        "type": "contact.offered",
        "time": iso(clock.now() - 5),
        "contact": "na1",
        "channel": "voice",
    }
    with httpx.Client(base_url=url, timeout=30) as client:
        refused = client.post("/v1/events", json=event, headers={"authorization": value})
        webhook = client.post("/v1/cloudevents", json={}, headers={"authorization": value})
    assert refused.status_code == 401, refused.text
    assert "non-ASCII" in refused.json()["detail"]
    assert webhook.status_code == 401, webhook.text


TWILIO_TOKEN = "twilio-hardening-token-0123456789abcdef"
PUBLIC = "https://cc.example.com"
STRONG = {
    "CCPULSE_AUTH": "on",
    "CCPULSE_HASH_KEY": "hash-key-hardening-0123456789abcdef0123",
    "CCPULSE_ADMIN_KEY": "ccp_hardening_admin_key_0123456789abcdef",
    "CCPULSE_INGEST_TOKENS": json.dumps([TOKEN]),
    "CCPULSE_SOURCES__TWILIO_AUTH_TOKEN": TWILIO_TOKEN,
}


def test_off_loopback_twilio_needs_the_public_url(ingest: Ingest) -> None:
    log = ingest({**STRONG, "CCPULSE_INGEST_HOST": "0.0.0.0"}, expect_start=False)
    assert "refusing to start" in log and "CCPULSE_INGEST_PUBLIC_URL" in log, log


def test_twilio_signatures_are_checked_against_the_public_url(ingest: Ingest) -> None:
    url = ingest(
        {"CCPULSE_SOURCES__TWILIO_AUTH_TOKEN": TWILIO_TOKEN, "CCPULSE_INGEST_PUBLIC_URL": PUBLIC}
    )
    params = sv._call_completed("CAhard1", clock.now() - 5, 30, "+14155550100")
    path = "/webhooks/twilio/voice"
    forged = sv._twilio_request(path, params, sv.Secrets("http://evil.example", TWILIO_TOKEN))
    genuine = sv._twilio_request(path, params, sv.Secrets(PUBLIC, TWILIO_TOKEN))
    with httpx.Client(base_url=url, timeout=30) as client:
        refused = client.post(
            path, content=forged[2], headers={**forged[1], "host": "evil.example"}
        )
        accepted = client.post(path, content=genuine[2], headers=genuine[1])
    assert refused.status_code == 401, refused.text
    assert accepted.status_code < 300, accepted.text


def test_slow_headers_are_cut_off_and_a_normal_request_gets_through(ingest: Ingest) -> None:
    url = ingest({"CCPULSE_HTTP_HEADER_TIMEOUT_SECONDS": "2"})
    assert_slow_heads_cut(url, bound_s=2.0)


def test_the_api_cuts_slow_headers_too(pipeline_factory: PipelineFactory) -> None:
    pipeline = pipeline_factory({"CCPULSE_HTTP_HEADER_TIMEOUT_SECONDS": "2"})
    assert_slow_heads_cut(pipeline.api_url, bound_s=2.0)


def assert_slow_heads_cut(url: str, bound_s: float, count: int = 300) -> None:
    """`count` sockets send half a request head and stop: each is closed within the bound, and
    a normal request is answered meanwhile."""
    port = int(url.rsplit(":", 1)[1])
    slow: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.create_connection(("127.0.0.1", port), timeout=5)
            sock.sendall(b"POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: a")
            slow.append(sock)
        opened = time.monotonic()
        assert httpx.get(f"{url}/healthz", timeout=5).status_code == 200
        closed = sum(closed_within(sock, opened + bound_s + 3) for sock in slow)
        assert closed == len(slow), f"{len(slow) - closed} slow connections still open"
        assert httpx.get(f"{url}/healthz", timeout=5).status_code == 200
    finally:
        for sock in slow:
            sock.close()


def test_times_out_of_range_are_refused_at_ingest_naming_time(ingest: Ingest) -> None:
    url = ingest({"CCPULSE_LATENESS_SECONDS": "3600"})
    now = clock.now()

    def event(n: int, when: str) -> dict[str, object]:
        return {
            "id": f"t{n}",
            "type": "contact.offered",
            "time": when,
            "contact": f"t{n}",
            "channel": "voice",
        }

    cases = [
        ("0001-01-01T00:00:00Z", "old"),
        (iso(now - 3590), "old"),
        ("9999-12-31T23:59:59Z", "future"),
        (iso(now + 3600), "future"),
    ]
    chat = {**chatwoot_body("old"), "created_at": 946684800}
    with httpx.Client(base_url=url, timeout=30) as client:
        refused = [
            client.post("/v1/events", json=event(n, when)) for n, (when, _) in enumerate(cases)
        ]
        webhook = client.post("/webhooks/chatwoot", json=chat)
        accepted = client.post("/v1/events", json=event(9, iso(now - 3000)))
    for response, (when, why) in zip(refused, cases, strict=True):
        assert response.status_code == 422, (when, response.text)
        (row,) = response.json()["errors"]
        assert row["field"] == "time" and ("old" if why == "old" else "future") in row["message"]
    assert webhook.status_code == 422 and webhook.json()["errors"][0]["field"] == "time"
    assert accepted.status_code == 202, accepted.text


def test_the_replay_window_has_an_upper_bound() -> None:
    assert SourceSettings(replay_window_seconds=3600).replay_window_seconds == 3600
    with pytest.raises(ValidationError, match="replay_window_seconds"):
        SourceSettings(replay_window_seconds=7 * 86400)
