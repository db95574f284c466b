"""Agent activity names -> the five states every agent is in exactly one of.

Vendors name activities their own way (Twilio `Available` / `Break`, Connect custom statuses,
Asterisk pauses with a reason). Adapters map them with their vendor's defaults and the
installation's `CCPULSE_SOURCES__AGENT_STATES`; the aggregator applies the generic rule again, so
native `agent.state` events are compared without regard to case too. A name that is no known
state becomes `not_ready` and is kept as the reason. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping

AVAILABLE = "available"
ON_CONTACT = "on_contact"
WRAP_UP = "wrap_up"  # after-contact work
NOT_READY = "not_ready"
OFFLINE = "offline"
STATES = (AVAILABLE, ON_CONTACT, WRAP_UP, NOT_READY, OFFLINE)

# Spellings seen across platforms, compared after `key()` (casefolded, `_` for spaces and dashes).
ALIASES: dict[str, str] = {
    "idle": AVAILABLE,
    "ready": AVAILABLE,
    "online": AVAILABLE,
    "routable": AVAILABLE,
    "busy": ON_CONTACT,
    "on_call": ON_CONTACT,
    "in_call": ON_CONTACT,
    "talking": ON_CONTACT,
    "on_contact": ON_CONTACT,
    "connected": ON_CONTACT,
    "in_progress": ON_CONTACT,
    "wrapup": WRAP_UP,
    "wrapping": WRAP_UP,
    "acw": WRAP_UP,
    "after_call_work": WRAP_UP,
    "after_contact_work": WRAP_UP,
    "aftercallwork": WRAP_UP,
    "logged_out": OFFLINE,
    "logout": OFFLINE,
    "logged_off": OFFLINE,
    "signed_out": OFFLINE,
    "away": NOT_READY,
    "paused": NOT_READY,
    "unavailable": NOT_READY,
    "not_ready": NOT_READY,
}

# Per vendor: names whose meaning differs from the generic rule, or that should keep a reason.
VENDOR_DEFAULTS: dict[str, dict[str, str]] = {
    # Twilio's default activities: Available, Unavailable, Offline, Break (any other is custom).
    "twilio": {
        "available": AVAILABLE,
        "unavailable": NOT_READY,
        "offline": OFFLINE,
        "break": NOT_READY,
    },
    # Connect routing profiles: Available, Offline, then custom statuses (not routable).
    "amazon_connect": {"available": AVAILABLE, "offline": OFFLINE},
    # Chatwoot agent availability: online, busy (not routable), offline.
    "chatwoot": {"online": AVAILABLE, "busy": NOT_READY, "offline": OFFLINE},
    # Zendesk agent statuses: online, away, transfers only, offline.
    "zendesk": {
        "online": AVAILABLE,
        "away": NOT_READY,
        "transfers_only": NOT_READY,
        "offline": OFFLINE,
    },
    # ccpulse's own queue_log mapping: paused (with its reason), logged out.
    "asterisk": {"paused": NOT_READY, "logged_out": OFFLINE},
}


def key(name: str) -> str:
    return "_".join(name.strip().casefold().replace("-", " ").split())


def normalise(
    name: str, vendor: str | None = None, overrides: Mapping[str, str] | None = None
) -> tuple[str, str | None]:
    """(state, reason): the installation's mapping first, then the vendor's, then the generic
    rule; anything else is `not_ready` with the vendor's name as the reason."""
    k = key(name)
    for table in (_keyed(overrides or {}), VENDOR_DEFAULTS.get(vendor or "", {})):
        if k in table:
            return _with_reason(key(table[k]), name)
    if k in STATES:
        return k, None
    if k in ALIASES:
        return _with_reason(ALIASES[k], name)
    return NOT_READY, name.strip()


def _with_reason(state: str, name: str) -> tuple[str, str | None]:
    state = state if state in STATES else ALIASES.get(state, NOT_READY)
    reason = name.strip() if state == NOT_READY and key(name) != NOT_READY else None
    return state, reason


def _keyed(mapping: Mapping[str, str]) -> dict[str, str]:
    return {key(k): v for k, v in mapping.items()}
