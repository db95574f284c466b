"""The webhook routes over HTTP with a fake publisher: signatures, mapping, raw copies, refusals.

The broker and Redis are left to the end-to-end tests; here each vendor scenario is posted through
the real app and the published events are recounted by the reference oracle.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Literal

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr

from ingest.app import create_app
from ingest.publisher import BrokerUnavailable, Publisher
from ingest.queue_log import Follower, HttpSink, PositionFile, Unavailable
from services import keys
from services.settings import Settings
from services.sources import SourceSettings
from tests.clock import clock
from tests.e2e import scenarios_vendors as sv
from tests.oracle import recount

SECRETS = sv.Secrets(
    base_url="http://testserver",
    twilio_auth_token="twilio-token",
    chatwoot_secret="chatwoot-secret",
    zendesk_secret="zendesk-secret",
    amazon_connect_token="connect-token",
    asterisk_token="asterisk-token",
    cloudevents_token="ce-token",
)


class SourcedSettings(Settings):
    """Settings with the `sources` section the lead adds to Settings itself."""

    sources: SourceSettings = SourceSettings()
    auth: Literal["on", "off"] = "off"  # unsigned sources are refused with access control on


class FakePublisher(Publisher):
    """Records what would go to each topic; `down` makes it refuse like an absent broker."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.sent: dict[str, list[tuple[bytes | None, bytes]]] = defaultdict(list)
        self.down = False

    async def send_all(self, topic: str, records: list[tuple[bytes | None, bytes]]) -> None:
        if self.down:
            raise BrokerUnavailable("broker unreachable: test")
        self.sent[topic].extend(records)

    async def check(self) -> bool:
        return not self.down

    async def close(self) -> None:
        return None

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(value) for _, value in self.sent[keys.TOPIC_EVENTS]]

    def raw(self) -> list[dict[str, Any]]:
        return [json.loads(value) for _, value in self.sent[keys.TOPIC_RAW]]


def settings_with(secrets: sv.Secrets | None) -> SourcedSettings:
    s = secrets or sv.Secrets()
    token = {k: SecretStr(v) if v else None for k, v in vars(s).items() if k != "base_url"}
    return SourcedSettings(sources=SourceSettings(**token))


class Client(httpx.AsyncClient):
    """An in-process client of one ingest app (ASGI transport: no sockets, no lifespan)."""

    def __init__(self, app: FastAPI) -> None:
        super().__init__(transport=httpx.ASGITransport(app=app), base_url="http://testserver")
        self.app = app

    def counter(self, name: str, **labels: str) -> float:
        value = self.app.state.ingest.metrics.registry.get_sample_value(name, labels)
        return float(value or 0.0)

    async def post_all(self, requests: list[sv.Request]) -> list[int]:
        return [
            (await self.post(path, headers=headers, content=body)).status_code
            for path, headers, body in requests
        ]


def make_app(settings: Settings) -> tuple[FastAPI, FakePublisher]:
    app = create_app(settings)
    publisher = FakePublisher(settings)
    app.state.ingest.publisher = publisher
    return app, publisher


def make_client(secrets: sv.Secrets | None = SECRETS) -> tuple[Client, FakePublisher]:
    app, publisher = make_app(settings_with(secrets))
    return Client(app), publisher


@pytest.fixture
async def signed() -> AsyncIterator[tuple[Client, FakePublisher]]:
    client, publisher = make_client()
    async with client:
        yield client, publisher


@pytest.mark.parametrize("scenario", sv.ALL, ids=lambda f: f.__name__)
async def test_vendor_scenarios_give_the_exact_figures(
    signed: tuple[Client, FakePublisher], scenario: Any
) -> None:
    client, publisher = signed
    now = clock.now()
    built = scenario(now, "t", SECRETS)
    statuses = await client.post_all(built.requests)
    assert all(200 <= s < 300 for s in statuses), statuses
    window = recount(publisher.events(), int(now - 3 * 3600) // 60 * 60, int(now + 3600), {})
    for channel, want in built.expected.items():
        got = window["channels"][channel]
        assert {k: got[k] for k in want} == want, channel


async def test_raw_copies_hold_no_phone_number_or_email(
    signed: tuple[Client, FakePublisher],
) -> None:
    client, publisher = signed
    for scenario in sv.ALL:
        await client.post_all(scenario(clock.now(), "r", SECRETS).requests)
    text = json.dumps(publisher.raw())
    for secret in ("+14155550101", "4155550121", "t1@example.com", "customer@example.com"):
        assert secret not in text
    assert {r["source"] for r in publisher.raw()} >= {"twilio.voice", "asterisk", "zendesk"}
    events = json.dumps(publisher.events())
    assert "+14155550101" not in events and "customer@example.com" not in events


@pytest.mark.parametrize("scenario", sv.ALL, ids=lambda f: f.__name__)
async def test_bad_or_missing_signatures_are_refused_and_counted(scenario: Any) -> None:
    client, publisher = make_client()
    path, headers, body = scenario(clock.now(), "s", SECRETS).requests[0]
    auth = {
        "x-twilio-signature",
        "x-chatwoot-signature",
        "x-zendesk-webhook-signature",
        "x-amz-firehose-access-key",
        "authorization",
    }
    unsigned = {k: v for k, v in headers.items() if k not in auth}
    forged = {**headers, **{k: "forged" for k in headers if k in auth}}
    async with client:
        assert (await client.post(path, headers=unsigned, content=body)).status_code == 401
        answer = await client.post(path, headers=forged, content=body)
        assert answer.status_code == 401
        assert "signature" in answer.json()["detail"]
        refused = "ccpulse_ingest_refused_requests_total"
        assert client.counter(refused, reason="signature_missing") == 1
        assert client.counter(refused, reason="signature_invalid") == 1
    assert not publisher.sent


async def test_without_a_configured_secret_a_source_is_accepted_unsigned() -> None:
    client, publisher = make_client(secrets=None)
    async with client:
        built = sv.chatwoot(clock.now(), "u", sv.Secrets())
        assert all(s < 300 for s in await client.post_all(built.requests))
    assert publisher.events()


async def test_a_replayed_zendesk_delivery_is_refused(signed: tuple[Client, FakePublisher]) -> None:
    client, _ = signed
    old = sv.zendesk(clock.now() - 3600, "z", SECRETS).requests[1]
    answer = await client.post(old[0], headers=old[1], content=old[2])
    assert answer.status_code == 401
    assert answer.json()["detail"].endswith("signature stale")


async def test_twilio_behind_a_proxy_checks_the_public_url() -> None:
    settings = SourcedSettings(
        sources=SourceSettings(
            twilio_auth_token=SecretStr("twilio-token"), twilio_public_url="https://cc.example.com"
        )
    )
    app, _ = make_app(settings)
    public = sv.Secrets(base_url="https://cc.example.com", twilio_auth_token="twilio-token")
    path, headers, body = sv.twilio(clock.now(), "p", public).requests[0]
    async with Client(app) as client:
        assert (await client.post(path, headers=headers, content=body)).status_code == 202


async def test_unused_event_types_get_2xx_and_are_counted(
    signed: tuple[Client, FakePublisher],
) -> None:
    client, _ = signed
    path, headers, body = sv.chatwoot(clock.now(), "i", SECRETS).requests[-1]
    answer = await client.post(path, headers=headers, content=body)
    assert (answer.status_code, answer.json()) == (200, {"accepted": 0, "ignored": 1})
    assert client.counter("ccpulse_ingest_events_total", source="chatwoot", outcome="ignored") == 1


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/webhooks/chatwoot", b"{not json", "body"),
        ("/webhooks/chatwoot", b'{"id": 3}', "event"),
        ("/webhooks/zendesk", b'{"event": "created"}', "ticket_id"),
        (
            "/webhooks/amazon-connect",
            b'{"detail-type": "x", "detail": {"channel": "VOICE"}}',
            "detail.eventType",
        ),
        ("/v1/cloudevents", b'{"specversion": "1.0", "id": "1", "source": "/s"}', "type"),
        (
            "/webhooks/asterisk/queue-log",
            b"1366720340|1.1|q|NONE|ABANDON|1|1|x\n",
            "line 1.waittime",
        ),
        ("/webhooks/twilio/taskrouter", b"EventType=task.created", "TaskSid"),
    ],
)
async def test_malformed_payloads_get_400_naming_the_field(
    path: str, body: bytes, field: str
) -> None:
    client, publisher = make_client(secrets=None)
    async with client:
        kind = "application/x-www-form-urlencoded" if "twilio" in path else "application/json"
        answer = await client.post(path, content=body, headers={"content-type": kind})
        assert answer.status_code == 400, answer.text
        assert answer.json()["errors"][0]["field"] == field
        assert client.counter("ccpulse_ingest_refused_requests_total", reason="malformed") == 1
    assert not publisher.events()


async def test_broker_down_gives_503_with_retry_after(signed: tuple[Client, FakePublisher]) -> None:
    client, publisher = signed
    publisher.down = True
    path, headers, body = sv.asterisk(clock.now(), "b", SECRETS).requests[0]
    answer = await client.post(path, headers=headers, content=body)
    assert answer.status_code == 503
    assert answer.headers["retry-after"]


async def test_firehose_deliveries_get_the_answer_firehose_expects(
    signed: tuple[Client, FakePublisher],
) -> None:
    client, _ = signed
    path, headers, body = sv.amazon_connect(clock.now(), "f", SECRETS).requests[-1]
    answer = await client.post(path, headers=headers, content=body)
    assert answer.status_code == 200
    assert answer.json()["requestId"] == "freq-1"
    assert isinstance(answer.json()["timestamp"], int)


async def test_cloudevents_refuses_other_media_types(signed: tuple[Client, FakePublisher]) -> None:
    client, _ = signed
    headers = {"content-type": "text/xml", "authorization": "Bearer ce-token"}
    answer = await client.post("/v1/cloudevents", headers=headers, content=b"<x/>")
    assert answer.status_code == 415


async def test_the_queue_log_follower_posts_through_the_ingest(tmp_path: Path) -> None:
    client, publisher = make_client()
    log = tmp_path / "queue_log"
    now = int(clock.now())
    log.write_text(
        f"{now - 60}|7.1|support|NONE|ENTERQUEUE||4155550121|1\n"
        f"{now}|7.1|support|NONE|ABANDON|1|1|60\n"
        f"{now}|7.2|support|NONE|ABANDON|1|1|sixty\n"  # refused alone, the rest goes on
        f"{now - 30 * 86400}|7.3|support|NONE|ENTERQUEUE||x|1\n"  # too old: 422, skipped too
    )
    async with client:
        sink = HttpSink(client, "http://testserver", "asterisk-token")
        follower = Follower(log, PositionFile(tmp_path / "pos"), sink)
        assert await follower.step() == 4
        follower.close()
    kinds = sorted(e["type"] for e in publisher.events())
    assert kinds.count("contact.abandoned") == 1
    assert all(e["contact"] != "asterisk:7.3" for e in publisher.events())
    assert all("4155550121" not in json.dumps(r) for r in publisher.raw())


async def test_the_follower_keeps_its_place_while_the_ingest_is_down(tmp_path: Path) -> None:
    client, publisher = make_client()
    publisher.down = True
    log = tmp_path / "queue_log"
    log.write_text(f"{int(clock.now())}|8.1|support|NONE|ENTERQUEUE||x|1\n")
    positions = PositionFile(tmp_path / "pos")
    async with client:
        follower = Follower(log, positions, HttpSink(client, "http://testserver", "asterisk-token"))
        with pytest.raises(Unavailable):
            await follower.step()
        assert positions.load() is None
        publisher.down = False
        assert await follower.step() == 1
        follower.close()
    assert positions.load() is not None
