"""Who is calling: API keys (header), sessions (cookie, for the wallboard) and websocket tickets.

Keys live in Redis as hashes only; the first admin key can come from `CCPULSE_ADMIN_KEY`. A TV
opens `/login?key=...` once with a viewer key and keeps a cookie, so no key sits in page URLs or
in websocket URLs (which proxies log).
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass
from typing import Any

from fastapi import HTTPException, Request, WebSocket
from redis.asyncio import Redis

from services.apikeys import Role, key_hash, new_key
from services.settings import Settings

KEYS = "ccp:apikeys"  # hash: sha256(key) -> {"id", "name", "role", "created"}
SESSION_PREFIX = "ccp:session:"
TICKET_PREFIX = "ccp:ticket:"
COOKIE = "ccpulse_session"
SESSION_TTL_S = 7 * 86400  # a wall TV stays logged in for a week, renewed while in use
TICKET_TTL_S = 30


@dataclass(frozen=True, slots=True)
class Principal:
    key_id: str
    name: str
    role: Role


ANONYMOUS_ADMIN = Principal("auth-off", "auth off (loopback only)", Role.admin)


class Authenticator:
    def __init__(self, redis: Redis, settings: Settings) -> None:
        self.redis = redis
        self.enabled = settings.auth != "off"
        self.bootstrap: dict[str, Principal] = {}
        if settings.admin_key is not None:
            admin = key_hash(settings.admin_key.get_secret_value())
            self.bootstrap[admin] = Principal("bootstrap-admin", "CCPULSE_ADMIN_KEY", Role.admin)
        if settings.viewer_key is not None:
            viewer = key_hash(settings.viewer_key.get_secret_value())
            self.bootstrap[viewer] = Principal(
                "bootstrap-viewer", "CCPULSE_VIEWER_KEY", Role.viewer
            )

    async def from_key(self, key: str) -> Principal | None:
        digest = key_hash(key)
        if digest in self.bootstrap:
            return self.bootstrap[digest]
        raw = await self.redis.hget(KEYS, digest)
        if raw is None:
            return None
        data = json.loads(raw)
        return Principal(data["id"], data["name"], Role[data["role"]])

    async def from_session(self, session: str) -> Principal | None:
        raw = await self.redis.getex(SESSION_PREFIX + session, ex=SESSION_TTL_S)
        return None if raw is None else _principal(json.loads(raw))

    async def open_session(self, principal: Principal) -> str:
        session = secrets.token_urlsafe(32)
        await self.redis.set(SESSION_PREFIX + session, _dump(principal), ex=SESSION_TTL_S)
        return session

    async def issue_ticket(self, principal: Principal) -> str:
        ticket = secrets.token_urlsafe(24)
        await self.redis.set(TICKET_PREFIX + ticket, _dump(principal), ex=TICKET_TTL_S)
        return ticket

    async def redeem_ticket(self, ticket: str) -> Principal | None:
        """Single use: a ticket seen in a log cannot be used again."""
        raw = await self.redis.getdel(TICKET_PREFIX + ticket)
        return None if raw is None else _principal(json.loads(raw))

    async def identify(self, headers: Any, cookies: dict[str, str]) -> Principal | None:
        key = _bearer(headers)
        if key:
            return await self.from_key(key)
        session = cookies.get(COOKIE)
        return await self.from_session(session) if session else None

    # --- key management (admin endpoints and `ccpulse keys`) ---
    async def create_key(self, name: str, role: Role) -> tuple[str, str]:
        key = new_key()
        key_id = secrets.token_hex(6)
        record = {"id": key_id, "name": name, "role": role.name, "created": int(time.time())}
        await self.redis.hset(KEYS, key_hash(key), json.dumps(record))
        return key_id, key

    async def list_keys(self) -> list[dict[str, Any]]:
        rows = await self.redis.hgetall(KEYS)
        return sorted((json.loads(v) for v in rows.values()), key=lambda r: r["created"])

    async def revoke(self, key_id: str) -> bool:
        for digest, raw in (await self.redis.hgetall(KEYS)).items():
            if json.loads(raw)["id"] == key_id:
                await self.redis.hdel(KEYS, digest)
                return True
        return False


def _bearer(headers: Any) -> str | None:
    value = headers.get("authorization", "")
    if value.lower().startswith("bearer "):
        return str(value[7:].strip()) or None
    key = headers.get("x-api-key")
    return str(key) if key else None


def _dump(p: Principal) -> str:
    return json.dumps({"id": p.key_id, "name": p.name, "role": p.role.name})


def _principal(data: dict[str, str]) -> Principal:
    return Principal(data["id"], data["name"], Role[data["role"]])


def require(role: Role) -> Any:
    """A dependency: 401 without valid credentials, 403 when the role is too low."""

    async def check(request: Request) -> Principal:
        auth: Authenticator = request.app.state.api.auth
        if not auth.enabled:
            return ANONYMOUS_ADMIN
        principal = await auth.identify(request.headers, dict(request.cookies))
        if principal is None:
            raise HTTPException(
                401,
                "an API key (Authorization: Bearer ...) or a session is required",
                headers={"WWW-Authenticate": "Bearer"},
            )
        if principal.role < role:
            raise HTTPException(
                403, f"this needs the {role.name} role; the key has {principal.role.name}"
            )
        return principal

    return check


async def websocket_principal(websocket: WebSocket) -> Principal | None:
    """Cookie or single-use ticket; and the Origin must be this host (no cross-site sockets)."""
    auth: Authenticator = websocket.app.state.api.auth
    origin = websocket.headers.get("origin")
    host = websocket.headers.get("host", "")
    if origin is not None and origin.split("://", 1)[-1] != host:
        return None
    if not auth.enabled:
        return ANONYMOUS_ADMIN
    ticket = websocket.query_params.get("ticket")
    if ticket:
        return await auth.redeem_ticket(ticket)
    principal = await auth.identify(websocket.headers, dict(websocket.cookies))
    return principal if principal is not None and principal.role >= Role.viewer else None
