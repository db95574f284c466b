"""The api's documents as types: every JSON answer and websocket message has a model here.

Routes declare them (`response_model=`), so `/openapi.json` describes every answer and
`web/src/lib/api-types.ts` is generated from it (`make api-types`): a field renamed here breaks
the wallboard's type check, not the wallboard. The builders keep producing plain dicts (the
websocket path serialises them as they are); these types are what those dicts must match.

Nested records are TypedDicts: they serialise exactly the keys the builder put in (an agent
without a state event has no `state_since`), with no copy into model instances on the way.
Every record refuses keys it does not declare: a builder that adds a field without adding it
here fails (500, and tests/unit/api/test_api_documents.py), instead of the REST answer silently
dropping what the websocket sends.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, NotRequired

from pydantic import BaseModel, ConfigDict, Field, with_config
from typing_extensions import TypedDict

from services.alerting import AlertRule
from services.kpis import AbandonDenominator, Figures, SlVariant

from .alerts.rules import Phase

STRICT = with_config(ConfigDict(extra="forbid"))


class Document(BaseModel):
    """Fields named like Python keywords (`from`) take an alias; extra keys are refused."""

    model_config = ConfigDict(populate_by_name=True, extra="forbid")


# --- GET /api/v1/live and the websocket ---


@STRICT
class StateTime(TypedDict):
    """Time in current state of a scope's agents in one state (docs/metrics.md)."""

    longest_seconds: float | None  # null when no agent of the scope is in this state
    total_seconds: float


@STRICT
class CurrentStateSeconds(TypedDict):
    available: StateTime
    on_contact: StateTime
    after_contact_work: StateTime
    not_ready: StateTime
    offline: StateTime


@STRICT
class AgentsSummary(TypedDict):
    """Agents of one channel or queue by current state (each agent in exactly one count);
    the first figure a supervisor looks for is `available`."""

    available: int
    on_contact: int
    after_contact_work: int
    not_ready: int
    not_ready_by_reason: dict[str, int]
    offline: int
    longest_available_seconds: float | None
    current_state_seconds: CurrentStateSeconds


@STRICT
class ChannelFigures(Figures):
    """A channel's figures (the catalogue, `services.kpis.Figures`) and its gauges now."""

    in_queue: int
    longest_wait_seconds: float
    active: int
    agents: AgentsSummary


class QueueFigures(ChannelFigures):
    channel: str


@STRICT
class AgentFigures(TypedDict):
    """An agent's figures in the window; the state fields once a state event was seen."""

    answered: int
    handled: int
    aht_seconds: float | None
    asa_seconds: float | None
    resolved: int
    resolution_seconds: float | None
    transferred: int
    state: str | None
    state_reason: NotRequired[str | None]  # why not ready (a pause reason, a custom activity)
    state_since: NotRequired[str]
    state_seconds: NotRequired[float]
    queues: NotRequired[list[str]]
    time_in_state_seconds: dict[str, float]
    occupancy: float | None


@STRICT
class TimelineEntry(TypedDict):
    event: str  # offered, stage, queued, answered, abandoned, timed_out, completed, resolved
    at_ms: int
    stage: NotRequired[str]  # an IVR or bot stage entered (event "stage"), the queue's too
    agent: NotRequired[str | None]  # who answered


@STRICT
class ContactItem(TypedDict):
    """One contact behind a figure: the keyed hash of its customer, never personal data."""

    contact: str  # the vendor's id (Connect ContactId, Twilio CallSid...), or its keyed hash
    channel: str
    queue: str | None
    agent: str | None
    customer: str | None
    outcome: str
    at_ms: int  # the time that places it in the figure
    wait_seconds: float | None
    handle_seconds: float | None
    abandon_stage: str | None
    csat: int | None  # the latest survey answers, when any
    nps: int | None
    timeline: list[TimelineEntry]


class ContactList(Document):
    """`GET /api/v1/contacts`: `count` equals the figure over the same window and filters."""

    figure: str
    window: str
    from_: str = Field(alias="from")
    to: str
    channel: str | None
    queue: str | None
    stage: str | None
    count: int
    contacts: list[ContactItem]
    next_cursor: str | None
    rolled_until: str | None  # contacts changed after this are not in the list yet


class LiveDocument(Document):
    """Every live figure for one window, by channel, queue and agent."""

    as_of: str
    window: str
    from_: str = Field(alias="from")
    to: str
    timezone: str
    fcr_measured_final_before: str = Field(
        description="measured FCR is provisional for resolutions after this time"
    )
    fcr_measured_provisional: bool
    channels: dict[str, ChannelFigures]
    queues: dict[str, QueueFigures]
    agents: dict[str, AgentFigures]
    agent_states: dict[str, int]


@STRICT
class IntervalRow(TypedDict):
    start: str
    end: str
    hour: int
    channel: str
    partial: bool
    offered: int
    answered: int
    abandoned: int
    service_level: float | None
    abandon_rate: float | None


class IntervalsDocument(Document):
    day: str
    timezone: str
    rows: list[IntervalRow]


# --- GET /api/v1/config ---


class ServiceLevelConfig(Document):
    variant: SlVariant
    exclude_short_abandons: bool
    thresholds_seconds: dict[str, int]
    queue_thresholds_seconds: dict[str, int]


class ConfigDocument(Document):
    timezone: str
    thresholds: dict[str, dict[str, float]] = Field(
        description="per figure: {warning, critical} as configured"
    )
    channel_thresholds: dict[str, dict[str, dict[str, float]]] = Field(
        description="per channel, per figure: {warning, critical} in force (the longest wait "
        "never below the channel's service-level threshold)"
    )
    queue_thresholds: dict[str, dict[str, dict[str, float]]] = Field(
        description="per `channel|queue` with thresholds of its own, per figure: "
        "{warning, critical} in force; other queues follow their channel"
    )
    service_level: ServiceLevelConfig
    short_abandon_seconds: int
    abandon_denominator: AbandonDenominator
    fcr_window_seconds: int


# --- GET /api/v1/alerts and the websocket's alert messages ---


@STRICT
class AlertView(TypedDict):
    """One alert as the REST answer, the websocket and the wallboard banner show it."""

    id: str
    rule: str
    name: str
    severity: str | None
    metric: str | None
    state: Phase
    channel: str
    queue: str | None
    value: float | None
    threshold: float | None
    baseline: float | None
    volume: int
    window_seconds: int | None
    started_at: str | None
    # The first evaluation that saw this breach (pending from then); absent in old history.
    breach_seen_at: NotRequired[str | None]
    fired_at: str | None
    resolved_at: str | None
    evaluated_at: str | None


class AlertsDocument(Document):
    firing: list[AlertView]
    pending: list[AlertView]
    recent: list[AlertView]
    rules: list[AlertRule]
    evaluation_interval_seconds: float | None = None
    evaluating: bool | None = Field(
        default=None, description="this replica holds the evaluation lock"
    )


# --- planners: GET /api/v1/volume, /volume/heatmap, /staffing ---


@STRICT
class VolumeRow(TypedDict):
    start: str
    end: str
    channel: NotRequired[str]  # when grouped by channel
    queue: NotRequired[str]  # when grouped by queue
    offered: int
    answered: int
    abandoned: int
    abandon_rate: float | None
    service_level: float | None
    asa_seconds: float | None
    aht_seconds: float | None
    handled: int
    # Cost per case (docs/metrics.md#cost): logged-in time shared by handle time, priced per hour
    logged_in_hours: NotRequired[float | None]
    labour_cost: NotRequired[float | None]
    cost_per_handled: NotRequired[float | None]
    handled_per_logged_in_hour: NotRequired[float | None]
    partial: bool


@STRICT
class CostSettings(TypedDict):
    currency: str
    configured: bool  # an hourly cost is set: without one, cost columns are null


class VolumeDocument(Document):
    interval: Literal["15m", "30m", "1h", "1d", "1w"]
    timezone: str
    from_: str = Field(alias="from")
    to: str
    group_by: list[Literal["channel", "queue"]]
    rows: list[VolumeRow]
    cost: CostSettings
    warnings: list[str] | None = None
    demo: bool = False  # demo history (`ccpulse up --simulate`) lies in the range


@STRICT
class ProductivityRow(TypedDict):
    start: str
    end: str
    agent: str
    handled: int
    aht_seconds: float | None
    logged_in_hours: float | None
    labour_cost: float | None
    cost_per_handled: float | None
    handled_per_logged_in_hour: float | None


class ProductivityDocument(Document):
    interval: Literal["1d", "1w"]
    timezone: str
    from_: str = Field(alias="from")
    to: str
    rows: list[ProductivityRow]
    cost: CostSettings


@STRICT
class HeatCell(TypedDict):
    weekday: int  # Monday = 0
    day: str
    hour: int
    mean: float
    p90: int
    weeks: int  # weeks this cell is over: the complete ones, plus the current when it counts
    current_week: bool  # the current week so far is one of them (its hour is over)


class HeatmapDocument(Document):
    weeks: int
    timezone: str
    from_: str = Field(alias="from")
    to: str
    current_week_to: str | None  # with current=true: the current week counts up to here
    cells: list[HeatCell]
    demo: bool = False  # demo history (`ccpulse up --simulate`) lies in the weeks


@STRICT
class ChannelStaff(TypedDict):
    """One channel's share of an interval's staffing."""

    forecast_offered: float
    erlangs: float
    agents_erlang_c: int
    scheduled_erlang_c: int
    agents_erlang_a: int
    scheduled_erlang_a: int
    service_level_erlang_c: float | None


class StaffRow(TypedDict):
    start: str
    end: str
    forecast_offered: float
    aht_seconds: float | None
    patience_seconds: float | None
    erlangs: float
    agents_erlang_c: int
    scheduled_erlang_c: int
    service_level_erlang_c: float | None
    asa_seconds: float | None
    agents_erlang_a: int
    scheduled_erlang_a: int
    service_level_erlang_a: float | None
    abandon_rate_erlang_a: float | None
    expected_sl: float | None
    by_channel: dict[str, ChannelStaff]  # the mix: each channel against its own threshold


class Forecast(Document):
    method: str
    weeks_used: list[str]


class StaffingDocument(Document):
    date: str
    timezone: str
    interval: Literal["15m", "30m", "1h"]
    target_sl: float
    threshold_seconds: int | None  # the one asked for every channel, else None
    thresholds_seconds: dict[str, int]  # per channel, as used
    shrinkage: float
    forecast: Forecast
    rows: list[StaffRow]
    generated: str
    demo: bool = False  # the forecast comes from demo history (`ccpulse up --simulate`)


# --- access: tickets, keys, sessions ---


class Ticket(Document):
    ticket: str
    expires_in: int
    url: str


@STRICT
class KeyRow(TypedDict):
    """A key's record, never the key: `source` is `environment` for CCPULSE_*_KEY keys."""

    id: str
    name: str
    role: Literal["viewer", "planner", "admin"]
    created: int | None
    source: NotRequired[Literal["environment"]]


class CreatedKey(Document):
    """The new key, shown once: only its hash is stored."""

    id: str
    name: str
    role: Literal["viewer", "planner", "admin"]
    key: str


@STRICT
class SessionRow(TypedDict):
    id: str
    key_id: str
    key_name: str
    role: str
    created: float
    last_seen: float


# --- WS /ws/wallboard (not in OpenAPI's paths: added to its components for the web) ---


@STRICT
class TodayChannel(TypedDict):
    offered: int
    answered: int


class TodayTotals(Document):
    """Today's totals per channel, read at the same instant as the document they come with."""

    window: Literal["today"]
    from_: str = Field(alias="from")
    to: str
    channels: dict[str, TodayChannel]


class SnapshotMessage(Document):
    """The first message: the 15-minute live document and today's totals. `seq` numbers the
    state; each later patch names the state it applies to (`base`)."""

    type: Literal["snapshot"]
    seq: int
    data: LiveDocument
    today: TodayTotals


class UpdateMessage(Document):
    """A later state whole (only with `?updates=full`)."""

    type: Literal["update"]
    seq: int
    data: LiveDocument
    today: TodayTotals


class PatchMessage(Document):
    """What changed from state `base` to state `seq`, in the frame `{data, today}`: `set` holds,
    where old and new are both objects, the changes inside them, elsewhere the new value whole
    (null included); `unset` the paths no longer there. A client whose state is not `base`
    reconnects for a new snapshot."""

    type: Literal["patch"]
    seq: int
    base: int
    set: dict[str, Any]
    unset: list[list[str]] = Field(default_factory=list)


class AlertsMessage(Document):
    """Firing alerts (on connect, and whenever they change)."""

    type: Literal["alerts"]
    data: list[AlertView]


class UnavailableMessage(Document):
    """Live state (Redis) cannot be read; the socket stays and recovers."""

    type: Literal["unavailable"]


WallboardMessage = Annotated[
    SnapshotMessage | UpdateMessage | PatchMessage | AlertsMessage | UnavailableMessage,
    Field(discriminator="type"),
]
