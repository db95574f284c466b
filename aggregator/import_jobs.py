"""History imports posted over HTTP: the ingest checked and converted them; write them here.

A job on the history-import topic is `begin` (the job), its parts (contract events as JSON lines,
or interval CSV), then `end` (how many parts). Parts are spooled to files and the job goes
through the same importer as `ccpulse history import`: all or nothing, idempotent. Its outcome is
the job's state in Redis. The group's offset only passes a job once it has an outcome, so a job
cut by a restart is read again from its `begin`; importing twice changes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError
from aiokafka.structs import OffsetAndMetadata
from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy.exc import DBAPIError
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from services import keys
from services.clock import Clock, iso_utc
from services.connections import kafka_security
from services.imports import JOB_TTL_S, ImportJob, Part
from services.settings import Settings

from . import importer

log = logging.getLogger("ccpulse.aggregator.imports")
RESTART_S = 5.0
FINAL = ("done", "refused")
DB_ATTEMPTS = 5  # a database that stays away this long refuses the job, saying so


@dataclass
class Spool:
    """One job being read: its parts on disk until `end` arrives."""

    job: ImportJob
    partition: int
    begin_offset: int
    scratch: tempfile.TemporaryDirectory[str]
    files: dict[Part, IO[bytes]] = field(default_factory=dict)
    parts: int = 0

    def add(self, part: Part, payload: bytes) -> None:
        if part not in self.files:
            self.files[part] = (Path(self.scratch.name) / part.value).open("wb")
        self.files[part].write(payload)
        self.parts += 1

    def paths(self, part: Part) -> list[Path]:
        return [Path(self.scratch.name) / part.value] if part in self.files else []

    def close(self) -> None:
        for handle in self.files.values():
            handle.close()

    def discard(self) -> None:
        self.close()
        self.scratch.cleanup()


def parse(value: bytes) -> tuple[Part, bytes]:
    """`part` name, a newline, the payload (ingest.history_upload writes them)."""
    name, _, payload = value.partition(b"\n")
    return Part(name.decode()), payload


class ImportJobs:
    def __init__(self, settings: Settings, redis: Redis, clock: Clock) -> None:
        self.settings, self.redis, self.clock = settings, redis, clock
        self.open: dict[str, Spool] = {}

    async def run(self, stopping: asyncio.Event) -> None:
        """Until `stopping`; a broker or Redis failure restarts the consumer after a pause (the
        live aggregation goes on meanwhile)."""
        while not stopping.is_set():
            try:
                await self._consume(stopping)
            except (KafkaError, RedisError, OSError) as exc:
                log.warning("history imports paused (%s); retrying", type(exc).__name__)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stopping.wait(), RESTART_S)

    async def _consume(self, stopping: asyncio.Event) -> None:
        consumer = AIOKafkaConsumer(
            self.settings.topic(keys.TOPIC_HISTORY_IMPORT),
            bootstrap_servers=self.settings.kafka_bootstrap,
            group_id=f"{self.settings.consumer_group}-history-import",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_partition_fetch_bytes=4 * 1024 * 1024,
            **kafka_security(self.settings),
        )
        await consumer.start()
        try:
            while not stopping.is_set():
                batches = await consumer.getmany(timeout_ms=1000, max_records=50)
                for tp, records in batches.items():
                    for record in records:
                        await self.take(record)
                    await self._commit(consumer, tp, records[-1].offset + 1)
        finally:
            for spool in self.open.values():
                spool.discard()
            self.open.clear()
            await consumer.stop()

    async def _commit(self, consumer: AIOKafkaConsumer, tp: TopicPartition, next_: int) -> None:
        """Up to the first job still open on this partition (read again after a restart)."""
        pending = [s.begin_offset for s in self.open.values() if s.partition == tp.partition]
        offset = min(pending, default=next_)
        await consumer.commit({tp: OffsetAndMetadata(offset, "")})

    async def take(self, record: ConsumerRecord[bytes, bytes]) -> None:
        job_id = (record.key or b"").decode()
        try:
            part, payload = parse(record.value or b"")
        except ValueError:
            log.warning("history-import record %d: unknown part, skipped", record.offset)
            return
        if part is Part.begin:
            self._drop(job_id)  # a job sent again from its start (a producer retry)
            job = ImportJob.model_validate_json(payload)
            scratch = tempfile.TemporaryDirectory(prefix="ccpulse-import-job-")
            self.open[job_id] = Spool(job, record.partition, record.offset, scratch)
            return
        spool = self.open.get(job_id)
        if spool is None:
            log.warning("history-import %s: part without its begin, skipped", job_id)
            return
        if part is not Part.end:
            spool.add(part, payload)
            return
        del self.open[job_id]
        try:
            await self.finish(spool, int(payload))
        finally:
            spool.discard()

    def _drop(self, job_id: str) -> None:
        spool = self.open.pop(job_id, None)
        if spool is not None:
            spool.discard()

    async def finish(self, spool: Spool, sent: int) -> None:
        job = spool.job
        spool.close()
        if sent != spool.parts:
            await self._save(job, "refused", problems=[f"{sent} parts sent, {spool.parts} read"])
            return
        if await self._finished(job.id):
            return  # read again (a new group, a restart after the outcome): already answered
        await self._save(job, "importing")
        try:
            outcome = await self._import(spool)
        except importer.ImportRefused as exc:
            found = [p.replace(spool.scratch.name + "/", "") for p in exc.problems]
            await self._save(job, "refused", problems=[_named(p, job.name) for p in found])
        except (DBAPIError, OSError) as exc:
            log.warning("history import %s: database unavailable: %s", job.id, exc)
            problem = f"database unavailable ({type(exc).__name__}); post the file again"
            await self._save(job, "refused", problems=[problem])
        else:
            await self._save(
                job,
                "done",
                lines=outcome.lines,
                rows=outcome.rows,
                written=outcome.written,
                unchanged=outcome.unchanged,
            )
            log.info(
                "history import %s: %d rows, %d written", job.id, outcome.rows, outcome.written
            )

    async def _import(self, spool: Spool) -> importer.Outcome:
        """In a thread with its own loop (reading a large file is CPU work: the live
        aggregation keeps its loop), retried while the database is away."""
        events, tables = spool.paths(Part.events), spool.paths(Part.intervals)
        replace = spool.job.replace
        async for attempt in AsyncRetrying(
            retry=retry_if_exception_type(DBAPIError),
            stop=stop_after_attempt(DB_ATTEMPTS),
            wait=wait_exponential(multiplier=0.5, max=10),
            reraise=True,
        ):
            with attempt:
                return await asyncio.to_thread(
                    lambda: asyncio.run(importer.main(self.settings, events, tables, replace))
                )
        raise AssertionError("unreachable: tenacity reraises")

    async def _finished(self, job_id: str) -> bool:
        raw = await self.redis.get(keys.history_import_key(job_id))
        return raw is not None and ImportJob.model_validate_json(raw).state in FINAL

    async def _save(self, job: ImportJob, state: str, **figures: object) -> None:
        update: dict[str, object] = {"state": state, **figures}
        if state in FINAL:
            update["finished_at"] = iso_utc(self.clock.now())
        job_now = job.model_copy(update=update)
        try:
            await self.redis.set(
                keys.history_import_key(job.id), job_now.model_dump_json(), ex=JOB_TTL_S
            )
        except (RedisError, OSError) as exc:
            log.warning(
                "history import %s is %s; its state could not be saved: %s", job.id, state, exc
            )


def _named(problem: str, name: str) -> str:
    """Problems name the spooled file (`events:12: …`); the caller knows the upload's name."""
    for part in (Part.events, Part.intervals):
        if problem.startswith(f"{part.value}:"):
            return name + problem[len(part.value) :]
    return problem
