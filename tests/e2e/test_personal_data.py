"""After a run with known personal values, none of them is found in Kafka, Redis, SQL or logs."""

from __future__ import annotations

import re
import time
from pathlib import Path
from urllib.parse import unquote_plus

import httpx
import pytest
import redis

from services import keys
from simulator.scenario import iso
from tests.clock import clock
from tests.conftest import PipelineFactory
from tests.e2e import scenarios_vendors as sv
from tests.e2e.test_vendors_e2e import SECRETS, env
from tests.harness import wait_until
from tests.kafka_tools import consume_all

pytestmark = pytest.mark.e2e

PHONE = re.compile(rb"\+?\d[\d ()\-.]{8,}\d")
EMAIL = re.compile(rb"[\w.+-]+@[\w-]+\.[\w.]+")
KNOWN = ["+44 20 7946 0999", "jane.roe@example.org"]


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
    return b"\n".join(parts)


def test_no_personal_value_is_stored_or_logged(pipeline_factory: PipelineFactory) -> None:
    pipeline = pipeline_factory(env())
    secrets = sv.Secrets(base_url=pipeline.ingest_url, **SECRETS)
    scenarios = [sv.twilio(clock.now(), "pd", secrets), sv.chatwoot(clock.now(), "pd", secrets),
                 sv.zendesk(clock.now(), "pd", secrets)]  # fmt: skip
    requests = [r for s in scenarios for r in s.requests]
    values = personal_values([body for _, _, body in requests])
    assert len(values) >= 4, values
    own = [{"id": "pd1", "type": "contact.offered", "time": iso(clock.now() - 5), "contact": "pd1",
            "channel": "voice", "customer": KNOWN[0], "attributes": {"email": KNOWN[1]}},
           {"id": "pd2", "type": "nonsense", "time": iso(clock.now() - 5), "contact": "pd2",
            "customer": KNOWN[1]}]  # fmt: skip
    with httpx.Client(base_url=pipeline.ingest_url, timeout=30) as client:
        for path, headers, body in requests:
            assert client.post(path, headers=headers, content=body).status_code < 300
        assert client.post("/v1/events", json=own[:1]).status_code == 202
        assert client.post("/v1/events", json=own[1:]).status_code == 422
    wait_until(lambda: pipeline.live(window="4h")["channels"].get("voice"), 60, "figures")
    time.sleep(1)
    stores = {
        "redis": redis_dump(pipeline.redis_url),
        "kafka": b"\n".join(
            b"\n".join(consume_all(pipeline.bootstrap, topic, expect=10**9, timeout=5))
            for topic in (keys.TOPIC_EVENTS, keys.TOPIC_RAW, keys.TOPIC_DLQ)
        ),
        "logs+sql": b"\n".join(p.read_bytes() for p in Path(pipeline.workdir).rglob("*")
                               if p.is_file() and p.suffix in (".log", ".db", ".json")),
    }  # fmt: skip
    assert b"h:" in stores["kafka"], "customers arrive hashed"
    for where, blob in stores.items():
        for value in values:
            assert value.encode() not in blob, f"{value!r} found in {where}"
