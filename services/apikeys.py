"""API keys and roles: what a key may do, and how a key is kept (only its hash, never the key).

Keys are 32 random bytes, so a plain SHA-256 is enough to keep them at rest: there is nothing
to guess that a slow hash would protect.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
from enum import IntEnum, StrEnum

KEY_PREFIX = "ccp_"


class Role(IntEnum):
    """Each role includes the ones below it."""

    viewer = 1  # live figures, wallboard, websocket
    planner = 2  # history, staffing, exports
    admin = 3  # settings, alert rules, keys


class RoleName(StrEnum):
    """The names of `Role` as command-line choices (Role's values are ranks)."""

    viewer = "viewer"
    planner = "planner"
    admin = "admin"


class KeyAction(StrEnum):
    """What `ccpulse keys` does."""

    create = "create"
    list = "list"
    revoke = "revoke"


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def same_key(key: str, stored_hash: str) -> bool:
    return hmac.compare_digest(key_hash(key), stored_hash)


def is_loopback(host: str) -> bool:
    """`CCPULSE_AUTH=off` is refused unless every listener is bound to one of these."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
