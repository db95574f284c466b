"""The alert state machine: (rule, previous state, observation, now) -> (new state, transitions).

Pure, no I/O, so every edge (for-duration, hysteresis, minimum volume, a missing baseline) is
tested in milliseconds, and a replica that takes over evaluation continues from the stored state
exactly where the previous leader stopped.

    inactive --breach--> pending --breach held for_seconds--> firing
    (a breach: the main window, or the short one with its volume floor, held fast_for_seconds)
    pending --no breach--> inactive (cleared, never notified)
    firing --clear (limit minus hysteresis) held resolve_for_seconds--> resolved
    resolved behaves as inactive: a new breach starts a new pending period.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from services.alerting import AlertRule
from services.keys import alert_id

Phase = Literal["inactive", "pending", "firing", "resolved"]
TransitionKind = Literal["pending", "firing", "resolved", "cleared"]
NOTIFIED: frozenset[TransitionKind] = frozenset({"firing", "resolved"})

__all__ = ["NOTIFIED", "AlertRule", "AlertState", "Observation", "Transition", "step"]


class Observation(BaseModel):
    """What the live state says for one rule and scope at one evaluation."""

    model_config = ConfigDict(frozen=True)

    value: float | None  # None: no figure (e.g. nothing offered in the window)
    volume: int  # contacts behind the figure, compared with the rule's min_volume
    baseline: float | None = None  # same hour-of-week rate; None: unknown
    fast_value: float | None = None  # the same figure over the rule's short window, if any
    fast_volume: int = 0


class AlertState(BaseModel):
    """One alert (rule x scope); stored as JSON in Redis while pending or firing."""

    model_config = ConfigDict(frozen=True)

    rule: str
    channel: str
    queue: str | None = None
    phase: Phase = "inactive"
    pending_since: float | None = None  # first evaluation that saw the breach
    fired_at: float | None = None
    clear_since: float | None = None  # while firing: since when the value is back inside
    resolved_at: float | None = None
    value: float | None = None
    limit: float | None = None
    baseline: float | None = None
    volume: int = 0
    window_seconds: int | None = None  # the window `value` is for (None: the rule's main one)
    evaluated_at: float | None = None

    @property
    def id(self) -> str:
        return alert_id(self.rule, self.channel, self.queue)

    @property
    def active(self) -> bool:
        """Pending or firing: worth keeping in Redis."""
        return self.phase in ("pending", "firing")


class Transition(BaseModel):
    model_config = ConfigDict(frozen=True)

    kind: TransitionKind
    at: float
    state: AlertState  # the state right after the transition

    @property
    def notified(self) -> bool:
        return self.kind in NOTIFIED


def limit_of(rule: AlertRule, baseline: float | None) -> float | None:
    """The value to cross: the threshold and factor x baseline must *both* be crossed, so the
    stricter one wins; an unknown baseline leaves the threshold alone."""
    candidates = [] if rule.threshold is None else [rule.threshold]
    if rule.baseline_factor is not None and baseline is not None:
        candidates.append(rule.baseline_factor * baseline)
    if not candidates:
        return None
    return max(candidates) if rule.comparison == "gt" else min(candidates)


def _beyond(rule: AlertRule, value: float, limit: float, margin: float = 0.0) -> bool:
    """Worse than `limit`, or not yet `margin` back inside it (the hysteresis)."""
    return value > limit - margin if rule.comparison == "gt" else value < limit + margin


def breached(rule: AlertRule, obs: Observation) -> bool:
    """The main window crosses the limit with at least `min_volume` contacts."""
    limit = limit_of(rule, obs.baseline)
    if obs.value is None or limit is None or obs.volume < rule.min_volume:
        return False
    return _beyond(rule, obs.value, limit)


def fast_breached(rule: AlertRule, obs: Observation) -> bool:
    """The short window crosses the same limit with at least `fast_min_volume` contacts."""
    limit = limit_of(rule, obs.baseline)
    if rule.fast_window is None or obs.fast_value is None or limit is None:
        return False
    return obs.fast_volume >= rule.fast_min_volume and _beyond(rule, obs.fast_value, limit)


def cleared(rule: AlertRule, obs: Observation) -> bool:
    """Back inside the limit by the hysteresis margin in both windows, or no longer meaningful
    there (too few contacts, no figure): a night with no traffic must not keep a page open."""
    limit = limit_of(rule, obs.baseline)
    if limit is None:
        return True
    margin = rule.resolve_hysteresis
    main = obs.value is not None and obs.volume >= rule.min_volume
    if main and obs.value is not None and _beyond(rule, obs.value, limit, margin):
        return False
    fast = rule.fast_window is not None and obs.fast_volume >= rule.fast_min_volume
    if fast and obs.fast_value is not None:
        return not _beyond(rule, obs.fast_value, limit, margin)
    return True


def shown(rule: AlertRule, obs: Observation) -> tuple[float | None, int, int]:
    """(value, volume, window) to report: the short window's while only it is breached, so
    a page never reads "12% > 15%"; the main window's otherwise."""
    if fast_breached(rule, obs) and not breached(rule, obs) and rule.fast_window is not None:
        return obs.fast_value, obs.fast_volume, rule.fast_window
    return obs.value, obs.volume, rule.window_seconds


def in_breach(rule: AlertRule, obs: Observation) -> bool:
    return breached(rule, obs) or fast_breached(rule, obs)


def held_long_enough(rule: AlertRule, obs: Observation, held_s: float) -> bool:
    """The main window for `for_seconds`, or the short one for `fast_for_seconds`."""
    if breached(rule, obs) and held_s >= rule.for_seconds:
        return True
    return fast_breached(rule, obs) and held_s >= rule.fast_for_seconds


def step(
    rule: AlertRule,
    previous: AlertState | None,
    obs: Observation,
    now: float,
    *,
    channel: str = "",
    queue: str | None = None,
) -> tuple[AlertState, list[Transition]]:
    """Advance one alert by one evaluation. `channel`/`queue` name it when `previous` is None."""
    state = previous or AlertState(rule=rule.name, channel=channel, queue=queue)
    value, volume, window = shown(rule, obs)
    state = state.model_copy(
        update={
            "value": value,
            "limit": limit_of(rule, obs.baseline),
            "baseline": obs.baseline,
            "volume": volume,
            "window_seconds": window,
            "evaluated_at": now,
        }
    )
    if state.phase in ("inactive", "resolved"):
        return _idle(rule, state, obs, now)
    if state.phase == "pending":
        return _pending(rule, state, obs, now)
    return _firing(rule, state, obs, now)


def _idle(
    rule: AlertRule, state: AlertState, obs: Observation, now: float
) -> tuple[AlertState, list[Transition]]:
    if not in_breach(rule, obs):
        return state, []
    pending = state.model_copy(
        update={
            "phase": "pending",
            "pending_since": now,
            "fired_at": None,
            "clear_since": None,
            "resolved_at": None,
        }
    )
    first = Transition(kind="pending", at=now, state=pending)
    after, more = _pending(rule, pending, obs, now)
    return after, [first, *more]


def _pending(
    rule: AlertRule, state: AlertState, obs: Observation, now: float
) -> tuple[AlertState, list[Transition]]:
    if not in_breach(rule, obs):
        idle = state.model_copy(update={"phase": "inactive", "pending_since": None})
        return idle, [Transition(kind="cleared", at=now, state=idle)]
    assert state.pending_since is not None
    if not held_long_enough(rule, obs, now - state.pending_since):
        return state, []
    firing = state.model_copy(update={"phase": "firing", "fired_at": now})
    return firing, [Transition(kind="firing", at=now, state=firing)]


def _firing(
    rule: AlertRule, state: AlertState, obs: Observation, now: float
) -> tuple[AlertState, list[Transition]]:
    if not cleared(rule, obs):
        return state.model_copy(update={"clear_since": None}), []
    clear_since = state.clear_since if state.clear_since is not None else now
    if now - clear_since < rule.resolve_for_seconds:
        return state.model_copy(update={"clear_since": clear_since}), []
    done = state.model_copy(
        update={"phase": "resolved", "resolved_at": now, "clear_since": clear_since}
    )
    return done, [Transition(kind="resolved", at=now, state=done)]
