"""`ccpulse keys create|list|revoke`: API keys kept hashed in the api's Redis."""

from __future__ import annotations

from typing import Any

from services.apikeys import KeyAction, Role, RoleName
from services.settings import Settings

from .auth import Authenticator
from .redis_connect import connect


class UnknownKey(LookupError):
    """A revoke named an id no key has."""


async def main(
    settings: Settings,
    action: KeyAction,
    *,
    name: str | None = None,
    role: RoleName = RoleName.viewer,
    key_id: str | None = None,
) -> list[dict[str, Any]]:
    """The rows to show: the new key (its only appearance), the stored keys, or none (revoke)."""
    if action is KeyAction.revoke and not key_id:
        raise ValueError("revoke needs the key's id (--id)")
    redis = connect(settings)
    auth = Authenticator(redis, settings)
    try:
        if action is KeyAction.create:
            now = settings.clock().now()
            new_id, key = await auth.create_key(name or "unnamed", Role[role.value], now)
            return [{"id": new_id, "name": name, "role": role.value, "key": key}]
        if action is KeyAction.list:
            return await auth.list_keys()
        if not await auth.revoke(str(key_id)):
            raise UnknownKey(f"no key {key_id}")
        return []
    finally:
        await redis.aclose()
