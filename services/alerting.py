"""Alert rules as settings: what the built-in alerter watches (docs/observability.md).

The model lives in `services` because `Settings` holds a list of rules; the state machine that
runs them is the api's (`api/alerts/rules.py`). Pure: pydantic only.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

Metric = Literal[
    "abandon_rate", "service_level", "longest_wait_seconds", "waiting", "staffing_shortfall"
]
Comparison = Literal["gt", "lt"]
Severity = Literal["critical", "error", "warning", "info"]  # PagerDuty's four levels

ALL = "*"
RATE_METRICS: frozenset[str] = frozenset({"abandon_rate", "service_level"})
SHORTFALL = "staffing_shortfall"
# A shortfall rule's defaults where the abandon-spike ones make no sense: staffed agents more
# than 20 % short of the agents needed for the last 15 minutes' arrivals, held 2 minutes. A
# floor staffed exactly to its forecast is one or two agents short half the day (arrivals run
# above the forecast as often as below): an absolute threshold pages on that, a share does not
# (tests/unit/api/test_staffing_alert.py has the trade-off).
SHORTFALL_DEFAULTS = {
    "threshold": 0.2,
    "baseline_factor": None,
    "window_seconds": 900,
    "min_volume": 10,
    "for_seconds": 120.0,
    "resolve_hysteresis": 0.1,
    "fast_window_seconds": None,
    "severity": "error",
}


class AlertRule(BaseModel):
    """One rule; the defaults are the abandonment-spike rule of issue 5.

    `for_seconds` is 45, not 60: the promise is a page within 60 s of the spike, and the
    condition is seen up to one evaluation interval (5 s) late, so 45 + 5 leaves 10 s for the
    pipeline and for delivery retries.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(default="abandon_spike", min_length=1, pattern=r"^[A-Za-z0-9_.:-]+$")
    metric: Metric = "abandon_rate"
    channel: str = Field(default=ALL, min_length=1)  # "*": every channel
    queue: str | None = None  # None: the channel as a whole; "*": every queue of the channel
    comparison: Comparison = "gt"
    threshold: float | None = 0.15
    # The limit is also this factor times the same hour-of-week's rate over the last 4 weeks
    # (both must be crossed); without a known baseline only the threshold applies.
    baseline_factor: float | None = Field(default=2.0, gt=0)
    window_seconds: int = Field(default=300, ge=60)  # trailing window, whole minutes
    min_volume: int = Field(default=20, ge=0)  # contacts in the rate's denominator
    for_seconds: float = Field(default=45.0, ge=0)
    severity: Severity = "critical"
    # With a baseline_factor and no baseline yet (a new install, a new queue), the rule falls
    # back to its bare threshold, which pages on ordinary days: it is sent as a warning then,
    # unless this says the bare threshold may page (docs/observability.md#baseline).
    page_without_baseline: bool = False
    # Resolve only once the value is this far back inside the limit (metric's unit) ...
    resolve_hysteresis: float = Field(default=0.03, ge=0)
    # ... and has stayed there this long: a spike that flickers does not page twice.
    resolve_for_seconds: float = Field(default=60.0, ge=0)
    # Beside the main window, a short one (rates only): crossing the same limit there with at
    # least `fast_min_volume` contacts for `fast_for_seconds` fires too, so a real spike pages
    # within 60 s while the floor keeps a handful of contacts from paging. None: off.
    fast_window_seconds: int | None = Field(default=120, ge=60)
    fast_min_volume: int = Field(default=40, ge=0)
    fast_for_seconds: float = Field(default=15.0, ge=0)
    # staffing_shortfall: the service level the agents needed must reach (Erlang C, at the
    # scope's own threshold, CCPULSE_SL_THRESHOLDS_SECONDS), as the planning page staffs.
    target_service_level: float = Field(default=0.8, gt=0, lt=1)

    @model_validator(mode="before")
    @classmethod
    def _shortfall_defaults(cls, data: object) -> object:
        """A shortfall rule written as `{"metric": "staffing_shortfall"}` gets its own
        defaults, not the abandon spike's (a 15 % threshold, a baseline)."""
        if isinstance(data, dict) and data.get("metric") == SHORTFALL:
            return {**SHORTFALL_DEFAULTS, **data}
        return data

    @model_validator(mode="after")
    def _has_a_limit(self) -> AlertRule:
        if self.threshold is None and self.baseline_factor is None:
            raise ValueError(f"rule {self.name!r}: set a threshold, a baseline_factor or both")
        if self.baseline_factor is not None and self.metric != "abandon_rate":
            raise ValueError(f"rule {self.name!r}: a baseline exists only for abandon_rate")
        if self.window_seconds % 60:
            raise ValueError(f"rule {self.name!r}: window_seconds must be whole minutes")
        fast = self.fast_window_seconds
        if fast is not None and (fast % 60 or fast >= self.window_seconds):
            raise ValueError(
                f"rule {self.name!r}: fast_window_seconds must be whole minutes, under "
                "window_seconds (or null)"
            )
        return self

    @property
    def fast_window(self) -> int | None:
        """The short window in force: rates only (a gauge reads the same in any window)."""
        return self.fast_window_seconds if self.metric in RATE_METRICS else None


def _unique_names(rules: list[AlertRule]) -> list[AlertRule]:
    """Rule names identify alerts (and PagerDuty dedup keys): two rules may not share one."""
    names = [r.name for r in rules]
    doubles = sorted({n for n in names if names.count(n) > 1})
    if doubles:
        raise ValueError(f"alert rule names must be unique: {', '.join(doubles)}")
    return rules


AlertRules = Annotated[list[AlertRule], AfterValidator(_unique_names)]


def default_rules() -> list[AlertRule]:
    """The spike per channel and per queue: a page names the queue the spike is on, and a
    spike spread thin over a channel's queues still pages for the channel."""
    return [AlertRule(), AlertRule(name="abandon_spike_queue", queue=ALL)]


def severity_of(rule: AlertRule, baseline: float | None) -> Severity:
    """The severity an alert is sent with: the rule's, or `warning` while a rule that expects a
    baseline has none (the Prometheus rules do the same: CcpulseAbandonRateSpikeNoBaseline)."""
    waiting = rule.baseline_factor is not None and baseline is None
    if waiting and not rule.page_without_baseline and rule.severity in ("critical", "error"):
        return "warning"
    return rule.severity
