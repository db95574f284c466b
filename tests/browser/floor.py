"""A contact-center floor written as raw counters: queues on three channels, an IVR, agents.

Figures are chosen so the wallboard shows all three colours: one queue breaches its service
level, one channel has a caller waiting too long, the rest are fine.
"""

from __future__ import annotations

from typing import Any

from services import keys, kpis
from tests.clock import clock

from .conftest import Feed

# Per queue: answered ("aw"), queue abandons ("qw") and IVR abandons ("iw") by wait bucket index
# (kpis.WAIT_EDGES_S); mean handle seconds; an IVR in front or not; CSAT (responses, satisfied).
QUEUES: dict[tuple[str, str], dict[str, Any]] = {
    ("voice", "sales"): {
        "aw": [14, 10, 7, 5, 6, 5, 4, 3, 2, 2, 1],
        "qw": {0: 1, 4: 2, 6: 2, 8: 3},
        "iw": {1: 1, 3: 2},
        "aht": 312,
        "ivr": True,
    },
    ("voice", "support"): {
        "aw": [26, 15, 9, 5, 3, 1],
        "qw": {0: 1, 5: 1},
        "iw": {2: 2},
        "aht": 254,
        "ivr": True,
    },
    ("voice", "billing"): {"aw": [9, 6, 3, 2, 1], "qw": {3: 1}, "iw": {}, "aht": 198, "ivr": True},
    ("chat", "chat-support"): {
        "aw": [3, 4, 6, 7, 6, 5, 3, 2, 1],
        "qw": {6: 1},
        "iw": {},
        "aht": 465,
        "ivr": False,
        "csat": (18, 15),
    },
    ("email", "email-support"): {
        "aw": [0] * 12 + [2, 5, 3, 2],
        "qw": {},
        "iw": {},
        "aht": 540,
        "ivr": False,
    },
}
STAGES = (("welcome", 0), ("menu", 1), ("identify", 2))
AGENTS = {
    "alice": ("available", 95, "sales"),
    "bob": ("on_contact", 312, "sales"),
    "carol": ("on_contact", 48, "support"),
    "dave": ("wrap_up", 21, "support"),
    "erin": ("break", 640, "billing"),
    "frank": ("available", 12, "support"),
    "grace": ("on_contact", 131, "chat-support"),
    "heidi": ("available", 301, "chat-support"),
    "ivan": ("on_contact", 9, "sales"),
    "judy": ("offline", 3600, "email-support"),
}


def _mid_ms(index: int) -> int:
    low = 0 if index == 0 else kpis.WAIT_EDGES_S[index - 1]
    return int((low + kpis.WAIT_EDGES_S[index]) / 2 * 1000)


def queue_counters(spec: dict[str, Any]) -> dict[str, int]:
    aw: list[int] = spec["aw"]
    answered = sum(aw)
    q_ab = sum(spec["qw"].values())
    ivr_ab = sum(spec["iw"].values())
    handled = max(0, answered - 2)
    resolved = int(handled * 0.85)
    c: dict[str, int] = {
        kpis.OFFERED: answered + q_ab + ivr_ab + 3,
        kpis.QUEUED: answered + q_ab + 3,
        kpis.ANSWERED: answered,
        kpis.ANSWER_WAIT_MS: sum(n * _mid_ms(i) for i, n in enumerate(aw)),
        kpis.ABANDONED: q_ab + ivr_ab,
        kpis.ABANDONED_QUEUE: q_ab,
        kpis.ABANDONED_IVR: ivr_ab,
        kpis.ABANDON_WAIT_MS: sum(n * _mid_ms(i) for i, n in spec["qw"].items()),
        kpis.HANDLED: handled,
        kpis.HANDLE_MS: handled * spec["aht"] * 1000,
        kpis.TRANSFERRED: answered // 12,
        kpis.RESOLVED: resolved,
        kpis.RESOLVED_FIRST_CONTACT: int(resolved * 0.8),
        kpis.RESOLUTION_MS: resolved * spec["aht"] * 1100,
    }
    c.update({f"{kpis.ANSWER_HIST}{i}": n for i, n in enumerate(aw) if n})
    c.update({f"{kpis.QUEUE_ABANDON_HIST}{i}": n for i, n in spec["qw"].items()})
    c.update({f"{kpis.IVR_ABANDON_HIST}{i}": n for i, n in spec["iw"].items()})
    if "csat" in spec:
        c[kpis.CSAT_RESPONSES], c[kpis.CSAT_SATISFIED] = spec["csat"]
    if spec["ivr"]:
        entered = c[kpis.OFFERED]
        lost = [ivr_ab // 2, ivr_ab - ivr_ab // 2, 0]
        for (stage, rank), gone in zip(STAGES, lost, strict=True):
            c[f"{kpis.STAGE_ENTERED}{stage}"] = entered
            c[f"{kpis.STAGE_RANK}{stage}"] = entered * rank
            if gone:
                c[f"{kpis.ABANDON_STAGE}{stage}"] = gone
            entered -= gone
    return c


def seed(feed: Feed, now: float | None = None) -> None:
    """The whole floor, in the current minute and a few minutes back (same window, 15 min)."""
    now = now or clock.now()
    for (channel, queue), spec in QUEUES.items():
        counters = queue_counters(spec)
        # Split over three minutes so the window sums several buckets, as it does in production.
        parts = [{k: v // 3 for k, v in counters.items()}, {k: v // 3 for k, v in counters.items()}]
        parts.append({k: v - 2 * (v // 3) for k, v in counters.items()})
        for back, part in zip((240, 120, 0), parts, strict=True):
            feed.counters(keys.queue_scope(channel, queue), part, now - back)
            feed.counters(keys.channel_scope(channel), part, now - back)
    waiting = {
        ("voice", "sales"): (75, 40, 10),
        ("voice", "support"): (12,),
        ("chat", "chat-support"): (200, 35),
    }
    for (channel, queue), ages in waiting.items():
        for n, age in enumerate(ages):
            contact = f"w-{queue}-{n}"
            feed.waiting(keys.queue_scope(channel, queue), contact, now - age)
            feed.waiting(keys.channel_scope(channel), contact, now - age)
    for i, (name, (state, age, queue)) in enumerate(AGENTS.items()):
        feed.agent(name, state, now - age, queue)
        answered = 3 + (i * 7) % 11
        feed.counters(
            keys.agent_scope(name),
            {
                kpis.ANSWERED: answered,
                kpis.HANDLED: answered - 1,
                kpis.HANDLE_MS: (answered - 1) * (200 + 31 * i) * 1000,
                kpis.ANSWER_WAIT_MS: answered * (8 + i) * 1000,
                kpis.TRANSFERRED: i % 3,
            },
            now,
        )
    feed.publish()


def many_agents(feed: Feed, count: int, now: float | None = None) -> None:
    now = now or clock.now()
    states = ("available", "on_contact", "on_contact", "wrap_up", "break")
    for i in range(count):
        feed.agent(f"agent-{i:02d}", states[i % len(states)], now - 7 * i - 3)
        work = {kpis.ANSWERED: i % 9, kpis.HANDLED: i % 9, kpis.HANDLE_MS: (i % 9) * 240_000}
        feed.counters(keys.agent_scope(f"agent-{i:02d}"), work, now)
    feed.publish()
