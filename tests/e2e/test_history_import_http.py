"""History import over HTTP: an admin posts a file to the ingest, the aggregator writes it, the
api reports the job; real broker, Redis, SQLite and the three processes.

Refusals (no key, a viewer's key, bad lines) are immediate; the outcome of the import (rows
written, unchanged on a second post, conflicts refused) is the job's state.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer

from aggregator import topic_reading
from services import keys
from tests.clock import clock
from tests.conftest import PipelineFactory
from tests.harness import Pipeline, wait_until
from tests.integration.test_history_import import ctr

pytestmark = pytest.mark.e2e

ADMIN = "ccp_admin-key-for-the-import-test-" + "a" * 12
VIEWER = "ccp_viewer-key-for-the-import-test-" + "v" * 12
TOKEN = "ingest-token-for-the-import-test-" + "t" * 12
DAY_S = 86400
IMPORTS = "/v1/history/imports"


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z")


def past_day() -> int:
    """Midnight UTC twelve days before the tests' now: history, far from the live window."""
    return int(clock.now() // DAY_S - 12) * DAY_S


def interval_csv(t: int, offered: tuple[int, int]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    columns = "start channel queue offered answered abandoned answered_within_sl handle_seconds"
    writer.writerow([*columns.split(), "answer_wait_seconds"])
    writer.writerow([iso(t), "voice", "sales", offered[0], offered[0] - 10, 10, 50, 24000, 900])
    writer.writerow([iso(t + 900), "chat", "web", offered[1], offered[1], 0, offered[1], 6000, 60])
    return out.getvalue().encode()


def post(p: Pipeline, body: bytes, key: str | None = ADMIN, **params: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.post(
        f"{p.ingest_url}{IMPORTS}", params=params, content=body, headers=headers, timeout=60
    )


def outcome(p: Pipeline, answer: httpx.Response) -> dict[str, Any]:
    """The job's final state, polled (bounded) at the api's status URL the 202 named."""
    assert answer.status_code == 202, answer.text
    url = p.api_url + answer.headers["location"]

    def final() -> dict[str, Any] | None:
        r = httpx.get(url, headers={"Authorization": f"Bearer {ADMIN}"}, timeout=10)
        job: dict[str, Any] = r.json()
        return job if job.get("state") in ("done", "refused") else None

    job: dict[str, Any] = wait_until(final, 90, "the import's outcome", 0.3)
    return job


def day_volume(p: Pipeline, day: int, channel: str) -> dict[str, Any]:
    r = httpx.get(
        f"{p.api_url}/api/v1/volume",
        params={
            "interval": "1d",
            "from": iso(day)[:10],
            "to": iso(day + DAY_S)[:10],
            "tz": "UTC",
            "channel": channel,
        },
        headers={"Authorization": f"Bearer {ADMIN}"},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    rows: list[dict[str, Any]] = r.json()["rows"]
    return rows[0] if rows else {}


def raw_topic_text(p: Pipeline) -> str:
    """Every record of the history-import topic, as text (to look for personal data)."""
    import asyncio

    async def read() -> str:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=p.bootstrap,
            enable_auto_commit=False,
            auto_offset_reset="earliest",  # assign()'s own reset must not land at the end
        )
        await consumer.start()
        try:
            parts = await topic_reading.partitions(consumer, keys.TOPIC_HISTORY_IMPORT)
            consumer.assign(parts)
            ends = await consumer.end_offsets(parts)
            await topic_reading.seek(consumer, parts)
            chunks: list[bytes] = []
            for _ in range(200):  # bounded
                batches = await consumer.getmany(timeout_ms=500)
                for records in batches.values():
                    chunks.extend(r.value or b"" for r in records)
                if not batches and await topic_reading.caught_up(consumer, ends):
                    break
            return b"\n".join(chunks).decode()
        finally:
            await consumer.stop()

    return asyncio.run(read())


def test_an_admin_imports_over_http_exactly_once_and_refusals_say_why(
    pipeline_factory: PipelineFactory,
) -> None:
    p = pipeline_factory(
        {
            "CCPULSE_AUTH": "on",
            "CCPULSE_ADMIN_KEY": ADMIN,
            "CCPULSE_VIEWER_KEY": VIEWER,
            "CCPULSE_INGEST_TOKENS": json.dumps([TOKEN]),
        }
    )
    day = past_day()
    table = interval_csv(day + 9 * 3600, (120, 40))

    # Who may: nobody without a key, not a viewer, not an ingest token.
    assert post(p, table, None, format="intervals").status_code == 401
    assert post(p, table, TOKEN, format="intervals").status_code == 401
    viewer = post(p, table, VIEWER, format="intervals")
    assert viewer.status_code == 403 and "admin" in viewer.json()["detail"]

    # The interval CSV, gzipped as exported: rows written, the api's volume equals the file.
    job = outcome(p, post(p, gzip.compress(table), format="intervals", name="acd.csv.gz"))
    assert job["state"] == "done", job
    assert (job["rows"], job["written"], job["unchanged"]) == (4, 4, 0)  # 2 channels + 2 queues
    voice = day_volume(p, day, "voice")
    assert (voice["offered"], voice["answered"], voice["abandoned"]) == (120, 110, 10)
    assert voice["aht_seconds"] == pytest.approx(24000 / 110)
    assert day_volume(p, day, "chat")["offered"] == 40

    # The same file again changes nothing; other figures for those intervals are refused.
    again = outcome(p, post(p, table, format="intervals"))
    assert (again["state"], again["written"], again["unchanged"]) == ("done", 0, 4)
    other = outcome(p, post(p, interval_csv(day + 9 * 3600, (130, 40)), format="intervals"))
    assert other["state"] == "refused" and "history already holds other figures" in str(
        other["problems"]
    )
    assert day_volume(p, day, "voice")["offered"] == 120
    replaced = outcome(
        p, post(p, interval_csv(day + 9 * 3600, (130, 40)), format="intervals", replace="true")
    )
    assert replaced["state"] == "done" and day_volume(p, day, "voice")["offered"] == 130

    # An Amazon Connect CTR export (Firehose documents back to back, gzipped), a day earlier:
    # 30 contacts, a third answered, a third abandoned in queue, a third in the IVR.
    ctr_day = day - DAY_S
    outcomes = ("answered", "queue", "ivr")
    records = [ctr(n, ctr_day + 8 * 3600 + n * 600, outcomes[n % 3], 0) for n in range(30)]
    for r in records:
        r["LastUpdateTimestamp"] = r["DisconnectTimestamp"]
    body = gzip.compress("".join(json.dumps(r) for r in records).encode())
    job = outcome(p, post(p, body, format="connect-ctr", name="ctr.gz"))
    assert job["state"] == "done" and job["events"] > 0, job
    voice = day_volume(p, ctr_day, "voice")
    assert (voice["offered"], voice["answered"], voice["abandoned"]) == (30, 10, 20)
    assert voice["asa_seconds"] == 15.0 and voice["aht_seconds"] == 405.0
    # Pseudonymised before the topic: no caller's number travels to the aggregator.
    topic = raw_topic_text(p)
    assert job["id"] in topic and '"contact.offered"' in topic  # the job's records were read
    assert "1415555" not in topic

    # Bad lines are refused at once, each named by the upload's name and line; nothing queued.
    good = {
        "id": "h1",
        "type": "contact.offered",
        "time": iso(ctr_day + 3600),
        "contact": "c-h1",
        "channel": "voice",
    }
    bad_lines = [json.dumps(good), '{"id": "h2", "type": "contact.offered"', json.dumps({"id": 3})]
    refused = post(p, "\n".join(bad_lines).encode(), format="events", name="past.jsonl")
    assert refused.status_code == 422, refused.text
    messages = " ".join(e["message"] for e in refused.json()["errors"])
    assert "past.jsonl:2: invalid JSON" in messages and "past.jsonl:3:" in messages
    assert day_volume(p, ctr_day, "voice")["offered"] == 30

    # An unknown job is a 404, a malformed id a 422 naming it.
    headers = {"Authorization": f"Bearer {ADMIN}"}
    unknown = httpx.get(f"{p.api_url}/api/v1/history/imports/{'0' * 32}", headers=headers)
    assert unknown.status_code == 404
    malformed = httpx.get(f"{p.api_url}/api/v1/history/imports/nope", headers=headers)
    assert malformed.status_code == 422 and "job_id" in malformed.text
