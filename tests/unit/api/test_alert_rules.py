"""The alert rules and state machine: tables of cases, then properties over random histories."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from api.alerts import notify
from api.alerts.alert_state import Notice
from api.alerts.observe import covered, matches, trailing_window
from api.alerts.rules import AlertState, Observation, Transition, breached, cleared, limit_of, step
from services.alerting import AlertRule
from services.settings import Settings

DEFAULT = AlertRule()


def obs(value: float | None, volume: int = 50, baseline: float | None = None) -> Observation:
    return Observation(value=value, volume=volume, baseline=baseline)


# --- the rule model and its settings ---


def test_default_rule_is_the_abandonment_spike_of_issue_5() -> None:
    r = DEFAULT
    assert (r.metric, r.channel, r.queue, r.comparison) == ("abandon_rate", "*", None, "gt")
    assert (r.threshold, r.baseline_factor, r.window_seconds, r.min_volume) == (0.15, 2.0, 300, 20)
    assert r.severity == "critical"


def test_defaults_keep_the_page_within_60_seconds() -> None:
    """Seen up to one interval late, fired for_seconds later: 10 s left for pipeline, retries."""
    s = Settings()
    assert [r.name for r in s.alert_rules] == ["abandon_spike", "abandon_spike_queue"]
    assert all(r.for_seconds + s.alert_eval_interval_seconds <= 50 for r in s.alert_rules)


def test_the_default_rules_page_per_channel_and_per_queue() -> None:
    """A spike on one queue pages with that queue's name, not only the channel's."""
    channel, per_queue = Settings().alert_rules
    assert (channel.queue, per_queue.queue) == (None, "*")
    assert per_queue.model_dump(exclude={"name", "queue"}) == channel.model_dump(
        exclude={"name", "queue"}
    )
    assert matches(per_queue, "voice", "sales") and not matches(per_queue, "voice", None)


def test_rules_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    rule = {
        "name": "wait",
        "metric": "longest_wait_seconds",
        "channel": "voice",
        "queue": "*",
        "threshold": 120,
        "baseline_factor": None,
        "min_volume": 1,
    }
    rules = [{**rule, "severity": "warning"}]
    monkeypatch.setenv("CCPULSE_ALERT_RULES", json.dumps(rules))
    monkeypatch.setenv("CCPULSE_ALERT_SLACK_URLS", '["https://hooks.slack.test/x"]')
    s = Settings()
    assert s.alert_rules[0].metric == "longest_wait_seconds" and s.alert_rules[0].queue == "*"
    assert s.alert_slack_urls[0].get_secret_value() == "https://hooks.slack.test/x"
    assert s.alert_pagerduty_url == "https://events.pagerduty.com/v2/enqueue"
    monkeypatch.setenv("CCPULSE_ALERT_RULES", "[]")
    assert Settings().alert_rules == []


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"threshold": None, "baseline_factor": None}, "threshold"),
        ({"metric": "waiting", "threshold": 10}, "baseline"),
        ({"window_seconds": 90}, "whole minutes"),
        ({"name": "has space"}, "pattern"),
        ({"comparison": "ge"}, "comparison"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_bad_rules_are_refused(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        AlertRule(**fields)


def test_rule_names_must_be_unique(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CCPULSE_ALERT_RULES", '[{"name": "a"}, {"name": "a"}]')
    with pytest.raises(ValidationError, match="unique"):
        Settings()


# --- limits, breach and clear ---


@pytest.mark.parametrize(
    ("rule", "baseline", "limit"),
    [
        (DEFAULT, None, 0.15),  # no history: the absolute threshold alone
        (DEFAULT, 0.05, 0.15),  # twice 5 % is below 15 %: the threshold is stricter
        (DEFAULT, 0.10, 0.20),  # twice 10 %: the baseline is stricter
        (AlertRule(threshold=None), 0.10, 0.20),
        (AlertRule(threshold=None), None, None),  # nothing to compare with
        (AlertRule(threshold=None, baseline_factor=3.0), 0.02, 0.06),
        (
            AlertRule(metric="service_level", comparison="lt", threshold=0.8, baseline_factor=None),
            None,
            0.8,
        ),
        (AlertRule(comparison="lt", threshold=0.5, baseline_factor=0.5), 0.6, 0.3),
    ],
)
def test_limit(rule: AlertRule, baseline: float | None, limit: float | None) -> None:
    got = limit_of(rule, baseline)
    assert got == pytest.approx(limit) if limit is not None else got is None


@pytest.mark.parametrize(
    ("o", "breach", "clear"),
    [
        (obs(0.30), True, False),
        (obs(0.15), False, False),  # equal to the limit: not above it, not yet back by 3 points
        (obs(0.13), False, False),  # inside the hysteresis band
        (obs(0.12), False, True),
        (obs(0.30, volume=19), False, True),  # below the minimum volume: meaningless
        (obs(0.30, volume=20), True, False),
        (obs(None), False, True),
        (obs(0.38, baseline=0.20), False, False),  # twice the usual 20 % is 40 %
        (obs(0.45, baseline=0.20), True, False),
        (obs(0.36, baseline=0.20), False, True),
    ],
)
def test_breach_and_clear(o: Observation, breach: bool, clear: bool) -> None:
    assert breached(DEFAULT, o) is breach
    assert cleared(DEFAULT, o) is clear


def test_lower_is_worse_metrics_breach_below() -> None:
    rule = AlertRule(
        name="sl",
        metric="service_level",
        comparison="lt",
        threshold=0.8,
        baseline_factor=None,
        min_volume=10,
        resolve_hysteresis=0.05,
    )
    assert breached(rule, obs(0.7)) and not cleared(rule, obs(0.7))
    assert not breached(rule, obs(0.82)) and not cleared(rule, obs(0.82))
    assert cleared(rule, obs(0.86))


# --- the state machine on a timeline ---


def run(rule: AlertRule, timeline: list[tuple[float, Observation]]) -> list[Transition]:
    state: AlertState | None = None
    out: list[Transition] = []
    for now, o in timeline:
        state, moves = step(rule, state, o, now, channel="voice")
        out += moves
    return out


def ticks(start: float, end: float, value: float, every: float = 5.0) -> list[tuple[float, Any]]:
    out, t = [], start
    while t < end:
        out.append((t, obs(value)))
        t += every
    return out


def test_a_spike_fires_once_after_for_seconds_and_resolves_once() -> None:
    timeline = [*ticks(0, 30, 0.05), *ticks(30, 200, 0.40), *ticks(200, 400, 0.02)]
    moves = run(DEFAULT, timeline)
    assert [(m.kind, m.at) for m in moves] == [("pending", 30), ("firing", 75), ("resolved", 260)]
    fired = moves[1].state
    assert fired.phase == "firing" and fired.pending_since == 30 and fired.value == 0.40
    assert moves[2].state.resolved_at == 260 and moves[2].state.clear_since == 200


def test_a_short_blip_never_fires() -> None:
    moves = run(DEFAULT, [*ticks(0, 40, 0.40), *ticks(40, 100, 0.05)])
    assert [m.kind for m in moves] == ["pending", "cleared"]


def test_the_hysteresis_band_keeps_it_firing() -> None:
    timeline = [*ticks(0, 60, 0.40), *ticks(60, 600, 0.14), *ticks(600, 700, 0.10)]
    moves = run(DEFAULT, timeline)
    assert [(m.kind, m.at) for m in moves] == [("pending", 0), ("firing", 45), ("resolved", 660)]


def test_a_dip_during_the_resolve_wait_restarts_it() -> None:
    timeline = [
        *ticks(0, 50, 0.40),
        *ticks(50, 80, 0.05),
        *ticks(80, 90, 0.40),
        *ticks(90, 200, 0.05),
    ]
    moves = run(DEFAULT, timeline)
    assert [(m.kind, m.at) for m in moves] == [("pending", 0), ("firing", 45), ("resolved", 150)]


def test_zero_for_seconds_fires_at_once() -> None:
    rule = AlertRule(for_seconds=0, resolve_for_seconds=0)
    moves = run(rule, [(0, obs(0.5)), (5, obs(0.01))])
    assert [(m.kind, m.at) for m in moves] == [("pending", 0), ("firing", 0), ("resolved", 5)]


def test_traffic_stopping_resolves_a_firing_alert() -> None:
    moves = run(DEFAULT, [*ticks(0, 50, 0.40), *[(t, obs(0.40, volume=3)) for t in (50, 110)]])
    assert [m.kind for m in moves] == ["pending", "firing", "resolved"]


def test_after_resolving_a_new_spike_is_a_new_alert() -> None:
    rule = AlertRule(for_seconds=10, resolve_for_seconds=0)
    timeline = [*ticks(0, 20, 0.4), *ticks(20, 30, 0.0), *ticks(30, 50, 0.4)]
    moves = run(rule, timeline)
    assert [(m.kind, m.at) for m in moves] == [
        ("pending", 0),
        ("firing", 10),
        ("resolved", 20),
        ("pending", 30),
        ("firing", 40),
    ]
    assert moves[-1].state.resolved_at is None and moves[-1].state.pending_since == 30


# --- properties over random histories ---

values = st.one_of(st.none(), st.floats(0, 1, allow_nan=False))
observations = st.builds(
    Observation,
    value=values,
    volume=st.integers(0, 60),
    baseline=st.one_of(st.none(), st.floats(0, 0.5, allow_nan=False)),
)
histories = st.lists(st.tuples(st.floats(0.5, 30, allow_nan=False), observations), max_size=60)
rules = st.builds(
    AlertRule,
    threshold=st.floats(0.05, 0.5, allow_nan=False),
    for_seconds=st.sampled_from([0, 5, 30, 45]),
    resolve_for_seconds=st.sampled_from([0, 10, 60]),
    resolve_hysteresis=st.sampled_from([0, 0.02, 0.1]),
    min_volume=st.integers(0, 30),
)


def timeline_of(history: list[tuple[float, Observation]]) -> list[tuple[float, Observation]]:
    out, now = [], 1_700_000_000.0
    for gap, o in history:
        now += gap
        out.append((now, o))
    return out


@settings(max_examples=300, deadline=None)
@given(rules, histories)
def test_pages_alternate_and_each_follows_a_held_breach(
    rule: AlertRule, history: list[tuple[float, Observation]]
) -> None:
    timeline = timeline_of(history)
    moves = run(rule, timeline)
    notified = [m.kind for m in moves if m.notified]
    assert notified[:1] in ([], ["firing"])
    assert all(a != b for a, b in itertools.pairwise(notified))
    seen = dict(timeline)
    for m in moves:
        if m.kind == "firing":
            since = m.state.pending_since
            assert since is not None and m.at - since >= rule.for_seconds
            assert all(breached(rule, o) for t, o in seen.items() if since <= t <= m.at)
        if m.kind == "resolved":
            since = m.state.clear_since
            assert since is not None and m.at - since >= rule.resolve_for_seconds
            assert all(cleared(rule, o) for t, o in seen.items() if since <= t <= m.at)


@settings(max_examples=200, deadline=None)
@given(rules, histories)
def test_a_takeover_from_stored_json_continues_exactly(
    rule: AlertRule, history: list[tuple[float, Observation]]
) -> None:
    """A new leader reads the state back from Redis: the JSON round trip changes nothing."""
    straight: AlertState | None = None
    stored: str | None = None
    for now, o in timeline_of(history):
        straight, moves_a = step(rule, straight, o, now, channel="voice", queue="sales")
        previous = AlertState.model_validate_json(stored) if stored else None
        after, moves_b = step(rule, previous, o, now, channel="voice", queue="sales")
        stored = after.model_dump_json() if after.active else None
        assert [(m.kind, m.at) for m in moves_a] == [(m.kind, m.at) for m in moves_b]
        assert after.phase in (straight.phase, "inactive") and after.active == straight.active


@settings(max_examples=200, deadline=None)
@given(rules, histories)
def test_below_the_minimum_volume_nothing_ever_happens(
    rule: AlertRule, history: list[tuple[float, Observation]]
) -> None:
    quiet = [(gap, o.model_copy(update={"volume": rule.min_volume - 1})) for gap, o in history]
    if rule.min_volume > 0:
        assert run(rule, timeline_of(quiet)) == []


@settings(max_examples=200, deadline=None)
@given(histories)
def test_without_delays_it_fires_exactly_while_breached(
    history: list[tuple[float, Observation]],
) -> None:
    rule = AlertRule(for_seconds=0, resolve_for_seconds=0, resolve_hysteresis=0)
    state: AlertState | None = None
    for now, o in timeline_of(history):
        state, _ = step(rule, state, o, now, channel="chat")
        assert (state.phase == "firing") is breached(rule, o)


# --- scopes and windows ---


def test_trailing_window_is_whole_minutes_ending_with_the_current_one() -> None:
    w = trailing_window(1_700_000_130.5, 300)  # 30.5 s into a minute
    assert (w.end_s - w.start_s, w.end_s % 60, w.end_s - 1_700_000_130.5) == (300, 0, 29.5)


def test_scopes_a_rule_covers() -> None:
    active = ["ch|voice", "ch|chat", "q|voice|sales", "q|chat|sales", "ag|alice"]
    assert covered(DEFAULT, active, []) == [("chat", None), ("voice", None)]
    per_queue = AlertRule(channel="voice", queue="*")
    assert covered(per_queue, active, []) == [("voice", "sales")]
    named = AlertRule(channel="email", queue="vip")
    assert covered(named, active, []) == [("email", "vip")]
    gone = AlertState(rule=DEFAULT.name, channel="sms", phase="firing")
    assert ("sms", None) in covered(DEFAULT, active, [gone])
    assert matches(DEFAULT, "voice", None) and not matches(DEFAULT, "voice", "sales")


# --- notification formats ---


def notice(kind: str, baseline: float | None = 0.04, rule: AlertRule = DEFAULT) -> Notice:
    state = AlertState(
        rule="abandon_spike",
        channel="voice",
        queue="sales",
        phase="firing",
        pending_since=100.0,
        fired_at=145.0,
        value=0.31,
        limit=0.15,
        baseline=baseline,
        volume=42,
    )
    at = 145.0 if kind == "firing" else 300.0
    return Notice(kind=kind, at=at, alert=state, rule=rule)


def test_no_page_without_a_baseline_unless_the_rule_asks() -> None:
    """Without its 4-week baseline the rule falls back to the bare 15 %, which pages on
    ordinary days: it is sent as a warning, as the Prometheus rules do (issue 19)."""
    assert notify.labels(notice("firing"))["severity"] == "critical"
    assert notify.labels(notice("firing", baseline=None))["severity"] == "warning"
    assert notify.slack(notice("firing", baseline=None))["text"].startswith("[FIRING] WARNING")
    asked = DEFAULT.model_copy(update={"page_without_baseline": True})
    assert notify.labels(notice("firing", baseline=None, rule=asked))["severity"] == "critical"
    bare = DEFAULT.model_copy(update={"baseline_factor": None})  # no baseline expected
    assert notify.labels(notice("firing", baseline=None, rule=bare))["severity"] == "critical"


LINKS = notify.Links("https://wallboard.example.com", None, hold_s=180.0)


def test_alertmanager_v4_payload() -> None:
    body = notify.alertmanager(notice("firing"), LINKS)
    assert body["version"] == "4" and body["status"] == "firing" and body["truncatedAlerts"] == 0
    alert = body["alerts"][0]
    assert alert["labels"] == {
        "alertname": "abandon_spike",
        "severity": "critical",
        "metric": "abandon_rate",
        "channel": "voice",
        "queue": "sales",
        "service": "ccpulse",
    }
    # startsAt is when the breach was first seen (pending), not when it fired 45 s later.
    assert alert["startsAt"] == "1970-01-01T00:01:40Z" and alert["endsAt"].startswith("0001-")
    assert alert["generatorURL"] == "https://wallboard.example.com/?channel=voice&queue=sales"
    resolved = notify.alertmanager(notice("resolved"), LINKS)["alerts"][0]
    assert resolved["status"] == "resolved" and resolved["endsAt"] == "1970-01-01T00:05:00Z"
    assert resolved["fingerprint"] == alert["fingerprint"]


def test_webhook_groups_are_per_alert_channel_and_queue() -> None:
    """Two channels' (or two queues') incidents never share a groupKey."""
    body = notify.alertmanager(notice("firing"), LINKS)
    assert body["groupLabels"] == {
        "alertname": "abandon_spike",
        "channel": "voice",
        "queue": "sales",
    }
    assert body["groupKey"] == '{}:{alertname="abandon_spike", channel="voice", queue="sales"}'
    other = notice("firing")
    keys_ = set()
    for channel, queue in (
        ("voice", "sales"),
        ("chat", "sales"),
        ("voice", "billing"),
        ("voice", None),
    ):
        state = other.alert.model_copy(update={"channel": channel, "queue": queue})
        keys_.add(notify.alertmanager(other.model_copy(update={"alert": state}), LINKS)["groupKey"])
    assert len(keys_) == 4


def test_alertmanager_api_v2_alerts() -> None:
    """As `POST /api/v2/alerts` takes them: a firing alert ends `hold_s` after it is sent
    unless re-sent; the resolve ends when the alert resolved."""
    firing = notify.api_alert(notice("firing"), LINKS, now=200.0)
    assert set(firing) == {"labels", "annotations", "startsAt", "endsAt", "generatorURL"}
    assert firing["labels"]["alertname"] == "abandon_spike"
    assert (firing["labels"]["channel"], firing["labels"]["queue"]) == ("voice", "sales")
    assert firing["startsAt"] == "1970-01-01T00:01:40Z"
    assert firing["endsAt"] == "1970-01-01T00:06:20Z"  # 200 + 180
    assert firing["generatorURL"] == "https://wallboard.example.com/?channel=voice&queue=sales"
    notes = firing["annotations"]
    assert notes["summary"].startswith("abandon_spike on voice/sales: abandon rate 31.0% > 15.0%")
    assert "first seen at 1970-01-01T00:01:40Z" in notes["description"]
    assert notes["runbook_url"] == "docs/runbook.md#abandon-rate"
    published = notify.Links("https://x.example", "https://wiki.example/runbook", 60.0)
    url = notify.api_alert(notice("firing"), published, 0.0)["annotations"]["runbook_url"]
    assert url == "https://wiki.example/runbook#abandon-rate"
    resolved = notify.api_alert(notice("resolved"), LINKS, now=400.0)
    assert resolved["endsAt"] == "1970-01-01T00:05:00Z" and resolved["labels"] == firing["labels"]


def test_links_come_from_the_settings_never_a_wildcard_bind() -> None:
    secrets_ = {"hash_key": "h" * 40, "admin_key": "a" * 40}
    wildcard = Settings(
        api_host="0.0.0.0", api_port=8000, alertmanager_resend_seconds=30, **secrets_
    )
    assert notify.Links.of(wildcard) == notify.Links("http://127.0.0.1:8000", None, 90.0)
    public = Settings(public_url="https://wb.example.com/", alertmanager_urls=["http://am:9093"])
    assert notify.Links.of(public).public_url == "https://wb.example.com"
    assert [(r.name, r.kind, r.url) for r in notify.receivers(public)] == [
        ("alertmanager:0", "alertmanager", "http://am:9093/api/v2/alerts")
    ]


def test_the_resolved_summary_says_it_is_back_not_still_over() -> None:
    state = notice("resolved").alert.model_copy(update={"value": 0.032, "resolved_at": 300.0})
    text = notify.summary(notice("resolved").model_copy(update={"alert": state}))
    assert text == (
        "abandon_spike on voice/sales resolved: abandon rate back to 3.2% "
        "(limit 15.0%, 42 contacts, last 5 min)"
    )
    assert ">" not in text
    said = notify.description(notice("resolved").model_copy(update={"alert": state}))
    assert "is back to 3.2%, inside the limit 15.0%" in said and "above" not in said
    assert said.endswith("Resolved at 1970-01-01T00:05:00Z.")


def test_slack_and_pagerduty_payloads() -> None:
    text = notify.slack(notice("firing"))["text"]
    assert text.startswith("[FIRING] CRITICAL abandon_spike on voice/sales")
    assert "31.0% > 15.0%" in text and "42 contacts" in text
    assert notify.slack(notice("resolved"))["text"].startswith("[RESOLVED]")
    trigger = notify.pagerduty(notice("firing"), "rk")
    assert trigger["event_action"] == "trigger" and trigger["routing_key"] == "rk"
    assert trigger["payload"]["severity"] == "critical" and trigger["payload"]["source"]
    resolve = notify.pagerduty(notice("resolved"), "rk")
    assert resolve == {
        "routing_key": "rk",
        "event_action": "resolve",
        "dedup_key": trigger["dedup_key"],
    }
