"""Browser sessions in Redis: opened from a key, ended with it, capped in age, listed for admins.

Only a hash of the cookie is kept, so a Redis dump or a session listing cannot be replayed as a
cookie. Each session records the key it came from; a session whose key is gone is refused.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import asdict, dataclass, replace
from typing import Any

from redis.asyncio import Redis

from services import keys
from services.clock import Clock
from services.settings import Settings


def cookie_hash(cookie: str) -> str:
    return hashlib.sha256(cookie.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class SessionRecord:
    id: str
    key_id: str
    name: str
    role: str
    key_hash: str  # the key it came from: revoking that key ends the session
    created: float
    last_seen: float

    def public(self) -> dict[str, Any]:
        """What an admin sees: never the cookie, nor the key's hash."""
        return {
            "id": self.id,
            "key_id": self.key_id,
            "key_name": self.name,
            "role": self.role,
            "created": self.created,
            "last_seen": self.last_seen,
        }


class SessionStore:
    def __init__(self, redis: Redis, settings: Settings, clock: Clock) -> None:
        self.redis = redis
        self.clock = clock
        self.idle_s = settings.session_idle_seconds
        self.max_s = settings.session_max_seconds

    def _ttl_ms(self, record: SessionRecord, now: float) -> int:
        """Idle expiry, never past the absolute end: use does not extend a session forever."""
        left = min(self.idle_s, record.created + self.max_s - now)
        return max(1, int(left * 1000))

    async def open(self, key_id: str, name: str, role: str, key_hash: str) -> str:
        cookie = secrets.token_urlsafe(32)
        now = self.clock.now()
        record = SessionRecord(secrets.token_hex(8), key_id, name, role, key_hash, now, now)
        digest = cookie_hash(cookie)
        await self.redis.set(keys.session_key(digest), _dump(record), px=self._ttl_ms(record, now))
        await self.redis.hset(keys.SESSIONS, record.id, digest)
        return cookie

    async def peek(self, digest: str) -> SessionRecord | None:
        """The live record behind a cookie hash, without renewing it."""
        raw = await self.redis.get(keys.session_key(digest))
        if raw is None:
            return None
        record = _load(raw)
        now = self.clock.now()
        if now - record.created >= self.max_s or now - record.last_seen >= self.idle_s:
            await self._drop(record.id, digest)
            return None
        return record

    async def touch(self, digest: str) -> SessionRecord | None:
        """Use renews the idle timer up to the absolute end."""
        record = await self.peek(digest)
        if record is None:
            return None
        now = self.clock.now()
        record = replace(record, last_seen=now)
        await self.redis.set(
            keys.session_key(digest), _dump(record), px=self._ttl_ms(record, now), xx=True
        )
        return record

    async def _all(self) -> list[tuple[str, SessionRecord]]:
        out = []
        for session_id, raw in (await self.redis.hgetall(keys.SESSIONS)).items():
            digest = _text(raw)
            record = await self.peek(digest)
            if record is None:
                await self.redis.hdel(keys.SESSIONS, session_id)
            else:
                out.append((digest, record))
        return out

    async def list(self) -> list[dict[str, Any]]:
        return [r.public() for _, r in sorted(await self._all(), key=lambda x: x[1].created)]

    async def _drop(self, session_id: str, digest: str) -> None:
        await self.redis.delete(keys.session_key(digest))
        await self.redis.hdel(keys.SESSIONS, session_id)

    async def end(self, session_id: str) -> bool:
        digest = await self.redis.hget(keys.SESSIONS, session_id)
        if digest is None:
            return False
        await self._drop(session_id, _text(digest))
        return True

    async def end_for_key(self, key_id: str) -> int:
        ended = [(d, r) for d, r in await self._all() if r.key_id == key_id]
        for digest, record in ended:
            await self._drop(record.id, digest)
        return len(ended)


def _dump(record: SessionRecord) -> str:
    return json.dumps(asdict(record))


def _load(raw: bytes | str) -> SessionRecord:
    return SessionRecord(**json.loads(raw))


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
