"""`WS /ws/wallboard`: a snapshot first, then the latest state at most once per interval."""

from __future__ import annotations

import json
import time
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from redis.exceptions import RedisError

from ..auth import Principal, websocket_principal
from ..snapshot import wallboard_frame

router = APIRouter()
RECHECK_S = 2.0  # a revoked key's open socket gets at most this long (plus one refresh) more


@router.websocket("/ws/wallboard")
async def wallboard(websocket: WebSocket) -> None:
    state = websocket.app.state.api
    principal = await websocket_principal(websocket)
    if principal is None:
        await websocket.close(code=1008, reason="sign in (cookie) or a ticket, from this origin")
        return
    await websocket.accept()
    broadcaster = state.broadcaster
    box = broadcaster.join()
    try:
        try:
            frame = await wallboard_frame(state.reader, state.clock.now())
            await websocket.send_text(json.dumps({"type": "snapshot", **frame}))
            alerts = state.alerts  # the alerter: firing alerts, when there are any
            if alerts is not None and (message := await alerts.current_message()):
                await websocket.send_text(message)
        except (RedisError, OSError):
            await websocket.send_text(json.dumps({"type": "unavailable"}))
        checked = time.monotonic()
        while True:
            message = await box.take()
            if time.monotonic() - checked >= RECHECK_S:
                if not await _still_allowed(state, principal):
                    await websocket.close(code=1008, reason="access revoked")
                    return
                checked = time.monotonic()
            await websocket.send_text(message)
    except WebSocketDisconnect:
        pass
    finally:
        broadcaster.leave(box)


async def _still_allowed(state: Any, principal: Principal) -> bool:
    """Revocation reaches open sockets too; while Redis cannot answer, the socket stays (it
    carries only "unavailable" then) and the next check decides."""
    if not state.auth.enabled:
        return True
    try:
        return bool(await state.auth.still_valid(principal))
    except (RedisError, OSError):
        return True
