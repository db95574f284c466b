"""History imports: the formats, and the state of an import posted over HTTP.

The ingest checks and converts an upload, the aggregator writes it to SQL, the api reports it:
three processes that share only this vocabulary, the topic and the Redis key (services.keys).
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, Field

# Kafka record headers of the history-import topic (key: the job id, so a job keeps its order).
PART_HEADER = "part"
JOB_TTL_S = 7 * 86400  # how long an import's state stays readable
CHUNK_BYTES = 512 * 1024  # a record's share of the upload, well under Kafka's 1 MB default
JOB_ID = re.compile(r"^[0-9a-f]{32}$")


class ImportFormat(StrEnum):
    events = "events"  # the native contract, JSON lines
    intervals = "intervals"  # the interval CSV (docs/history.md#interval-csv)
    connect_ctr = "connect-ctr"  # Amazon Connect contact records as Firehose writes them
    queue_log = "queue-log"  # Asterisk queue_log


class Part(StrEnum):
    """What one record of an import job carries."""

    begin = "begin"  # value: the ImportJob, state queued
    events = "events"  # value: contract events, JSON lines (already pseudonymised)
    intervals = "intervals"  # value: interval CSV text, header line first in every chunk
    end = "end"  # value: the number of parts sent between begin and end


JobState = Literal["queued", "importing", "done", "refused"]


class ImportJob(BaseModel):
    """One import's state, as the api answers it: written by the ingest (queued) and the
    aggregator (importing, then done or refused)."""

    id: str
    state: JobState
    format: ImportFormat
    name: str = Field(description="The upload's name, used in problem locations")
    replace: bool = False
    received_at: str = Field(description="When the ingest accepted it (ISO 8601, UTC)")
    finished_at: str | None = None
    bytes: int = 0
    events: int = Field(0, description="Contract events the upload gave")
    lines: int = 0
    rows: int = Field(0, description="Interval rows the import computes")
    written: int = Field(0, description="Rows inserted or replaced")
    unchanged: int = Field(0, description="Rows already holding exactly these figures")
    problems: list[str] = Field(default_factory=list, description="Why it was refused")
