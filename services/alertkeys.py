"""The alerter's Redis keys, beside `keys.py` so the alerter can change without touching it.

Alert state lives in Redis rather than in a process, so the api replica that takes over the
evaluation (after the leader's lock expires) knows what is already firing and does not page again.
"""

from __future__ import annotations

from services.keys import PREFIX

LEADER_LOCK = f"{PREFIX}:alerts:leader"  # string: the evaluating replica's token (SET NX PX)
STATES = f"{PREFIX}:alerts:state"  # hash: alert id -> JSON state (pending and firing only)
OUTBOX = f"{PREFIX}:alerts:outbox"  # hash: "notification id#target" -> JSON notice, until sent
HISTORY = f"{PREFIX}:alerts:history"  # list, newest first: JSON of each firing and resolve
ALERTS_CHANNEL = f"{PREFIX}:alerts:changes"  # pub/sub: firing alerts, for every replica's sockets

HISTORY_LENGTH = 200


def alert_id(rule: str, channel: str, queue: str | None) -> str:
    """One alert per rule and scope; also the PagerDuty dedup key's tail."""
    return f"{rule}|{channel}|{queue or ''}"


def notification_id(at_s: float, alert: str, kind: str) -> str:
    """Zero-padded milliseconds first, so outbox fields sort in the order transitions happened;
    derived from the transition alone, so saving one twice cannot queue it twice."""
    return f"{round(at_s * 1000):015d}|{kind}|{alert}"


def outbox_field(notification: str, target: str) -> str:
    """One field per notification and receiver: each receiver is retried and cleared alone."""
    return f"{notification}#{target}"
