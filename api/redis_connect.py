"""The api's Redis clients: the primary for writes and sessions, and an optional read replica."""

from __future__ import annotations

from typing import Any, cast

from redis.asyncio import Redis, RedisCluster
from redis.asyncio.sentinel import Sentinel

from services.connections import redis_target
from services.settings import Settings


def connect(settings: Settings, *, replica: bool = False, **timeouts: float) -> Redis:
    """The api's Redis (`replica`: CCPULSE_REDIS_REPLICA_URL when set, for the live reads).

    A URL (redis:// or rediss://), redis-py's cluster client, or Sentinel's current primary,
    with the password and TLS files of services.connections (docs/managed-services.md).
    """
    target = redis_target(settings, replica=replica)
    defaults = {"socket_timeout": 5.0, "socket_connect_timeout": 3.0, "health_check_interval": 15}
    options: dict[str, Any] = {**target.options, **(defaults | timeouts)}
    if target.sentinels:
        sentinel = Sentinel(  # type: ignore[no-untyped-call]
            target.sentinels, sentinel_kwargs=target.sentinel_options, **options
        )
        return cast(Redis, sentinel.master_for(str(target.service)))
    if target.cluster:
        options.pop("health_check_interval", None)
        return cast(Redis, RedisCluster.from_url(target.url, **options))
    return Redis.from_url(target.url, **options)


def connect_replica(settings: Settings) -> Redis | None:
    """A separate client for the live reads, or None: they use the primary."""
    return connect(settings, replica=True) if settings.redis_replica_url else None
