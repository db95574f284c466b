"""Per-vendor settings (`CCPULSE_SOURCES__*`): webhook secrets, the replay window, name mappings.

One section, so the ingest and the adapters receive every vendor option in one value. A secret left
unset means "this source is not signed here": its signature is not checked (docs/adapters.md).
"""

from __future__ import annotations

from pydantic import BaseModel, Field, SecretStr

from services.contract import Channel


class ZendeskFields(BaseModel):
    """Where a trigger's JSON body (written by the Zendesk admin) keeps each value; dotted paths."""

    ticket_id: str = "ticket_id"
    event: str = "event"
    status: str = "status"
    time: str = "updated_at"
    created_at: str = "created_at"
    channel: str = "via"
    queue: str = "group"
    agent: str = "assignee"
    customer: str = "requester_email"


DEFAULT_CONNECT_CHANNELS: dict[str, Channel] = {
    "VOICE": Channel.VOICE,
    "CHAT": Channel.CHAT,
    "EMAIL": Channel.EMAIL,
}


class SourceSettings(BaseModel):
    """Secrets are optional: a source with no secret configured is accepted unsigned."""

    twilio_auth_token: SecretStr | None = None
    twilio_public_url: str | None = Field(
        default=None,
        description="Base URL Twilio calls (https://cc.example.com) when behind a proxy; "
        "the signature covers the URL exactly as Twilio requested it.",
    )
    chatwoot_secret: SecretStr | None = None
    zendesk_secret: SecretStr | None = None
    amazon_connect_token: SecretStr | None = None
    asterisk_token: SecretStr | None = None
    cloudevents_token: SecretStr | None = None
    # How far a signed timestamp (Chatwoot, Zendesk) may be from now; at most an hour, so a
    # captured request cannot be replayed for long.
    replay_window_seconds: int = Field(default=300, ge=1, le=3600)

    amazon_connect_channels: dict[str, Channel] = Field(
        default_factory=lambda: dict(DEFAULT_CONNECT_CHANNELS),
        description="Connect channel -> ccpulse channel; a channel not listed (TASK) is ignored.",
    )
    amazon_connect_queue_names: dict[str, str] = Field(default_factory=dict)
    amazon_connect_agent_names: dict[str, str] = Field(default_factory=dict)
    chatwoot_inbox_names: dict[str, str] = Field(default_factory=dict)
    zendesk_fields: ZendeskFields = Field(default_factory=ZendeskFields)
    zendesk_group_names: dict[str, str] = Field(default_factory=dict)
    # Agent activity names per vendor (`twilio`, `amazon_connect`, `asterisk`, ...) -> one of
    # available / on_contact / wrap_up / not_ready / offline, over services.agentstates defaults.
    agent_states: dict[str, dict[str, str]] = Field(default_factory=dict)


def sources_of(settings: object) -> SourceSettings:
    """The `sources` section of a Settings, or the defaults (no secrets) before it is added."""
    value = getattr(settings, "sources", None)
    return value if isinstance(value, SourceSettings) else SourceSettings()
