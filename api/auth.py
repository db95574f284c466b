"""Who is calling: API keys (header), sessions (cookie, for the wallboard) and websocket tickets.

Keys live in Redis as hashes only; the first admin key can come from `CCPULSE_ADMIN_KEY`. A TV
opens `/login?key=...` once with a viewer key and keeps a cookie, so no key sits in page URLs or
in websocket URLs (which proxies log). Revoking a key ends its sessions and unspent tickets.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, replace
from typing import Annotated, Any

from fastapi import HTTPException, Request, Security, WebSocket
from fastapi.security import APIKeyCookie, APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from redis.asyncio import Redis
from redis.exceptions import RedisError

from services import keys
from services.apikeys import Role, key_hash, new_key
from services.clock import Clock
from services.settings import Settings

from .sessions import SessionStore, cookie_hash

COOKIE = "ccpulse_session"
TICKET_TTL_S = 30

# The ways to prove who calls, as OpenAPI security schemes (/docs' Authorize, generated clients).
# They only document: `require` reads the same headers and cookie itself, any one of them will do.
BEARER = HTTPBearer(
    scheme_name="bearer", auto_error=False, description="An API key: `Authorization: Bearer <key>`"
)
API_KEY = APIKeyHeader(
    name="X-API-Key", scheme_name="apiKey", auto_error=False, description="An API key"
)
SESSION = APIKeyCookie(
    name=COOKIE,
    scheme_name="session",
    auto_error=False,
    description="A browser session, opened by `/login?key=<viewer key>`",
)


@dataclass(frozen=True, slots=True)
class Principal:
    key_id: str
    name: str
    role: Role
    via: str = ""  # "key:<sha256 of the key>" or "session:<sha256 of the cookie>"


ANONYMOUS_ADMIN = Principal("auth-off", "auth off (loopback only)", Role.admin)


class Authenticator:
    def __init__(self, redis: Redis, settings: Settings, clock: Clock | None = None) -> None:
        self.redis = redis
        self.enabled = settings.auth != "off"
        self.sessions = SessionStore(redis, settings, clock or settings.clock())
        self.bootstrap: dict[str, Principal] = {}
        if settings.admin_key is not None:
            admin = key_hash(settings.admin_key.get_secret_value())
            self.bootstrap[admin] = Principal("bootstrap-admin", "CCPULSE_ADMIN_KEY", Role.admin)
        if settings.viewer_key is not None:
            viewer = key_hash(settings.viewer_key.get_secret_value())
            self.bootstrap[viewer] = Principal(
                "bootstrap-viewer", "CCPULSE_VIEWER_KEY", Role.viewer
            )
        if settings.planner_key is not None:
            planner = key_hash(settings.planner_key.get_secret_value())
            self.bootstrap[planner] = Principal(
                "bootstrap-planner", "CCPULSE_PLANNER_KEY", Role.planner
            )

    async def from_key(self, key: str) -> Principal | None:
        return await self.from_key_hash(key_hash(key))

    async def from_key_hash(self, digest: str) -> Principal | None:
        """The key's principal, unless it is unknown or revoked (bootstrap ones too)."""
        if digest in self.bootstrap:
            if await self.redis.sismember(keys.APIKEYS_REVOKED, digest):
                return None
            return replace(self.bootstrap[digest], via=f"key:{digest}")
        raw = await self.redis.hget(keys.APIKEYS, digest)
        if raw is None:
            return None
        data = json.loads(raw)
        return Principal(data["id"], data["name"], Role[data["role"]], f"key:{digest}")

    async def from_session(self, cookie: str, *, renew: bool = True) -> Principal | None:
        """A live session whose key is still valid; a revoked key's session is refused."""
        digest = cookie_hash(cookie)
        sessions = self.sessions
        record = await (sessions.touch(digest) if renew else sessions.peek(digest))
        if record is None or await self.from_key_hash(record.key_hash) is None:
            return None
        return Principal(record.key_id, record.name, Role[record.role], f"session:{digest}")

    async def open_session(self, principal: Principal) -> str:
        key_digest = principal.via.removeprefix("key:")
        return await self.sessions.open(
            principal.key_id, principal.name, principal.role.name, key_digest
        )

    async def still_valid(self, principal: Principal) -> bool:
        """Whatever the principal was proven by (a key, a session) has not been revoked since."""
        kind, _, digest = principal.via.partition(":")
        if kind == "key":
            return await self.from_key_hash(digest) is not None
        if kind == "session":
            record = await self.sessions.peek(digest)
            return record is not None and await self.from_key_hash(record.key_hash) is not None
        return False

    async def issue_ticket(self, principal: Principal) -> str:
        ticket = secrets.token_urlsafe(24)
        await self.redis.set(keys.ticket_key(ticket), _dump(principal), ex=TICKET_TTL_S)
        return ticket

    async def redeem_ticket(self, ticket: str) -> Principal | None:
        """Single use: a ticket seen in a log cannot be used again; nor one whose session ended."""
        raw = await self.redis.getdel(keys.ticket_key(ticket))
        if raw is None:
            return None
        principal = _principal(json.loads(raw))
        return principal if await self.still_valid(principal) else None

    async def identify(self, headers: Any, cookies: dict[str, str]) -> Principal | None:
        key = _bearer(headers)
        if key:
            return await self.from_key(key)
        session = cookies.get(COOKIE)
        return await self.from_session(session) if session else None

    # --- key management (admin endpoints and `ccpulse keys`) ---
    async def create_key(self, name: str, role: Role, created: float) -> tuple[str, str]:
        key = new_key()
        key_id = secrets.token_hex(6)
        record = {"id": key_id, "name": name, "role": role.name, "created": int(created)}
        await self.redis.hset(keys.APIKEYS, key_hash(key), json.dumps(record))
        return key_id, key

    async def list_keys(self) -> list[dict[str, Any]]:
        """Stored keys and the environment's bootstrap keys (unless revoked); never a key."""
        rows = await self.redis.hgetall(keys.APIKEYS)
        stored = sorted((json.loads(v) for v in rows.values()), key=lambda r: r["created"])
        boot = []
        for digest, p in self.bootstrap.items():
            if not await self.redis.sismember(keys.APIKEYS_REVOKED, digest):
                row = {"id": p.key_id, "name": p.name, "role": p.role.name, "created": None}
                boot.append({**row, "source": "environment"})
        return boot + stored

    async def revoke(self, key_id: str) -> bool:
        """Remove the key and end every session opened with it; bootstrap keys stay revoked
        across restarts (their hash is remembered in Redis) until the variable changes."""
        found = False
        for boot_hash, p in self.bootstrap.items():
            if p.key_id == key_id:
                await self.redis.sadd(keys.APIKEYS_REVOKED, boot_hash)
                found = True
        for stored_hash, raw in (await self.redis.hgetall(keys.APIKEYS)).items():
            if json.loads(raw)["id"] == key_id:
                await self.redis.hdel(keys.APIKEYS, stored_hash)
                found = True
        if found:
            await self.sessions.end_for_key(key_id)
        return found


def _bearer(headers: Any) -> str | None:
    value = headers.get("authorization", "")
    if value.lower().startswith("bearer "):
        return str(value[7:].strip()) or None
    key = headers.get("x-api-key")
    return str(key) if key else None


def _dump(p: Principal) -> str:
    return json.dumps({"id": p.key_id, "name": p.name, "role": p.role.name, "via": p.via})


def _principal(data: dict[str, str]) -> Principal:
    return Principal(data["id"], data["name"], Role[data["role"]], data.get("via", ""))


def require(role: Role) -> Any:
    """A dependency: 401 without valid credentials, 403 when the role is too low."""

    async def check(
        request: Request,
        _bearer: Annotated[HTTPAuthorizationCredentials | None, Security(BEARER)],
        _key: Annotated[str | None, Security(API_KEY)],
        _session: Annotated[str | None, Security(SESSION)],
    ) -> Principal:
        auth: Authenticator = request.app.state.api.auth
        if not auth.enabled:
            return ANONYMOUS_ADMIN
        try:
            principal = await auth.identify(request.headers, dict(request.cookies))
        except (RedisError, OSError) as exc:  # keys, revocations and sessions live there
            raise HTTPException(
                503, "access store (Redis) unavailable", headers={"Retry-After": "5"}
            ) from exc
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
    state = websocket.app.state.api
    auth: Authenticator = state.auth
    origin = websocket.headers.get("origin")
    if origin is not None and not origin_allowed(
        origin, websocket.headers.get("host", ""), state.settings.allowed_origins
    ):
        return None
    if not auth.enabled:
        return ANONYMOUS_ADMIN
    ticket = websocket.query_params.get("ticket")
    try:
        if ticket:
            return await auth.redeem_ticket(ticket)
        principal = await auth.identify(websocket.headers, dict(websocket.cookies))
    except (RedisError, OSError):
        return None  # refused for now; the page reconnects
    return principal if principal is not None and principal.role >= Role.viewer else None


def origin_allowed(origin: str, host: str, allowed: list[str]) -> bool:
    """This host (any scheme), or exactly one of CCPULSE_ALLOWED_ORIGINS (scheme://host[:port])."""
    if origin.split("://", 1)[-1] == host:
        return True
    return origin.rstrip("/").lower() in {a.rstrip("/").lower() for a in allowed}
