"""Every Kafka topic and Redis key in one file, so producers and readers cannot drift apart.

Scopes name what a counter is about: `ch|voice`, `q|voice|sales`, `ag|alice`. Times in key names
are epoch seconds of the bucket start; the unit is in the helper's name.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping

from services.settings import redis_key_prefix

TOPIC_EVENTS = "ccpulse.events"
TOPIC_DLQ = "ccpulse.events.dlq"
TOPIC_RAW = "ccpulse.raw"
# History imports posted over HTTP: the ingest converts and checks, the aggregator writes SQL.
TOPIC_HISTORY_IMPORT = "ccpulse.history-import"
ALL_TOPICS = (TOPIC_EVENTS, TOPIC_DLQ, TOPIC_RAW, TOPIC_HISTORY_IMPORT)

# Before every Redis key (CCPULSE_REDIS_KEY_PREFIX), so two installations can share one Redis.
# Fixed when a process starts, like every setting: key names are constants of the process.
PREFIX = redis_key_prefix()


CHANGES_CHANNEL = f"{PREFIX}:changes"
STATS = f"{PREFIX}:stats"
# Field prefix in STATS: `not_counted:<reason>` -> events that counted partially or not at all.
NOT_COUNTED_STAT = "not_counted:"
# aggregator instance -> "lag|epoch ms": each consumer reports the lag of the partitions it owns
CONSUMER_LAG = f"{PREFIX}:consumer_lag"
LAG_FRESH_MS = 60_000  # a report older than this is from a consumer that stopped
HISTORY_LOCK = f"{PREFIX}:history:lock"  # string: the history writer's token (services.locks)
# string: the start of the first 15-minute interval whose agent time is not rolled to SQL yet
AGENT_TIME_ROLLED = f"{PREFIX}:history:agent_time"
# set of `interval|ag|agent`: agents' intervals a late state change hit, not re-rolled yet
AGENT_TIME_DIRTY = f"{PREFIX}:history:agent_time_dirty"
# string: epoch seconds before which every contact change is in the contacts table
CONTACTS_ROLLED = f"{PREFIX}:history:contacts_rolled"
INTERVAL_SECONDS = 900

MINUTE_SECONDS = 60
HOUR_SECONDS = 3600
RESOLUTIONS = {"m": MINUTE_SECONDS, "h": HOUR_SECONDS}

SEP = "|"


def channel_scope(channel: str) -> str:
    return f"ch{SEP}{channel}"


def queue_scope(channel: str, queue: str) -> str:
    return f"q{SEP}{channel}{SEP}{queue}"


def agent_scope(agent: str) -> str:
    return f"ag{SEP}{agent}"


def parse_scope(scope: str) -> tuple[str, ...]:
    return tuple(scope.split(SEP))


def group_shard(group: str, partitions: int) -> int:
    """The partition whose slot holds a measured-FCR group and the counters it changes: a
    stable hash of `customer|issue` (CRC-32), so every aggregator agrees on it."""
    return zlib.crc32(group.encode()) % max(1, partitions)


def group_key(group: str, partitions: int) -> str:
    """Hash {v: version, m: members JSON, s: source partition -> last offset applied}: one
    customer's contacts about one issue, in its shard's slot (`group_shard`)."""
    return f"{PREFIX}:{partition_tag(group_shard(group, partitions))}:g:{group}"


def partition_group_version_key(partition: int) -> str:
    """Counter: group steps that changed this partition's counter hashes (INCR). Readers add it
    to the partition's (epoch, offset): those steps change its hashes without its offset."""
    return f"{PREFIX}:{partition_tag(partition)}:gv"


def history_import_key(job_id: str) -> str:
    """String: the JSON state of one HTTP history import (services.imports.ImportJob)."""
    return f"{PREFIX}:history-import:{job_id}"


def offsets_key(topic: str) -> str:
    return f"{PREFIX}:off:{topic}"


# --- State owned by partition (aggregator v2, docs/aggregation.md) ---------------------------
# Every key one partition's atomic step writes alone carries the partition's hash tag `{pN}`, so
# on Redis Cluster the whole step lands in one slot. PARTITIONS records the events topic's
# partition count the state was built with: another count would move contacts between owners.
PARTITIONS = f"{PREFIX}:partitions"
# An agent's state log (and its version) expires this long after the step that last wrote it;
# the step also trims changes older than this. The api relies on it (api/log_cache.py).
AGENT_LOG_KEEP_S = 8 * 86400


def all_keys_pattern() -> str:
    """A SCAN/--pattern glob over this installation's keys, and no other's."""
    return f"{PREFIX}:*"


def legacy_offset_key(topic: str, partition: int) -> str:
    """Where aggregators before v2 kept a partition's offset (their state cannot be resumed)."""
    return f"{offsets_key(topic)}:{partition}"


def partition_tag(partition: int) -> str:
    return f"{{p{partition}}}"


def partition_offset_key(topic: str, partition: int) -> str:
    """The last offset of `topic` applied to this partition's state (check-and-set per step)."""
    return f"{PREFIX}:{partition_tag(partition)}:off:{topic}"


def partition_facts_key(partition: int) -> str:
    """Hash: contact -> fact sheet (JSON), the durable copy of what the owner keeps in memory."""
    return f"{PREFIX}:{partition_tag(partition)}:facts"


def partition_facts_expiry_key(partition: int) -> str:
    """Sorted set: contact -> epoch ms its sheet expires (a hash field has no TTL in Redis 7.0)."""
    return f"{PREFIX}:{partition_tag(partition)}:fexp"


def partition_agents_key(partition: int) -> str:
    """Hash: agent -> the slice of its sheet this partition's events wrote; readers merge slices."""
    return f"{PREFIX}:{partition_tag(partition)}:agents"


# Counters, gauges and logs are kept per partition too and summed when read (stage 2): one
# partition's step then writes one cluster slot, and each partition has a single writer.
def partition_counter_key(partition: int, resolution: str, bucket_start_s: int) -> str:
    """Hash: `scope|counter` -> value, this partition's share of one bucket for every scope."""
    return f"{PREFIX}:{partition_tag(partition)}:c:{resolution}:{bucket_start_s}"


def partition_epoch_key(partition: int) -> str:
    """String: epoch ms of the partition's first step (set NX). Deleting the live state deletes
    it, so the next state gets another: with the offset it versions what readers keep."""
    return f"{PREFIX}:{partition_tag(partition)}:epoch"


def partition_counter_version_key(partition: int, resolution: str, bucket_start_s: int) -> str:
    """String `epoch:offset`: the step that last changed this bucket's counter hash (it expires
    with the hash). Readers keep a bucket's sums while its version stays the same."""
    return f"{PREFIX}:{partition_tag(partition)}:cv:{resolution}:{bucket_start_s}"


def counter_field(scope: str, name: str) -> str:
    return f"{scope}{SEP}{name}"


def parse_counter_field(field: str) -> tuple[str, str]:
    """(scope, counter name): scopes hold separators, counter names never do."""
    scope, _, name = field.rpartition(SEP)
    return scope, name


def partition_waiting_key(partition: int, scope: str) -> str:
    """Sorted set: this partition's contacts waiting in `scope` -> epoch ms the wait started."""
    return f"{PREFIX}:{partition_tag(partition)}:wait:{scope}"


def partition_active_key(partition: int, scope: str) -> str:
    """Sorted set: this partition's open contacts in `scope` -> epoch ms offered."""
    return f"{PREFIX}:{partition_tag(partition)}:active:{scope}"


def partition_scopes_key(partition: int) -> str:
    """Sorted set: scope -> last minute bucket this partition wrote for it."""
    return f"{PREFIX}:{partition_tag(partition)}:scopes"


def partition_dirty_key(partition: int) -> str:
    """Sorted set `interval|scope` -> changes by this partition since last rolled to SQL."""
    return f"{PREFIX}:{partition_tag(partition)}:dirty"


def partition_contacts_dirty_key(partition: int) -> str:
    """Sorted set: contact -> offset of the last step that wrote its sheet, until the history
    writer has rolled the sheet into the SQL `contacts` table (aggregator/contact_rows.py)."""
    return f"{PREFIX}:{partition_tag(partition)}:contacts:dirty"


def partition_totals_key(partition: int) -> str:
    """Hash, no expiry: `scope|counter` -> every increase this partition applied to a channel's
    or queue's contact count, `scope|counter_corrected` -> every decrease (never lowered:
    Prometheus counters), `scope|since_ms` -> epoch ms of the first (aggregator/totals.py)."""
    return f"{PREFIX}:{partition_tag(partition)}:totals"


TOTALS_SINCE = "since_ms"  # counter name of a totals hash's creation time, per scope


def partition_stats_key(partition: int) -> str:
    """Hash: this partition's apply figures (events, batches, dead letters, last apply)."""
    return f"{PREFIX}:{partition_tag(partition)}:stats"


def partition_agent_log_key(partition: int, agent: str) -> str:
    """Sorted set `event id|state` -> ms, for state events this partition applied."""
    return f"{PREFIX}:{partition_tag(partition)}:alog:{agent}"


def partition_agent_log_version_key(partition: int, agent: str) -> str:
    """String `epoch:offset`: the step that last changed this partition's log of the agent (it
    expires with the log). Readers keep the log's parsed changes while it stays the same."""
    return f"{PREFIX}:{partition_tag(partition)}:alogv:{agent}"


def dirty_member(interval_start: int, scope: str) -> str:
    return f"{interval_start}{SEP}{scope}"


def parse_dirty_member(member: str) -> tuple[int, str]:
    start, _, scope = member.partition(SEP)
    return int(start), scope


def lag_report(lag: int, at_ms: int) -> str:
    return f"{lag}{SEP}{at_ms}"


LagReports = Mapping[bytes | str, bytes | str]  # as redis-py returns the hash


def _lag_ages(reports: LagReports, now_ms: int) -> dict[str, tuple[int, int]]:
    out = {}
    for name, report in reports.items():
        text = report.decode() if isinstance(report, bytes) else report
        lag, _, at = text.partition(SEP)
        out[name.decode() if isinstance(name, bytes) else name] = (int(lag), now_ms - int(at))
    return out


def fresh_lag(reports: LagReports, now_ms: int) -> int | None:
    """Records behind over every consumer that reported lately; None when none has."""
    fresh = [lag for lag, age in _lag_ages(reports, now_ms).values() if age <= LAG_FRESH_MS]
    return sum(fresh) if fresh else None


def gone_consumers(reports: LagReports, now_ms: int) -> list[str]:
    """Reports so old their consumer has surely stopped (a restart reports under a new name)."""
    return [n for n, (_, age) in _lag_ages(reports, now_ms).items() if age > 10 * LAG_FRESH_MS]


def interval_start_s(epoch_s: float) -> int:
    return int(epoch_s // INTERVAL_SECONDS) * INTERVAL_SECONDS


def bucket_start_s(epoch_s: float, resolution: str) -> int:
    width = RESOLUTIONS[resolution]
    return int(epoch_s // width) * width


# --- The api: access keys, sessions, websocket tickets (docs/security.md) ----------------------
APIKEYS = f"{PREFIX}:apikeys"  # hash: sha256(key) -> {"id", "name", "role", "created"}
APIKEYS_REVOKED = f"{PREFIX}:apikeys:revoked"  # set: sha256 of revoked CCPULSE_*_KEY values
SESSIONS = f"{PREFIX}:sessions"  # hash: public session id -> sha256(cookie)


def session_key(cookie_digest: str) -> str:
    """String: the session record (JSON), expiring when idle."""
    return f"{PREFIX}:session:{cookie_digest}"


def ticket_key(ticket: str) -> str:
    """String: the principal a one-use websocket ticket stands for, until used or expired."""
    return f"{PREFIX}:ticket:{ticket}"


# --- Alerts: state in Redis, so the replica that takes over the evaluation (after the leader's
# lock expires) knows what is already firing and does not page again --------------------------
# One hash tag: the evaluation's save (a script over the lock, states, outbox and history) runs
# in one slot, on Redis Cluster too.
ALERTS_LEADER_LOCK = f"{PREFIX}:{{alerts}}:leader"  # string: the evaluating replica's token
ALERT_STATES = f"{PREFIX}:{{alerts}}:state"  # hash: alert id -> JSON state (pending, firing)
ALERT_OUTBOX = f"{PREFIX}:{{alerts}}:outbox"  # hash: outbox field -> JSON notice, until sent
ALERT_HISTORY = f"{PREFIX}:{{alerts}}:history"  # list, newest first: each firing and resolve
ALERTS_CHANNEL = f"{PREFIX}:alerts:changes"  # pub/sub: firing alerts, for every replica's sockets
# Where releases before the hash tag kept the same states, outbox and history: the leader moves
# what it finds there once (api/alerts/alert_state.py `adopt_legacy`), so an upgrade neither
# pages again for an alert already firing nor loses the history.
LEGACY_ALERT_STATES = f"{PREFIX}:alerts:state"
LEGACY_ALERT_OUTBOX = f"{PREFIX}:alerts:outbox"
LEGACY_ALERT_HISTORY = f"{PREFIX}:alerts:history"


def alert_id(rule: str, channel: str, queue: str | None) -> str:
    """One alert per rule and scope (an ALERT_STATES field); also the PagerDuty dedup tail."""
    return f"{rule}{SEP}{channel}{SEP}{queue or ''}"


def alert_notification_id(at_s: float, alert: str, kind: str) -> str:
    """Zero-padded milliseconds first, so outbox fields sort in the order transitions happened;
    derived from the transition alone, so saving one twice cannot queue it twice."""
    return f"{round(at_s * 1000):015d}{SEP}{kind}{SEP}{alert}"


def alert_outbox_field(notification: str, target: str) -> str:
    """An ALERT_OUTBOX field per notification and receiver: each retried and cleared alone."""
    return f"{notification}#{target}"
