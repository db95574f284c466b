"""`WS /ws/wallboard`: a snapshot first, then the latest state at most once per interval."""

from __future__ import annotations

import json

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from redis.exceptions import RedisError

from ..auth import websocket_principal
from ..live import resolve_window
from ..snapshot import build

router = APIRouter()


@router.websocket("/ws/wallboard")
async def wallboard(websocket: WebSocket) -> None:
    state = websocket.app.state.api
    if await websocket_principal(websocket) is None:
        await websocket.close(code=1008, reason="sign in (cookie) or a ticket, from this origin")
        return
    await websocket.accept()
    broadcaster = state.broadcaster
    box = broadcaster.join()
    try:
        now = state.clock.now()
        try:
            data = await build(state.reader, resolve_window("15m", now, state.settings), now)
            await websocket.send_text(json.dumps({"type": "snapshot", "data": data}))
            alerts = state.extras.get("alerts")  # the alerter: firing alerts, when there are any
            if alerts is not None and (message := await alerts.current_message()):
                await websocket.send_text(message)
        except (RedisError, OSError):
            await websocket.send_text(json.dumps({"type": "unavailable"}))
        while True:
            await websocket.send_text(await box.take())
    except WebSocketDisconnect:
        pass
    finally:
        broadcaster.leave(box)
