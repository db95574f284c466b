"""`WS /ws/wallboard`: a snapshot first, then the latest state at most once per interval.

After the snapshot each state comes as a `patch` from the state this client holds (the numbered
`base`), so a screen receives what changed, not the ~20 kB document every second; a client that
missed a state (its mailbox kept only the newest) gets a patch computed for it from the state it
has. `?updates=full` asks for every state whole (`update` messages), as before patches existed.
"""

from __future__ import annotations

import json
import time
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from redis.exceptions import RedisError

from ..auth import Principal, websocket_principal
from ..broadcaster import Frame, full_message, patch_message
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
    whole = websocket.query_params.get("updates") == "full"
    try:
        held = await _first_messages(websocket, state)
        checked = time.monotonic()
        while True:
            message = await box.take()
            if time.monotonic() - checked >= RECHECK_S:
                if not await _still_allowed(state, principal):
                    await websocket.close(code=1008, reason="access revoked")
                    return
                checked = time.monotonic()
            if isinstance(message, Frame):
                text, held = _encode(message, held, whole), (message.seq, message.state)
                await websocket.send_text(text)
            else:
                await websocket.send_text(message)
    except WebSocketDisconnect:
        pass
    finally:
        broadcaster.leave(box)


Held = tuple[int, dict[str, Any]]  # the state a client has: (seq, state)


async def _first_messages(websocket: WebSocket, state: Any) -> Held | None:
    """The snapshot (numbered), then the firing alerts; "unavailable" when Redis cannot say."""
    held: Held | None = None
    try:
        frame = await wallboard_frame(state.reader, state.clock.now())
        seq = state.broadcaster.number()
        await websocket.send_text(full_message("snapshot", seq, frame))
        held = (seq, frame)
        alerts = state.alerts  # the alerter: firing alerts, when there are any
        if alerts is not None and (message := await alerts.current_message()):
            await websocket.send_text(message)
    except (RedisError, OSError):
        await websocket.send_text(json.dumps({"type": "unavailable"}))
    return held


def _encode(frame: Frame, held: Held | None, whole: bool) -> str:
    """The message that brings this client from the state it holds to `frame`."""
    if whole:
        return frame.full
    if held is None:  # its snapshot could not be read: start it over
        return full_message("snapshot", frame.seq, frame.state)
    if frame.patch is not None and frame.base == held[0]:
        return frame.patch  # encoded once for every client that kept up
    return patch_message(frame.seq, held[0], held[1], frame.state)


async def _still_allowed(state: Any, principal: Principal) -> bool:
    """Revocation reaches open sockets too; while Redis cannot answer, the socket stays (it
    carries only "unavailable" then) and the next check decides."""
    if not state.auth.enabled:
        return True
    try:
        return bool(await state.auth.still_valid(principal))
    except (RedisError, OSError):
        return True
