"""Is this an admin's key? For the ingest's one admin-only route, history import.

Keys live in Redis as hashes only (the api writes them, `ccpulse keys`); the ingest reads them
with the same rules as the api: a `CCPULSE_ADMIN_KEY` counts unless revoked, any other key by the
role stored with its hash. Redis is reached only when an import is posted.
"""

from __future__ import annotations

import json
from typing import Any, cast

from redis.asyncio import Redis, RedisCluster
from redis.asyncio.sentinel import Sentinel

from services import keys
from services.apikeys import Role, key_hash
from services.connections import redis_target
from services.settings import Settings


def connect(settings: Settings, **timeouts: float) -> Redis:
    """The ingest's Redis (admin keys only).

    A URL (redis:// or rediss://), redis-py's cluster client, or Sentinel's current primary,
    with the password and TLS files of services.connections (docs/managed-services.md).
    """
    target = redis_target(settings)
    options: dict[str, Any] = {
        **target.options,
        **({"socket_timeout": 5.0, "socket_connect_timeout": 3.0} | timeouts),
    }
    if target.sentinels:
        sentinel = Sentinel(  # type: ignore[no-untyped-call]
            target.sentinels, sentinel_kwargs=target.sentinel_options, **options
        )
        return cast(Redis, sentinel.master_for(str(target.service)))
    if target.cluster:
        options.pop("health_check_interval", None)
        return cast(Redis, RedisCluster.from_url(target.url, **options))
    return Redis.from_url(target.url, **options)


def bearer(authorization: str | None) -> str | None:
    if not authorization or not authorization.lower().startswith("bearer "):
        return None
    return authorization[7:].strip() or None


async def role_of(redis: Redis, settings: Settings, key: str) -> Role | None:
    """The key's role, or None when it is unknown or revoked."""
    digest = key_hash(key)
    if settings.admin_key is not None and digest == key_hash(settings.admin_key.get_secret_value()):
        return None if await redis.sismember(keys.APIKEYS_REVOKED, digest) else Role.admin
    for setting, role in ((settings.viewer_key, Role.viewer), (settings.planner_key, Role.planner)):
        if setting is not None and digest == key_hash(setting.get_secret_value()):
            return None if await redis.sismember(keys.APIKEYS_REVOKED, digest) else role
    raw = await redis.hget(keys.APIKEYS, digest)
    if raw is None:
        return None
    return Role[json.loads(raw)["role"]]
