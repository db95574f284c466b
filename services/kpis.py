"""The metric catalogue: raw counter names, histogram edges, and the read-time formulas.

Counters are raw and mergeable (counts, integer millisecond sums, fine histograms); every rate,
average and service-level variant is computed here when read, so a definition or threshold can
change without reprocessing a single event. docs/metrics.md is the prose of this module.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from typing_extensions import TypedDict  # pydantic reads TypedDicts from here on Python < 3.12

# Wait histogram edges (seconds): a service level or short-abandon threshold on any edge is exact.
WAIT_EDGES_S: tuple[int, ...] = (
    5,
    10,
    15,
    20,
    30,
    45,
    60,
    90,
    120,
    180,
    240,
    300,
    600,
    3600,
    7200,
    21600,
    43200,
    86400,
    172800,
)
OVERFLOW = len(WAIT_EDGES_S)  # index of the bucket above the last edge

# First-response buckets for written channels (seconds), all of them WAIT_EDGES_S edges.
FIRST_RESPONSE_BUCKETS: tuple[tuple[str, int, int | None], ...] = (
    ("under_1h", 0, 3600),
    ("1h_2h", 3600, 7200),
    ("2h_6h", 7200, 21600),
    ("6h_12h", 21600, 43200),
    ("12h_24h", 43200, 86400),
    ("over_24h", 86400, None),
)
WRITTEN_CHANNELS = frozenset({"chat", "email", "sms", "social"})

# --- raw counter field names (one Redis hash field each) ---
OFFERED = "offered"
QUEUED = "queued"
ANSWERED = "answered"
ANSWER_WAIT_MS = "answer_wait_ms"
# Answered with no known wait (the offer and queue entry were never seen): in `answered` and AHT,
# never in ASA or service level (docs/metrics.md#answers-without-a-known-wait).
ANSWERED_UNTIMED = "answered_untimed"
ABANDONED = "abandoned"
ABANDONED_QUEUE = "abandoned_queue"
ABANDONED_IVR = "abandoned_ivr"
ABANDON_WAIT_MS = "abandon_wait_ms"
TIMED_OUT = "timed_out"
HANDLED = "handled"
HANDLE_MS = "handle_ms"
TRANSFERRED = "transferred"
ESCALATED = "escalated"
RESOLVED = "resolved"
RESOLVED_FIRST_CONTACT = "resolved_fc"
RESOLUTION_MS = "resolution_ms"
CSAT_RESPONSES = "csat_n"
CSAT_SATISFIED = "csat_sat"
NPS_RESPONSES = "nps_n"
NPS_PROMOTERS = "nps_pro"
NPS_DETRACTORS = "nps_det"
ANSWER_WAIT_BH_MS = "answer_wait_bh_ms"  # waits inside business hours (queues with hours)
RESOLUTION_BH_MS = "resolution_bh_ms"
FCR_ELIGIBLE = "fcrm_n"  # resolved contacts with a known customer and issue (measured FCR)
FCR_MET = "fcrm_ok"  # ... of which the customer made no new contact about it within the window

# Families of fields with a suffix: histogram bucket index, stage or reason name.
ANSWER_HIST = "aw:"  # answered, by wait bucket
ANSWER_BH_HIST = "awb:"  # answered, by business-hours wait bucket
QUEUE_ABANDON_HIST = "qw:"  # abandoned after queueing, by wait since queued
IVR_ABANDON_HIST = "iw:"  # abandoned before queueing, by time since offered
HANDLE_HIST = "hw:"  # handled, by handle time bucket
ABANDON_STAGE = "abst:"  # abandoned, by stage
STAGE_ENTERED = "sten:"  # entered a stage
STAGE_RANK = "strk:"  # sum of the stage's position in each path (to order the funnel)
ESCALATION_REASON = "esc:"  # escalated, by reason
ISSUE_RESOLVED = "isr:"  # resolved, by issue type
ISSUE_RESOLUTION_MS = "isms:"  # resolution time sum, by issue type
# Agent scopes only: handle time by the contact's channel and queue (`hqm:voice:sales`), which
# shares each agent's logged-in time among queues for cost per case (docs/metrics.md#cost).
QUEUE_HANDLE_MS = "hqm:"


def queue_handle_field(channel: str, queue: str | None) -> str:
    """Channels never hold `:`, so the first one after the prefix splits channel from queue."""
    return f"{QUEUE_HANDLE_MS}{channel}:{queue or ''}"


def parse_queue_handle_field(name: str) -> tuple[str, str] | None:
    """(channel, queue) of a `queue_handle_field`, `""` for no queue; None for other names."""
    if not name.startswith(QUEUE_HANDLE_MS):
        return None
    channel, _, queue = name[len(QUEUE_HANDLE_MS) :].partition(":")
    return channel, queue


SlVariant = Literal["abandons_ignored", "abandons_missed", "abandons_met_within"]
AbandonDenominator = Literal["offered", "queued"]


class FunnelStage(TypedDict):
    """One IVR or bot stage: contacts that entered it, left there, and went on."""

    stage: str
    entered: int
    abandoned: int
    went_on: int


class IssueResolution(TypedDict):
    resolved: int
    resolution_seconds: float | None


class BusinessFigures(TypedDict):
    """The time figures counted inside opening hours; all null where no hours are configured."""

    asa_business_seconds: float | None
    service_level_business: float | None
    first_response_buckets_business: dict[str, int] | None
    resolution_business_seconds: float | None


class Figures(TypedDict):
    """Every read-time figure of one scope (channel or queue) and window: the catalogue.

    Counts are integers; rates are fractions (0..1) and times are seconds, null when their
    denominator is zero. Histograms are keyed `le_<edge seconds>` and `le_inf`.
    """

    offered: int
    queued: int
    answered: int
    abandoned: int
    abandoned_queue: int
    abandoned_ivr: int
    short_abandoned: int
    abandoned_by_stage: dict[str, int]
    timed_out: int
    transferred: int
    handled: int
    asa_seconds: float | None
    aht_seconds: float | None
    abandon_rate: float | None
    service_level: float | None
    sl_missed: int  # contacts that missed the service level: its denominator less those met
    service_level_threshold_seconds: int
    answered_within: dict[str, int]
    abandoned_within: dict[str, int]
    ivr_funnel: list[FunnelStage]
    first_response_buckets: dict[str, int]
    resolved: int
    fcr_rate: float | None
    fcr_measured_rate: float | None
    fcr_measured_resolved: int
    resolution_seconds: float | None
    escalated: int
    escalated_by_reason: dict[str, int]
    csat: float | None
    csat_responses: int
    nps: float | None
    nps_responses: int
    resolution_by_issue: dict[str, IssueResolution]
    asa_business_seconds: float | None
    service_level_business: float | None
    first_response_buckets_business: dict[str, int] | None
    resolution_business_seconds: float | None


def bucket_index(wait_ms: int) -> int:
    """The first bucket whose edge the wait does not exceed: `wait <= edge` counts as within."""
    for index, edge in enumerate(WAIT_EDGES_S):
        if wait_ms <= edge * 1000:
            return index
    return OVERFLOW


def require_edge(threshold_s: int) -> int:
    if threshold_s not in WAIT_EDGES_S:
        raise ValueError(f"threshold {threshold_s}s is not a histogram edge {WAIT_EDGES_S}")
    return threshold_s


def add_counters(total: dict[str, int], more: Mapping[str, int | str | bytes]) -> dict[str, int]:
    for name, value in more.items():
        total[name] = total.get(name, 0) + int(value)
    return total


def hist_within(counters: Mapping[str, int], family: str, threshold_s: int) -> int:
    """How many of a histogram's observations were <= threshold (an edge)."""
    last = WAIT_EDGES_S.index(require_edge(threshold_s))
    return sum(counters.get(f"{family}{i}", 0) for i in range(last + 1))


def hist_between(counters: Mapping[str, int], family: str, low_s: int, high_s: int | None) -> int:
    """Observations in (low, high]; high None means no upper bound."""
    low = hist_within(counters, family, low_s) if low_s else 0
    if high_s is None:
        return hist_total(counters, family) - low
    return hist_within(counters, family, high_s) - low


def hist_total(counters: Mapping[str, int], family: str) -> int:
    return sum(counters.get(f"{family}{i}", 0) for i in range(OVERFLOW + 1))


def answered(c: Mapping[str, int]) -> int:
    """Every answer: those with a known wait (`ANSWERED`, the ASA and SL base) and the others."""
    return c.get(ANSWERED, 0) + c.get(ANSWERED_UNTIMED, 0)


def ratio(numerator: float, denominator: float) -> float | None:
    return None if denominator <= 0 else numerator / denominator


def mean_seconds(sum_ms: int, count: int) -> float | None:
    return None if count <= 0 else sum_ms / count / 1000.0


@dataclass(frozen=True, slots=True)
class ReadOptions:
    """Definition choices applied at read time (settings, or per request)."""

    sl_threshold_s: int = 20
    sl_variant: SlVariant = "abandons_missed"
    sl_exclude_short: bool = True
    short_abandon_s: int = 5
    abandon_denominator: AbandonDenominator = "offered"


def short_abandoned(c: Mapping[str, int], short_s: int) -> int:
    """Abandons within the short-abandon threshold, counted from queue entry (or offer)."""
    return hist_within(c, QUEUE_ABANDON_HIST, short_s) + hist_within(c, IVR_ABANDON_HIST, short_s)


def service_level(
    c: Mapping[str, int], opts: ReadOptions, family: str = ANSWER_HIST
) -> float | None:
    """Answered within T over the variant's denominator; see docs/metrics.md#service-level."""
    return ratio(*service_level_parts(c, opts, family))


def service_level_parts(
    c: Mapping[str, int], opts: ReadOptions, family: str = ANSWER_HIST
) -> tuple[int, int]:
    """(met, denominator): summed across scopes with different thresholds, they stay exact."""
    return sl_from_counts(within_counts(c, opts, family), opts)


def _sl_missed(c: Mapping[str, int], opts: ReadOptions) -> int:
    met, denominator = service_level_parts(c, opts)
    return denominator - met


def abandon_parts(c: Mapping[str, int], opts: ReadOptions) -> tuple[int, int]:
    """(abandoned, denominator) of the abandon rate, for summing across scopes."""
    return abandon_from_counts(within_counts(c, opts), opts)


def abandon_rate(c: Mapping[str, int], opts: ReadOptions) -> float | None:
    """Abandoned (less short abandons when excluded) over offered or queued."""
    return ratio(*abandon_parts(c, opts))


# The few numbers the two definitions need. SQL history computes them in the database (one CASE
# per threshold) instead of shipping every histogram bucket; both paths then share the formulas.
MET = "met"  # answered within the service-level threshold
ABANDONED_WITHIN = "abandoned_within"  # queue abandons within the threshold
SHORT_QUEUE = "short_queue"  # queue abandons within the short-abandon threshold
SHORT_IVR = "short_ivr"  # IVR abandons within the short-abandon threshold
COUNTS = (OFFERED, QUEUED, ANSWERED, ABANDONED, ABANDONED_QUEUE)


def within_counts(
    c: Mapping[str, int], opts: ReadOptions, family: str = ANSWER_HIST
) -> dict[str, int]:
    out = {name: c.get(name, 0) for name in COUNTS}
    out[MET] = hist_within(c, family, opts.sl_threshold_s)
    out[ABANDONED_WITHIN] = hist_within(c, QUEUE_ABANDON_HIST, opts.sl_threshold_s)
    out[SHORT_QUEUE] = hist_within(c, QUEUE_ABANDON_HIST, opts.short_abandon_s)
    out[SHORT_IVR] = hist_within(c, IVR_ABANDON_HIST, opts.short_abandon_s)
    return out


def sl_from_counts(w: Mapping[str, int], opts: ReadOptions) -> tuple[int, int]:
    """The service-level variants (docs/metrics.md#service-level) from `within_counts`."""
    met, answered = w.get(MET, 0), w.get(ANSWERED, 0)
    short = w.get(SHORT_QUEUE, 0) if opts.sl_exclude_short else 0
    missed_denominator = answered + w.get(ABANDONED_QUEUE, 0) - short
    if opts.sl_variant == "abandons_ignored":
        return met, answered
    if opts.sl_variant == "abandons_missed":
        return met, missed_denominator
    return met + w.get(ABANDONED_WITHIN, 0) - short, missed_denominator


def abandon_from_counts(w: Mapping[str, int], opts: ReadOptions) -> tuple[int, int]:
    """The abandon rate's parts from `within_counts`; short abandons excluded when set."""
    short_q = w.get(SHORT_QUEUE, 0) if opts.sl_exclude_short else 0
    short_i = w.get(SHORT_IVR, 0) if opts.sl_exclude_short else 0
    if opts.abandon_denominator == "queued":
        return w.get(ABANDONED_QUEUE, 0) - short_q, w.get(QUEUED, 0) - short_q
    short = short_q + short_i
    return w.get(ABANDONED, 0) - short, w.get(OFFERED, 0) - short


def suffixed(c: Mapping[str, int], family: str) -> dict[str, int]:
    """The `family:name` fields as {name: count}, zeros dropped."""
    return {k[len(family) :]: v for k, v in c.items() if k.startswith(family) and v}


def ivr_funnel(c: Mapping[str, int]) -> list[FunnelStage]:
    """Per stage: entered, left there (abandoned at it), went on; ordered by mean path position."""
    entered = suffixed(c, STAGE_ENTERED)
    abandoned = suffixed(c, ABANDON_STAGE)
    rank = {s: c.get(f"{STAGE_RANK}{s}", 0) / n for s, n in entered.items()}
    rows: list[FunnelStage] = []
    for stage in sorted(entered, key=lambda s: (rank[s], s)):
        left = abandoned.get(stage, 0)
        rows.append(
            {
                "stage": stage,
                "entered": entered[stage],
                "abandoned": left,
                "went_on": entered[stage] - left,
            }
        )
    return rows


def first_response_buckets(c: Mapping[str, int], family: str = ANSWER_HIST) -> dict[str, int]:
    return {name: hist_between(c, family, low, high) for name, low, high in FIRST_RESPONSE_BUCKETS}


def business_figures(c: Mapping[str, int], opts: ReadOptions) -> BusinessFigures:
    """The time figures counted inside opening hours; null where no hours are configured."""
    answered = hist_total(c, ANSWER_BH_HIST)
    if answered == 0 and not c.get(RESOLUTION_BH_MS):
        return {
            "asa_business_seconds": None,
            "service_level_business": None,
            "first_response_buckets_business": None,
            "resolution_business_seconds": None,
        }
    return {
        "asa_business_seconds": mean_seconds(c.get(ANSWER_WAIT_BH_MS, 0), answered),
        "service_level_business": service_level(c, opts, ANSWER_BH_HIST),
        "first_response_buckets_business": first_response_buckets(c, ANSWER_BH_HIST),
        "resolution_business_seconds": mean_seconds(c.get(RESOLUTION_BH_MS, 0), c.get(RESOLVED, 0)),
    }


BUSINESS_FIGURES = tuple(BusinessFigures.__annotations__)


def figures(c: Mapping[str, int], opts: ReadOptions) -> Figures:
    """Every read-time figure of one scope and window from its summed raw counters."""
    return {
        "offered": c.get(OFFERED, 0),
        "queued": c.get(QUEUED, 0),
        "answered": answered(c),
        "abandoned": c.get(ABANDONED, 0),
        "abandoned_queue": c.get(ABANDONED_QUEUE, 0),
        "abandoned_ivr": c.get(ABANDONED_IVR, 0),
        "short_abandoned": short_abandoned(c, opts.short_abandon_s),
        "abandoned_by_stage": suffixed(c, ABANDON_STAGE),
        "timed_out": c.get(TIMED_OUT, 0),
        "transferred": c.get(TRANSFERRED, 0),
        "handled": c.get(HANDLED, 0),
        "asa_seconds": mean_seconds(c.get(ANSWER_WAIT_MS, 0), c.get(ANSWERED, 0)),
        "aht_seconds": mean_seconds(c.get(HANDLE_MS, 0), c.get(HANDLED, 0)),
        "abandon_rate": abandon_rate(c, opts),
        "service_level": service_level(c, opts),
        "sl_missed": _sl_missed(c, opts),
        "service_level_threshold_seconds": opts.sl_threshold_s,
        "answered_within": _hist_dict(c, ANSWER_HIST),
        "abandoned_within": _merged_abandon_hist(c),
        "ivr_funnel": ivr_funnel(c),
        "first_response_buckets": first_response_buckets(c),
        "resolved": c.get(RESOLVED, 0),
        "fcr_rate": ratio(c.get(RESOLVED_FIRST_CONTACT, 0), c.get(RESOLVED, 0)),
        "fcr_measured_rate": ratio(c.get(FCR_MET, 0), c.get(FCR_ELIGIBLE, 0)),
        "fcr_measured_resolved": c.get(FCR_ELIGIBLE, 0),
        "resolution_seconds": mean_seconds(c.get(RESOLUTION_MS, 0), c.get(RESOLVED, 0)),
        "escalated": c.get(ESCALATED, 0),
        "escalated_by_reason": suffixed(c, ESCALATION_REASON),
        "csat": ratio(c.get(CSAT_SATISFIED, 0), c.get(CSAT_RESPONSES, 0)),
        "csat_responses": c.get(CSAT_RESPONSES, 0),
        "nps": _nps(c),
        "nps_responses": c.get(NPS_RESPONSES, 0),
        "resolution_by_issue": _by_issue(c),
        **business_figures(c, opts),
    }


def _by_issue(c: Mapping[str, int]) -> dict[str, IssueResolution]:
    out: dict[str, IssueResolution] = {}
    for issue, n in suffixed(c, ISSUE_RESOLVED).items():
        took = mean_seconds(c.get(f"{ISSUE_RESOLUTION_MS}{issue}", 0), n)
        out[issue] = {"resolved": n, "resolution_seconds": took}
    return out


def _nps(c: Mapping[str, int]) -> float | None:
    n = c.get(NPS_RESPONSES, 0)
    if n <= 0:
        return None
    return 100.0 * (c.get(NPS_PROMOTERS, 0) - c.get(NPS_DETRACTORS, 0)) / n


StateChange = tuple[int, str, str]  # (epoch ms, event id, state)


def time_in_state(changes: Iterable[StateChange], start_ms: int, end_ms: int) -> dict[str, float]:
    """Seconds spent in each state within [start, end): each change lasts until the next one
    (ordered by time, then event id); the last lasts until `end` (now, for live windows)."""
    ordered = sorted(set(changes))
    out: dict[str, float] = {}
    for i, (at, _, state) in enumerate(ordered):
        until = ordered[i + 1][0] if i + 1 < len(ordered) else end_ms
        overlap = min(until, end_ms) - max(at, start_ms)
        if overlap > 0:
            out[state] = out.get(state, 0.0) + overlap / 1000
    return out


def state_ms(changes: Iterable[StateChange], start_ms: int, end_ms: int) -> dict[str, int]:
    """`time_in_state` in whole milliseconds: what history stores, so sums stay exact."""
    ordered = sorted(set(changes))
    out: dict[str, int] = {}
    for i, (at, _, state) in enumerate(ordered):
        until = ordered[i + 1][0] if i + 1 < len(ordered) else end_ms
        overlap = min(until, end_ms) - max(at, start_ms)
        if overlap > 0:
            out[state] = out.get(state, 0) + overlap
    return out


def occupancy(
    seconds: Mapping[str, float], busy: Iterable[str], idle: Iterable[str]
) -> float | None:
    """On-contact time over on-contact plus available time."""
    busy_s = sum(seconds.get(s, 0.0) for s in busy)
    return ratio(busy_s, busy_s + sum(seconds.get(s, 0.0) for s in idle))


def hist_labels() -> list[str]:
    return [f"le_{edge}" for edge in WAIT_EDGES_S] + ["le_inf"]


def _hist_dict(c: Mapping[str, int], family: str) -> dict[str, int]:
    return {label: c.get(f"{family}{i}", 0) for i, label in enumerate(hist_labels())}


def _merged_abandon_hist(c: Mapping[str, int]) -> dict[str, int]:
    queue = _hist_dict(c, QUEUE_ABANDON_HIST)
    ivr = _hist_dict(c, IVR_ABANDON_HIST)
    return {label: queue[label] + ivr[label] for label in queue}


def sum_counters(parts: Iterable[Mapping[str, int | str | bytes]]) -> dict[str, int]:
    total: dict[str, int] = {}
    for part in parts:
        add_counters(total, part)
    return total
