"""The SQL history table: one row of raw counters per 15-minute interval and scope.

Rows hold the same raw, mergeable counters as the live Redis buckets (counts, millisecond sums,
histogram buckets), never rates, so any coarser interval is a plain SUM and the read-time
formulas in `services.kpis` give the same figures as the live view. Counters a query must sum in
SQL are columns; the rest (stages, reasons, issue types) ride along in a JSON text column.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from sqlalchemy import BigInteger, Boolean, Column, Index, Integer, MetaData, String, Table, Text

from services import keys, kpis

metadata = MetaData()

SCALARS: tuple[str, ...] = (
    kpis.OFFERED,
    kpis.QUEUED,
    kpis.ANSWERED,
    kpis.ANSWER_WAIT_MS,
    kpis.ABANDONED,
    kpis.ABANDONED_QUEUE,
    kpis.ABANDONED_IVR,
    kpis.ABANDON_WAIT_MS,
    kpis.TIMED_OUT,
    kpis.HANDLED,
    kpis.HANDLE_MS,
    kpis.TRANSFERRED,
    kpis.ESCALATED,
    kpis.RESOLVED,
    kpis.RESOLVED_FIRST_CONTACT,
    kpis.RESOLUTION_MS,
    kpis.CSAT_RESPONSES,
    kpis.CSAT_SATISFIED,
    kpis.NPS_RESPONSES,
    kpis.NPS_PROMOTERS,
    kpis.NPS_DETRACTORS,
    kpis.FCR_ELIGIBLE,
    kpis.FCR_MET,
    kpis.ANSWERED_UNTIMED,
)
# Histograms that service level, abandon rate and patience need, one column per bucket.
HISTOGRAMS: tuple[str, ...] = (kpis.ANSWER_HIST, kpis.QUEUE_ABANDON_HIST, kpis.IVR_ABANDON_HIST)
BUCKETS = kpis.OVERFLOW + 1


def column_name(field: str) -> str:
    """`aw:3` -> `aw_3`; scalar names are already valid column names."""
    return field.replace(":", "_")


COUNTER_FIELDS: tuple[str, ...] = (
    *SCALARS,
    *(f"{family}{i}" for family in HISTOGRAMS for i in range(BUCKETS)),
)
COUNTER_COLUMNS: tuple[str, ...] = tuple(column_name(f) for f in COUNTER_FIELDS)
_FIELD_OF = dict(zip(COUNTER_COLUMNS, COUNTER_FIELDS, strict=True))

interval_counters = Table(
    "interval_counters",
    metadata,
    Column("start_s", BigInteger, primary_key=True, comment="UTC epoch seconds, 15-min aligned"),
    Column("scope", String(300), primary_key=True, comment="ch|voice, q|voice|sales, ag|alice"),
    Column("kind", String(2), nullable=False),
    Column("channel", String(64), nullable=False, default=""),
    Column("queue", String(128), nullable=False, default=""),
    Column("agent", String(128), nullable=False, default=""),
    *(Column(c, BigInteger, nullable=False, default=0) for c in COUNTER_COLUMNS),
    Column("extra", Text, nullable=False, default="{}"),
    Column("updated_s", BigInteger, nullable=False),
)
Index("ix_interval_kind_start", interval_counters.c.kind, interval_counters.c.start_s)

# Each agent's milliseconds per state per interval, rolled from the agent state logs (which Redis
# keeps 8 days): logged-in time is every state but offline. Cost per case and contacts per
# logged-in hour are read from here (docs/metrics.md).
AGENT_STATE_COLUMNS: tuple[str, ...] = ("available", "on_contact", "wrap_up", "not_ready")
agent_intervals = Table(
    "agent_intervals",
    metadata,
    Column("start_s", BigInteger, primary_key=True, comment="UTC epoch seconds, 15-min aligned"),
    Column("agent", String(128), primary_key=True),
    Column("logged_in_ms", BigInteger, nullable=False, default=0),
    *(
        Column(f"{state}_ms", BigInteger, nullable=False, default=0)
        for state in AGENT_STATE_COLUMNS
    ),
    Column("extra", Text, nullable=False, default="{}"),
    Column("updated_s", BigInteger, nullable=False),
)
Index("ix_agent_intervals_start", agent_intervals.c.start_s)

# One row per contact, rolled from its fact sheet (aggregator/contact_rows.py): the contacts
# behind the figures, for the drill-down and the per-contact export (docs/contacts.md). Contact
# and customer are as stored: keyed hashes wherever they were personal data at ingest.
CONTACT_TIMES: tuple[str, ...] = (
    "offered_ms",
    "queued_ms",
    "answered_ms",
    "abandoned_ms",
    "timed_out_ms",
    "completed_ms",
    "resolved_ms",
)
contacts = Table(
    "contacts",
    metadata,
    Column("contact", String(256), primary_key=True),
    Column("start_ms", BigInteger, nullable=False, comment="offered, else first known, epoch ms"),
    Column("channel", String(64), nullable=False, default=""),
    Column("queue", String(128), nullable=False, default=""),
    Column("agent", String(128), nullable=False, default=""),
    Column("customer", String(256), nullable=False, default=""),
    *(Column(name, BigInteger, nullable=True) for name in CONTACT_TIMES),
    Column("abandon_stage", String(128), nullable=True),
    Column("wait_ms", BigInteger, nullable=True),
    Column("handle_ms", BigInteger, nullable=True),
    Column("outcome", String(16), nullable=False),
    Column("first_contact", Boolean, nullable=True),
    Column("csat", Integer, nullable=True),
    Column("nps", Integer, nullable=True),
    Column("updated_s", BigInteger, nullable=False),
    Column("issue", String(128), nullable=True, comment="issue type (measured FCR's groups)"),
    Column("stages", Text, nullable=True, comment='{"stage": first entry ms}, in entry order'),
)
Index("ix_contacts_start", contacts.c.start_ms)
Index("ix_contacts_channel_start", contacts.c.channel, contacts.c.start_ms)
Index("ix_contacts_queue_start", contacts.c.queue, contacts.c.start_ms)
Index("ix_contacts_customer_start", contacts.c.customer, contacts.c.start_ms)
Index("ix_contacts_abandoned", contacts.c.abandoned_ms)  # the worklist's window (0005)
Index("ix_contacts_timed_out", contacts.c.timed_out_ms)


def scope_columns(scope: str) -> dict[str, str]:
    """The scope's kind and labels as separate columns, so queries can filter and group."""
    parts = keys.parse_scope(scope)
    kind = parts[0]
    if kind == "ch":
        return {"kind": kind, "channel": parts[1], "queue": "", "agent": ""}
    if kind == "q":
        return {"kind": kind, "channel": parts[1], "queue": parts[2], "agent": ""}
    return {"kind": kind, "channel": "", "queue": "", "agent": parts[1]}


# Demo history (`ccpulse up --simulate`) carries this field in `extra`, so the planning answers
# can say so and `ccpulse history remove-demo` can delete exactly it.
DEMO_FIELD = "demo"
DEMO_MARK = f'%"{DEMO_FIELD}":1%'  # a LIKE pattern over `extra` (sorted, compact JSON)
DEMO_EXTRA = json.dumps({DEMO_FIELD: 1}, separators=(",", ":"))  # `extra` of demo agent time


def to_row(start_s: int, scope: str, counters: Mapping[str, int], now_s: int) -> dict[str, Any]:
    """One interval's summed counters as a row; unknown fields go to `extra`."""
    row: dict[str, Any] = {"start_s": start_s, "scope": scope, **scope_columns(scope)}
    extra: dict[str, int] = {}
    for field, value in counters.items():
        column = column_name(field)
        if column in _FIELD_OF:
            row[column] = int(value)
        elif value:
            extra[field] = int(value)
    for column in COUNTER_COLUMNS:
        row.setdefault(column, 0)
    row["extra"] = json.dumps(extra, sort_keys=True, separators=(",", ":"))
    row["updated_s"] = now_s
    return row


def counters_of(sums: Mapping[Any, Any]) -> dict[str, int]:
    """Summed columns back into raw counter names, ready for `services.kpis`."""
    return {_FIELD_OF[c]: int(v or 0) for c, v in sums.items() if c in _FIELD_OF}


def is_empty(counters: Mapping[str, int]) -> bool:
    return not any(counters.values())
