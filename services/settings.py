"""Every setting of every process, read once from `CCPULSE_*` variables (pydantic-settings).

Only `__main__` modules and the CLI build a `Settings`; everything else receives one, so tests can
hand any module the exact configuration they want.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.alerting import AlertRules, default_rules
from services.apikeys import RoleName, is_loopback
from services.calendar import BusinessHours
from services.clock import SystemClock
from services.sources import SourceSettings

SlVariant = Literal["abandons_ignored", "abandons_missed", "abandons_met_within"]
AbandonDenominator = Literal["offered", "queued"]
Access = Literal["open", "key", "off"]
KafkaProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]
MIN_SECRET_LENGTH = 32
PLACEHOLDER_SECRETS = ("ccpulse-dev-key-change-me", "replace-with-a-generated-key")
PLACEHOLDER_WORDS = ("change-me", "changeme", "replace")

DEFAULT_SL_THRESHOLDS_SECONDS: dict[str, int] = {
    "voice": 20,
    "chat": 60,
    "sms": 3600,
    "social": 3600,
    "email": 86400,
}


KEY_PREFIX_ENV = "CCPULSE_REDIS_KEY_PREFIX"
KEY_PREFIX_PATTERN = r"^[A-Za-z0-9._-]{1,64}$"
DEFAULT_KEY_PREFIX = "ccp"


def redis_key_prefix(environ: Mapping[str, str] = os.environ) -> str:
    """The installation's Redis key prefix (services/keys.py reads it once, at import); a value
    Redis patterns or cluster hash tags would misread is refused."""
    value = environ.get(KEY_PREFIX_ENV) or DEFAULT_KEY_PREFIX
    if not re.fullmatch(KEY_PREFIX_PATTERN, value):
        raise ValueError(f"{KEY_PREFIX_ENV}={value!r}: letters, digits, '.', '_', '-' (1-64)")
    return value


class Settings(BaseSettings):
    """One flat namespace, prefix `CCPULSE_`; the README has the table."""

    model_config = SettingsConfigDict(
        env_prefix="CCPULSE_", extra="ignore", env_nested_delimiter="__"
    )

    # --- wiring: unset broker or Redis means "start the embedded one" (ccpulse up) ---
    kafka_bootstrap: str | None = None
    kafka_idempotence: bool | None = Field(
        default=None, description="Idempotent producer; default on for Apache Kafka, off embedded."
    )
    kafka_partitions: int = Field(default=6, ge=1)
    kafka_session_timeout_ms: int = Field(default=6000, ge=1000)
    kafka_request_timeout_ms: int = Field(default=5000, ge=500)
    kafka_retention_ms: int = Field(default=7 * 24 * 3600 * 1000, ge=60_000)
    # How long the broker may hold a fetch that finds nothing. Apache Kafka answers a waiting fetch
    # as soon as a record arrives; the embedded broker (Tansu) waits it out, which at Kafka's 500 ms
    # was most of the event -> Redis latency (p50 187 -> 38 ms at 5,000 events/s with 100 ms).
    kafka_fetch_max_wait_ms: int = Field(default=100, ge=10)
    kafka_max_partition_fetch_bytes: int = Field(default=1024 * 1024, ge=64 * 1024)
    # Put before every topic name ("site-b." -> site-b.ccpulse.events), so two installations can
    # share one Kafka cluster; give each its own CCPULSE_CONSUMER_GROUP as well.
    kafka_topic_prefix: str = Field(default="", pattern=r"^[A-Za-z0-9._-]{0,100}$")
    redis_url: str | None = None
    # Before every Redis key ("site-b" -> site-b:stats), so installations can share one Redis
    # (Redis Cluster included, which has one database). Read by services.keys at process start.
    redis_key_prefix: str = Field(default=DEFAULT_KEY_PREFIX, pattern=KEY_PREFIX_PATTERN)
    database_url: str | None = None

    # --- managed Kafka (docs/managed-services.md): every client of every process uses these ---
    kafka_security_protocol: KafkaProtocol = "PLAINTEXT"
    kafka_sasl_mechanism: SaslMechanism | None = None  # required with SASL_PLAINTEXT / SASL_SSL
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_cafile: Path | None = None  # PEM bundle; unset: the system's trusted CAs
    kafka_ssl_certfile: Path | None = None  # client certificate (mutual TLS, e.g. Amazon MSK)
    kafka_ssl_keyfile: Path | None = None
    kafka_ssl_key_password: SecretStr | None = None
    # --- managed Redis: a password beside the URL, rediss:// with a CA, Sentinel, a replica ---
    redis_password: SecretStr | None = None  # when CCPULSE_REDIS_URL carries none (that wins)
    redis_username: str | None = None  # Redis 6 ACL user (ElastiCache RBAC, Azure Entra)
    redis_ssl_cafile: Path | None = None  # for rediss://; unset: the system's trusted CAs
    redis_ssl_certfile: Path | None = None  # client certificate, when the server asks for one
    redis_ssl_keyfile: Path | None = None
    # Sentinel: the primary is found by asking these host:port addresses for `service`.
    redis_sentinels: list[str] = Field(default_factory=list)
    redis_sentinel_service: str | None = None
    redis_sentinel_password: SecretStr | None = None  # when the sentinels themselves need one
    # A read replica for the api's reads (wallboard, REST); writes and sessions use the primary.
    redis_replica_url: str | None = None

    api_host: str = "127.0.0.1"
    api_port: int = 8000
    ingest_host: str = "127.0.0.1"
    ingest_port: int = 8001
    data_dir: Path = Path("./var")
    timezone: str = "UTC"
    log_level: str = "INFO"
    # Every process's log lines: "text" for a terminal, "json" (one object a line, with the
    # request id) for a log pipeline. Access logs: one line per HTTP request of ingest and api.
    log_format: Literal["text", "json"] = "text"
    access_log: bool = True
    # OTLP/HTTP collector for traces (e.g. http://otel-collector:4318); unset: no traces at all.
    otel_endpoint: str | None = None
    # Shifts every process's clock by this many seconds: for running the suite at chosen instants
    # (`make test-clock`). Leave 0 in production. Never negative: Redis expiry times are absolute
    # on Redis's own clock, so a stack set in the past would see its buckets expire at once.
    clock_offset_seconds: float = Field(default=0.0, ge=0)

    # --- vendor sources: webhook secrets, replay window, name mappings (docs/adapters.md) ---
    sources: SourceSettings = Field(default_factory=SourceSettings)

    # --- access: on by default; off only when every listener is on loopback ---
    auth: Literal["on", "off"] = "on"
    admin_key: SecretStr | None = None  # a first admin key, for automation
    viewer_key: SecretStr | None = None  # a first viewer key (the `make run` wallboard link)
    planner_key: SecretStr | None = None  # a first planner key (the `make run` planning link)
    ingest_tokens: list[SecretStr] = Field(default_factory=list)  # bearer tokens for /v1/events
    ingest_rate_per_second: float = Field(default=200.0, gt=0)  # requests per source
    ingest_burst: int = Field(default=400, ge=1)
    ingest_body_timeout_seconds: float = Field(default=10.0, gt=0)
    allowed_origins: list[str] = Field(default_factory=list)  # extra websocket origins

    # --- personal data ---
    hash_key: SecretStr = SecretStr("ccpulse-dev-key-change-me")

    # --- ingest limits ---
    max_body_bytes: int = 1024 * 1024
    max_batch_events: int = 10_000

    # --- aggregation ---
    lateness_seconds: int = Field(default=48 * 3600, ge=60)
    bucket_ttl_seconds: int = Field(default=48 * 3600, ge=3600)
    max_poll_records: int = Field(default=6000, ge=1)
    fcr_window_seconds: int = Field(default=7 * 86400, ge=3600)
    # Opening hours per queue name ("*" for every queue): business-hours variants of waits.
    business_hours: dict[str, BusinessHours] = Field(default_factory=dict)
    consumer_group: str = "ccpulse-aggregator"
    # How often each aggregator reports its consumer lag (and mirrors offsets into Kafka).
    lag_report_seconds: float = Field(default=5.0, gt=0, le=60)
    # The aggregator's own /metrics (lag, batches, apply time, rebalances, process figures).
    # Unset: off, except under `ccpulse up` (loopback port 8002); 0: off.
    aggregator_metrics_port: int | None = Field(default=None, ge=0, le=65535)
    aggregator_metrics_host: str = "127.0.0.1"

    # --- aggregator v2: state owned by partition (issue 18, docs/aggregation.md) ---
    # Fact sheets kept in memory across the partitions one aggregator owns; colder ones are
    # evicted (least recently used) and read back from Redis, their durable copy, on a miss.
    state_max_sheets: int = Field(default=64_000, ge=1)  # ~1 kB each (docs/capacity.md)
    # Measured-FCR group sheets cached with their versions (the apply step checks each version),
    # kept as JSON text (~0.3 kB each): a miss costs one pipelined read in the batch's planning
    # (docs/capacity.md, "With measured FCR in use").
    state_max_groups: int = Field(default=20_000, ge=1)
    # Redis Cluster: aggregator and api use redis-py's cluster client (CCPULSE_REDIS_URL names
    # any node). Each partition's step is one slot; measured FCR's groups are written per
    # shard before it (docs/aggregation.md).
    redis_cluster: bool = False
    fcr_measured: bool = True

    # --- history (SQL): closed 15-minute intervals, rolled up by the aggregator ---
    history_interval_seconds: float = Field(default=5.0, gt=0)  # how often dirty intervals roll
    # While the live path is more than a poll behind (a catch-up), a pass starts at most this
    # often: history comes after the live figures, and each interval is rolled once its
    # minutes are in, not again every few seconds as they fill (marks persist in Redis).
    history_catch_up_interval_seconds: float = Field(default=60.0, gt=0)
    history_retention_days: int = Field(default=400, ge=1)
    # One row per contact (the export's and drill-down's source) is kept this long, by start.
    history_contacts_retention_days: int = Field(default=90, ge=1)
    # Abandoned-contacts worklist: a later contact of the same customer this soon after an
    # abandon marks it reached (docs/contacts.md); its role is contact_lists_role.
    callback_window_seconds: int = Field(default=86400, ge=60)
    # The largest upload `POST /v1/history/imports` takes (as sent: gzip counts compressed).
    history_import_max_bytes: int = Field(default=256 * 1024 * 1024, ge=1024)
    staffing_weeks: int = Field(default=4, ge=1, le=52)  # forecast: same weekday, last N weeks
    # Cost per case: the loaded hourly cost of an agent (pay, taxes, seat), by queue, else by
    # channel, else the default; no cost figures unless one is set (docs/metrics.md#cost).
    cost_per_hour: float | None = Field(default=None, ge=0)
    channel_cost_per_hour: dict[str, float] = Field(default_factory=dict)
    queue_cost_per_hour: dict[str, float] = Field(default_factory=dict)
    cost_currency: str = Field(default="EUR", min_length=1, max_length=8)
    # Who may open the contacts behind a figure (`/api/v1/contacts`, the worklist): supervisors and
    # planners by default; `viewer` opens them to wallboard screens too.
    contact_lists_role: RoleName = RoleName.planner

    # --- metric definitions, applied at read time ---
    short_abandon_seconds: int = 5
    sl_variant: SlVariant = "abandons_missed"
    sl_exclude_short_abandons: bool = True
    sl_thresholds_seconds: dict[str, int] = Field(
        default_factory=lambda: dict(DEFAULT_SL_THRESHOLDS_SECONDS)
    )
    queue_sl_thresholds_seconds: dict[str, int] = Field(default_factory=dict)
    abandon_denominator: AbandonDenominator = "offered"

    # --- agents: which states are on a contact and which are available (occupancy) ---
    busy_states: list[str] = Field(default_factory=lambda: ["on_contact", "wrap_up", "busy"])
    idle_states: list[str] = Field(default_factory=lambda: ["available", "idle", "ready"])

    # --- wallboard colours: ok / warning / critical (critical below warning: lower is worse) ---
    wallboard_thresholds: dict[str, dict[str, float]] = Field(
        default_factory=lambda: {
            "service_level": {"warning": 0.8, "critical": 0.7},
            "abandon_rate": {"warning": 0.05, "critical": 0.10},
            "longest_wait_seconds": {"warning": 60.0, "critical": 120.0},
        }
    )
    # Per channel ("email") and per queue ("sales"): {figure: {warning, critical}} over the above.
    wallboard_channel_thresholds: dict[str, dict[str, dict[str, float]]] = Field(
        default_factory=dict
    )
    wallboard_queue_thresholds: dict[str, dict[str, dict[str, float]]] = Field(default_factory=dict)

    # --- alerting: the built-in alerter (docs/observability.md#built-in-alerter) ---
    alert_rules: AlertRules = Field(default_factory=default_rules)  # [] switches it off
    # A breach is seen up to one interval late: keep for_seconds + this under 60 s.
    alert_eval_interval_seconds: float = Field(default=5.0, gt=0, le=60)
    alert_webhook_urls: list[str] = Field(default_factory=list)  # Alertmanager webhook v4 JSON
    alert_slack_urls: list[SecretStr] = Field(default_factory=list)  # incoming webhooks
    alert_pagerduty_routing_key: SecretStr | None = None  # Events API v2 integration key
    alert_pagerduty_url: str = "https://events.pagerduty.com/v2/enqueue"
    alert_notify_attempts: int = Field(default=5, ge=1)  # per delivery round, with backoff
    # Alertmanager base URLs (http://alertmanager:9093): alerts are POSTed to /api/v2/alerts,
    # re-sent every `alertmanager_resend_seconds` while firing, sent with endsAt on resolve.
    alertmanager_urls: list[str] = Field(default_factory=list)
    alertmanager_resend_seconds: float = Field(default=60.0, gt=0, le=600)
    # Where people open the wallboard (https://wallboard.example.com): alert links point there.
    # Unset: the api's own address (loopback for a wildcard bind).
    public_url: str | None = None
    # Where your team publishes docs/runbook.md (a wiki or the repository's page); the alerts'
    # runbook_url annotation is this plus the rule's section. Unset: docs/runbook.md#section.
    alert_runbook_url: str | None = None

    # --- ingest hardening (issue 13): the public URL vendors call, header and connection bounds ---
    # The URL Twilio signs (https://cc.example.com). Required off loopback when a Twilio auth
    # token is set: the Host header is the client's to choose, so it cannot say what was signed.
    ingest_public_url: str | None = None
    # Both servers (uvicorn): a connection must send its request headers within this time, idle
    # keep-alive connections close after `keep_alive`, at most `max_connections` are served at
    # once (503 beyond), and a request head's URL and header fields may be at most
    # `max_header_bytes` (431 beyond; services/serving.py).
    http_header_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    http_keep_alive_seconds: float = Field(default=5.0, gt=0, le=300)
    http_max_connections: int = Field(default=1000, ge=10)
    http_max_header_bytes: int = Field(default=16 * 1024, ge=1024, le=1024 * 1024)

    # --- api ---
    # At most one wallboard state per interval: an event counted in Redis waits for the next push
    # (0 to one interval), so event -> websocket p99 <= 1 s needs well under 1 s (docs/capacity.md).
    ws_min_interval_seconds: float = Field(default=0.5, ge=0)
    # Per-agent series on /metrics: off by default (cardinality), at most `cap` agents when on.
    metrics_per_agent: bool = False
    metrics_agent_cap: int = Field(default=200, ge=0)
    # Queue and stage names come from event fields: at most this many distinct values of each
    # per scrape (busiest first), the rest counted in ccpulse_metrics_scopes_dropped.
    metrics_scope_cap: int = Field(default=200, ge=0)

    # --- security (docs/security.md): sessions, cookies, what is exposed off loopback ---
    session_idle_seconds: int = Field(default=7 * 86400, ge=60)  # unused this long: signed out
    session_max_seconds: int = Field(default=30 * 86400, ge=60)  # then a new /login, used or not
    cookie_secure: bool | None = None  # Secure cookies; default: on unless the api is on loopback
    # /docs and /openapi.json of both apps, and the ingest's /metrics: "open", "key" (an api key
    # of the viewer role, or an ingest token) or "off"; default: open on loopback, key off it.
    docs_access: Access | None = None
    ingest_metrics_access: Access | None = None

    @field_validator("redis_key_prefix")
    @classmethod
    def _prefix_is_the_processes(cls, value: str) -> str:
        """services.keys names every key with the prefix the environment held when it loaded: a
        prefix given only here would leave this process writing another installation's keys."""
        named = redis_key_prefix()
        if value != named:
            raise ValueError(
                f"is {value!r} but this process names its keys with {named!r}: set "
                f"{KEY_PREFIX_ENV} in the environment before the process starts"
            )
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @model_validator(mode="after")
    def _auth_off_only_on_loopback(self) -> Settings:
        if self.auth == "off" and not (
            is_loopback(self.api_host) and is_loopback(self.ingest_host)
        ):
            raise ValueError(
                "CCPULSE_AUTH=off is refused unless CCPULSE_API_HOST and CCPULSE_INGEST_HOST are "
                f"loopback addresses (they are {self.api_host} and {self.ingest_host})"
            )
        return self

    @model_validator(mode="after")
    def _managed_services_consistent(self) -> Settings:
        """Half a security setup fails late, inside a client's retry loop: refuse it at start."""
        problems = managed_problems(self)
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @model_validator(mode="after")
    def _no_public_default_secrets(self) -> Settings:
        """Off loopback a default or short secret is a public one: refuse to start at all."""
        if self.on_loopback():
            return self
        problems = weak_secrets(self)
        if problems:
            raise ValueError(
                f"CCPULSE_API_HOST={self.api_host} / CCPULSE_INGEST_HOST={self.ingest_host} is "
                f"not loopback, so every secret must be set, not a placeholder, and at least "
                f"{MIN_SECRET_LENGTH} characters: " + "; ".join(problems)
            )
        return self

    def on_loopback(self) -> bool:
        return is_loopback(self.api_host) and is_loopback(self.ingest_host)

    def secure_cookies(self) -> bool:
        return self.cookie_secure if self.cookie_secure is not None else not self.on_loopback()

    def docs_mode(self) -> Access:
        return self.docs_access or ("open" if self.on_loopback() else "key")

    def ingest_metrics_mode(self) -> Access:
        return self.ingest_metrics_access or ("open" if self.on_loopback() else "key")

    def clock(self) -> SystemClock:
        """The wall clock every process of this installation reads (shifted only in tests)."""
        return SystemClock(self.clock_offset_seconds)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def topic(self, name: str) -> str:
        """This installation's name of one of services.keys' topics."""
        return self.kafka_topic_prefix + name

    def idempotent_producer(self) -> bool:
        """Tansu (embedded) rejects idempotent producers; Apache Kafka should use them."""
        if self.kafka_idempotence is not None:
            return self.kafka_idempotence
        return self.kafka_bootstrap is not None

    def public_base_url(self) -> str:
        """The wallboard's address for links people click (never a wildcard bind address)."""
        if self.public_url:
            return self.public_url.rstrip("/")
        host = "127.0.0.1" if self.api_host in ("", "0.0.0.0", "::") else self.api_host
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.api_port}"

    def sl_threshold_for(self, channel: str, queue: str | None = None) -> int:
        if queue is not None and queue in self.queue_sl_thresholds_seconds:
            return self.queue_sl_thresholds_seconds[queue]
        return self.sl_thresholds_seconds.get(channel, 20)

    def wallboard_pairs(
        self, channel: str, queue: str | None = None
    ) -> dict[str, dict[str, float]]:
        """The wallboard's {figure: {warning, critical}} for a channel or one of its queues.

        The longest wait never warns before the scope's own service-level threshold (critical:
        twice it), unless the channel or queue sets it: an e-mail answered within its day is not
        late at two minutes. The queue's settings win over the channel's, those over the global.
        """
        threshold = self.sl_threshold_for(channel, queue)
        pairs = {name: dict(pair) for name, pair in self.wallboard_thresholds.items()}
        wait = pairs.get("longest_wait_seconds")
        if wait is not None and {"warning", "critical"} <= wait.keys():
            wait["warning"] = max(wait["warning"], float(threshold))
            wait["critical"] = max(wait["critical"], 2.0 * threshold)
        for own in (
            self.wallboard_channel_thresholds.get(channel, {}),
            self.wallboard_queue_thresholds.get(queue, {}) if queue is not None else {},
        ):
            for name, pair in own.items():
                pairs[name] = {**pairs.get(name, {}), **pair}
        return pairs


def secret_problem(value: str | None) -> str | None:
    """Why a secret would be public or guessable; None when it is fine."""
    if value is None or not value.strip():
        return "is not set"
    lowered = value.lower()
    if value in PLACEHOLDER_SECRETS or any(word in lowered for word in PLACEHOLDER_WORDS):
        return "is a placeholder"
    if len(value) < MIN_SECRET_LENGTH:
        return f"is {len(value)} characters (at least {MIN_SECRET_LENGTH})"
    return None


def weak_secrets(settings: Settings) -> list[str]:
    """Each bad secret by its variable name (never its value), for one refusal message."""
    secret = SecretStr.get_secret_value
    checks: list[tuple[str, str | None]] = [
        ("CCPULSE_HASH_KEY", secret(settings.hash_key)),
        ("CCPULSE_ADMIN_KEY", secret(settings.admin_key) if settings.admin_key else None),
    ]
    if settings.viewer_key is not None:
        checks.append(("CCPULSE_VIEWER_KEY", secret(settings.viewer_key)))
    if settings.planner_key is not None:
        checks.append(("CCPULSE_PLANNER_KEY", secret(settings.planner_key)))
    for number, token in enumerate(settings.ingest_tokens, start=1):
        checks.append((f"CCPULSE_INGEST_TOKENS[{number}]", secret(token)))
    password = redis_password(settings.redis_url)
    if password is not None:
        checks.append(("CCPULSE_REDIS_URL password", password))
    elif settings.redis_password is not None:
        checks.append(("CCPULSE_REDIS_PASSWORD", settings.redis_password.get_secret_value()))
    return [f"{name} {why}" for name, value in checks if (why := secret_problem(value))]


def managed_problems(settings: Settings) -> list[str]:
    """Each inconsistent Kafka / Redis security setting by variable name (never a value)."""
    return _kafka_problems(settings) + _tls_file_problems(settings) + _redis_problems(settings)


def _kafka_problems(settings: Settings) -> list[str]:
    problems: list[str] = []
    protocol = settings.kafka_security_protocol
    if protocol != "PLAINTEXT" and not settings.kafka_bootstrap:
        problems.append(
            f"CCPULSE_KAFKA_SECURITY_PROTOCOL={protocol} needs CCPULSE_KAFKA_BOOTSTRAP: the "
            "embedded broker speaks PLAINTEXT only"
        )
    sasl = protocol.startswith("SASL_")
    if sasl and not (
        settings.kafka_sasl_mechanism
        and settings.kafka_sasl_username
        and settings.kafka_sasl_password
    ):
        problems.append(
            f"CCPULSE_KAFKA_SECURITY_PROTOCOL={protocol} needs CCPULSE_KAFKA_SASL_MECHANISM, "
            "CCPULSE_KAFKA_SASL_USERNAME and CCPULSE_KAFKA_SASL_PASSWORD"
        )
    if not sasl and settings.kafka_sasl_mechanism is not None:
        problems.append(
            f"CCPULSE_KAFKA_SASL_MECHANISM is set but CCPULSE_KAFKA_SECURITY_PROTOCOL={protocol} "
            "does not use SASL (SASL_SSL or SASL_PLAINTEXT)"
        )
    files = (settings.kafka_ssl_cafile, settings.kafka_ssl_certfile, settings.kafka_ssl_keyfile)
    if not protocol.endswith("SSL") and any(files):
        problems.append(
            f"Kafka TLS files are set but CCPULSE_KAFKA_SECURITY_PROTOCOL={protocol} is not TLS "
            "(SSL or SASL_SSL)"
        )
    return problems


def _tls_file_problems(settings: Settings) -> list[str]:
    problems: list[str] = []
    for system in ("KAFKA", "REDIS"):
        cert = getattr(settings, f"{system.lower()}_ssl_certfile")
        key = getattr(settings, f"{system.lower()}_ssl_keyfile")
        if (cert is None) != (key is None):
            problems.append(
                f"CCPULSE_{system}_SSL_CERTFILE and CCPULSE_{system}_SSL_KEYFILE go together"
            )
        for part in ("CAFILE", "CERTFILE", "KEYFILE"):
            path = getattr(settings, f"{system.lower()}_ssl_{part.lower()}")
            if path is not None and not path.is_file():
                problems.append(f"CCPULSE_{system}_SSL_{part} names no readable file ({path})")
    return problems


def _redis_problems(settings: Settings) -> list[str]:
    problems: list[str] = []
    if bool(settings.redis_sentinels) != bool(settings.redis_sentinel_service):
        problems.append("CCPULSE_REDIS_SENTINELS and CCPULSE_REDIS_SENTINEL_SERVICE go together")
    if settings.redis_sentinels and settings.redis_cluster:
        problems.append("CCPULSE_REDIS_SENTINELS and CCPULSE_REDIS_CLUSTER exclude each other")
    for address in settings.redis_sentinels:
        host, _, port = address.rpartition(":")
        if not host or not port.isdigit():
            problems.append(f"CCPULSE_REDIS_SENTINELS: {address!r} is not host:port")
    return problems


def redis_password(url: str | None) -> str | None:
    """The password inside a redis:// or rediss:// URL, if it carries one."""
    if not url:
        return None
    return urlsplit(url).password


def load_settings() -> Settings:
    """Settings from the environment, or exit naming each bad setting: pydantic's own message
    repeats the input values, which here are secrets, so only the reasons are printed."""
    try:
        return Settings()
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            where = ".".join(map(str, error["loc"])) or "settings"
            lines.append(f"{where}: {error['msg'].removeprefix('Value error, ')}")
        raise SystemExit("ccpulse: refusing to start:\n  " + "\n  ".join(lines)) from None
