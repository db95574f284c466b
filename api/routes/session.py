"""Sign-in for browsers (a viewer link sets a cookie), websocket tickets, and key management."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, Field

from services import problems
from services.apikeys import Role

from ..auth import Authenticator, Principal, require
from ..documents import CreatedKey, KeyRow, SessionRow, Ticket

router = APIRouter(tags=["access"])
Viewer = Annotated[Principal, Depends(require(Role.viewer))]
Admin = Annotated[Principal, Depends(require(Role.admin))]


def _auth(request: Request) -> Authenticator:
    auth: Authenticator = request.app.state.api.auth
    return auth


ACCESS_ERRORS = problems.responses(401, 403, 503)


@router.post(
    "/api/v1/ws-ticket",
    summary="A single-use websocket ticket (30 s)",
    response_model=Ticket,
    responses=ACCESS_ERRORS,
)
async def ws_ticket(request: Request, principal: Viewer) -> dict[str, Any]:
    ticket = await _auth(request).issue_ticket(principal)
    return {"ticket": ticket, "expires_in": 30, "url": f"/ws/wallboard?ticket={ticket}"}


class NewKey(BaseModel):
    name: str = Field(min_length=1, max_length=64)
    role: Literal["viewer", "planner", "admin"]


@router.get(
    "/api/v1/keys",
    summary="API keys (never the keys themselves)",
    response_model=list[KeyRow],
    responses=ACCESS_ERRORS,
)
async def list_keys(request: Request, _: Admin) -> list[dict[str, Any]]:
    return await _auth(request).list_keys()


@router.post(
    "/api/v1/keys",
    status_code=201,
    summary="Create an API key",
    response_model=CreatedKey,
    responses=problems.responses(401, 403, 422, 503),
)
async def create_key(request: Request, body: NewKey, _: Admin) -> dict[str, Any]:
    now = request.app.state.api.clock.now()
    key_id, key = await _auth(request).create_key(body.name, Role[body.role], now)
    return {"id": key_id, "name": body.name, "role": body.role, "key": key}


@router.delete(
    "/api/v1/keys/{key_id}",
    status_code=204,
    summary="Revoke an API key and end its sessions",
    responses=problems.responses(401, 403, 404, 503),
)
async def revoke_key(request: Request, key_id: str, _: Admin) -> None:
    if not await _auth(request).revoke(key_id):
        raise HTTPException(404, f"key_id: no key {key_id}")


@router.get(
    "/api/v1/sessions",
    summary="Open browser sessions (never their cookies)",
    response_model=list[SessionRow],
    responses=ACCESS_ERRORS,
)
async def list_sessions(request: Request, _: Admin) -> list[dict[str, Any]]:
    return await _auth(request).sessions.list()


@router.delete(
    "/api/v1/sessions/{session_id}",
    status_code=204,
    summary="End a session",
    responses=problems.responses(401, 403, 404, 503),
)
async def end_session(request: Request, session_id: str, _: Admin) -> None:
    if not await _auth(request).sessions.end(session_id):
        raise HTTPException(404, f"session_id: no session {session_id}")
