"""After a run with known personal values, none of them is found in Kafka, Redis, SQL or logs.

The values come in every shape a review found leaking: a name in `attributes.customer_name` (and
in JSON inside an attribute), `tel:` URIs, `+44 (0) 20 … ext. 12` numbers inside free text and
`reason`, a phone number or an e-mail address as the contact and agent id (the Kafka key and the
Redis key `ccp:f:…`), message bodies (Chatwoot `content`, Zendesk comments, Twilio SMS `Body`),
and Twilio's caller name and location. Kafka (every topic, keys and values), Redis (every key and
value, and the AOF file), the SQL history and every process log are searched.
"""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

import httpx
import pytest
import redis
from aiokafka import AIOKafkaConsumer

from services import keys
from simulator.scenario import iso
from tests.clock import clock
from tests.conftest import PipelineFactory
from tests.e2e import scenarios_vendors as sv
from tests.e2e.test_vendors_e2e import SECRETS, env
from tests.harness import Pipeline, wait_until

pytestmark = pytest.mark.e2e

PHONE = re.compile(rb"\+?\d[\d ()\-.]{8,}\d")
EMAIL = re.compile(rb"[\w.+-]+@[\w-]+\.[\w.]+")
KNOWN = ["+44 20 7946 0999", "jane.roe@example.org"]
# Shapes that leaked before: each must be absent, and so must the digits of each number.
NAME = "Ophelia Quixote"
CONTACT_PHONE = "+44 20 7946 0333"
AGENT_MAIL = "agent.smith@example.com"
CONTACT_MAIL = "o.quixote@example.net"
NUMBERS = [
    "+44 (0) 20 7946 0555 ext. 12",
    "+44 (0) 20 7946 0777 ext. 12",
    "+442079460666",
    "+44 20 7946 0444",
    CONTACT_PHONE,
    "+44 20 7946 0888",
    "+44 20 7946 0123",
]
MARKERS = [
    NAME,
    "Quixote",
    "QUIXOTEVILLE",
    "QX1 2YZ",
    "221B Baker",
    "QUIXOTEBODY",
    "QUIXOTESMS",
    "ophelia.q@example.net",
    CONTACT_MAIL,
    AGENT_MAIL,
]


def personal_values(bodies: list[bytes]) -> set[str]:
    """Every phone number and e-mail address the vendors' payloads carry (decoded forms too)."""
    found: set[str] = set(KNOWN)
    for body in bodies:
        for text in (body, unquote_plus(body.decode(errors="replace")).encode()):
            for match in [*PHONE.findall(text), *EMAIL.findall(text)]:
                value = match.decode().strip()
                if sum(ch.isdigit() for ch in value) >= 9 or "@" in value:
                    found.add(value)
    return {v for v in found if not re.fullmatch(r"\d{9,}(\.\d+)?", v)}  # drop epoch timestamps


def subscriber_digits(number: str) -> str:
    """`+44 (0) 20 7946 0555 ext. 12` -> `2079460555`: the number however it is punctuated."""
    digits = "".join(ch for ch in number.split("ext")[0] if ch.isdigit())
    return digits[-10:]


def redis_dump(url: str) -> bytes:
    r = redis.Redis.from_url(url)
    parts: list[bytes] = []
    for key in r.scan_iter(count=1000):
        parts.append(key)
        kind = r.type(key)
        if kind == b"string":
            parts.append(r.get(key) or b"")
        elif kind == b"hash":
            parts.extend(k + v for k, v in r.hgetall(key).items())
        elif kind == b"zset":
            parts.extend(m for m, _ in r.zrange(key, 0, -1, withscores=True))
        elif kind == b"set":
            parts.extend(r.smembers(key))
        elif kind == b"list":
            parts.extend(r.lrange(key, 0, -1))
    return b"\n".join(parts)


def kafka_dump(bootstrap: str) -> bytes:
    """Keys and values of every record of every ccpulse topic (the DLQ included)."""

    async def run() -> bytes:
        consumer = AIOKafkaConsumer(
            *keys.ALL_TOPICS,
            bootstrap_servers=bootstrap,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        await consumer.start()
        out: list[bytes] = []
        try:
            quiet = 0
            while quiet < 6:
                batch = await consumer.getmany(timeout_ms=500)
                records = [r for rs in batch.values() for r in rs]
                quiet = 0 if records else quiet + 1
                out.extend((r.key or b"") + b"\t" + (r.value or b"") for r in records)
        finally:
            await consumer.stop()
        return b"\n".join(out)

    return asyncio.run(run())


def files_dump(root: Path) -> bytes:
    """Every file under the test's directory: process logs, SQL history, Redis's AOF, broker."""
    return b"\n".join(p.read_bytes() for p in root.rglob("*") if p.is_file())


def own_events(now: float) -> list[dict[str, Any]]:
    attributes = {
        "customer_name": NAME,
        "note": f"ring {NUMBERS[0]}",
        "uri": f"tel:{NUMBERS[2]}",
        "nested": '{"contact": {"customerName": "' + NAME + '"}}',
    }
    reason = f"call back on {NUMBERS[1]} or write to ophelia.q@example.net"
    return [
        {
            "id": "pd1",
            "type": "contact.offered",
            "time": iso(now - 5),
            "contact": "pd1",
            "channel": "voice",
            "customer": KNOWN[0],
            "attributes": {"email": KNOWN[1]},
        },
        {
            "id": "pd3",
            "type": "contact.offered",
            "time": iso(now - 5),
            "contact": CONTACT_PHONE,
            "channel": "voice",
            "queue": "pdq",
            "customer": f"tel:{NUMBERS[3]}",
            "attributes": attributes,
            "reason": reason,
        },
        {
            "id": "pd4",
            "type": "contact.answered",
            "time": iso(now - 4),
            "contact": CONTACT_PHONE,
            "agent": AGENT_MAIL,
        },
        {
            "id": "pd5",
            "type": "agent.state",
            "time": iso(now - 4),
            "agent": AGENT_MAIL,
            "state": "available",
        },
        {
            "id": "pd6",
            "type": "contact.offered",
            "time": iso(now - 3),
            "contact": f"mailto:{CONTACT_MAIL}",
            "channel": "email",
            "queue": "pdq",
        },
    ]


def vendor_bodies(now: float, secrets: sv.Secrets) -> list[sv.Request]:
    """Bodies, names and locations the adapters do not map but the raw topic used to keep."""
    chat = {
        "event": "message_created",
        "id": "pd77",
        "message_type": "incoming",
        "private": False,
        "created_at": iso(now - 10),
        "content": f"QUIXOTEBODY call me on {NUMBERS[5]}, I live at 221B Baker Street",
        "sender": {"id": 5, "name": NAME, "type": "contact", "phone_number": NUMBERS[5]},
        "conversation": {"id": "pd77", "inbox_id": 1, "channel": "Channel::WebWidget"},
    }
    comment = {
        "comment": {
            "id": "c1",
            "body": "QUIXOTEBODY from the customer",
            "html_body": "<p>QUIXOTEBODY</p>",
            "is_public": True,
            "author": {"id": "12", "is_staff": False, "name": NAME},
        }
    }
    ticket = sv._ticket_event("comment_added", "pd88", "pdev-1", now - 10, comment)
    sms = {
        **sv._call_completed("CApd99", now - 10, 30, NUMBERS[4]),
        "Body": "QUIXOTESMS",
        "CallerName": NAME,
        "FromCity": "QUIXOTEVILLE",
        "FromState": "QUIXOTEVILLE",
        "FromZip": "QX1 2YZ",
        "ToCity": "QUIXOTEVILLE",
        "CallerCity": "QUIXOTEVILLE",
        "CallerZip": "QX1 2YZ",
        "FromCountry": "GB",
        "To": NUMBERS[6],
    }
    return [
        sv._chatwoot_request(chat, secrets, now),
        sv._zendesk_request(ticket, secrets, now),
        sv._twilio_request("/webhooks/twilio/voice", sms, secrets),
    ]


def search_stores(pipeline: Pipeline) -> dict[str, bytes]:
    return {
        "redis": redis_dump(pipeline.redis_url),
        "kafka": kafka_dump(pipeline.bootstrap),
        "files (logs, sql, redis aof, broker)": files_dump(Path(pipeline.workdir)),
    }


def pdq_offered(pipeline: Pipeline) -> int:
    queues = pipeline.live(window="4h")["queues"]
    return sum(int(v.get("offered") or 0) for k, v in queues.items() if k.startswith("pdq"))


def test_no_personal_value_is_stored_or_logged(pipeline_factory: PipelineFactory) -> None:
    pipeline = pipeline_factory(env())
    now = clock.now()
    secrets = sv.Secrets(base_url=pipeline.ingest_url, **SECRETS)
    scenarios = [
        sv.twilio(now, "pd", secrets),
        sv.chatwoot(now, "pd", secrets),
        sv.zendesk(now, "pd", secrets),
    ]
    requests = [r for s in scenarios for r in s.requests] + vendor_bodies(now, secrets)
    values = personal_values([body for _, _, body in requests])
    assert len(values) >= 4, values
    own = own_events(now)
    refused = {
        "id": "pd2",
        "type": "nonsense",
        "time": iso(now - 5),
        "contact": "pd2",
        "customer": KNOWN[1],
    }
    with httpx.Client(base_url=pipeline.ingest_url, timeout=30) as client:
        for path, headers, body in requests:
            response = client.post(path, headers=headers, content=body)
            assert response.status_code < 300, (path, response.text)
        response = client.post("/v1/events", json=own)
        assert response.status_code == 202, response.text
        assert client.post("/v1/events", json=[refused]).status_code == 422
    wait_until(lambda: pdq_offered(pipeline) == 2, 60, "figures")
    time.sleep(1.5)  # Redis writes its AOF every second
    stores = search_stores(pipeline)
    assert b"h:" in stores["kafka"], "customers arrive hashed"
    assert any(path.name.endswith(".aof") for path in Path(pipeline.workdir).rglob("*"))
    wanted = values | set(NUMBERS) | set(MARKERS) | {subscriber_digits(n) for n in NUMBERS}
    leaks = [
        f"{value!r} found in {where}: ...{around(blob, value.encode())!r}..."
        for where, blob in stores.items()
        for value in sorted(wanted)
        if value.encode() in blob
    ]
    assert not leaks, "\n".join(leaks)


def around(blob: bytes, value: bytes, width: int = 150) -> bytes:
    at = blob.index(value)
    return blob[max(0, at - width) : at + len(value) + width]
