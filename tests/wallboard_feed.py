"""A test's client of `WS /ws/wallboard`: rebuilds each state from the snapshot and the patches.

Written from the protocol's description (api/documents.py: PatchMessage), not from the api's
code, so a test that compares its states with full documents checks the api's patches too.
`Feed.next()` answers each state as the full message would have carried it.
"""

from __future__ import annotations

import asyncio
import copy
import json
from typing import Any

from websockets.asyncio.client import ClientConnection


class Gap(AssertionError):
    """A patch for another state than the one held (a real page would reconnect)."""


def apply_patch(target: dict[str, Any], changes: dict[str, Any], removed: list[list[str]]) -> None:
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            apply_patch(target[key], value, [])
        else:
            target[key] = copy.deepcopy(value)
    for path in removed:
        node: Any = target
        for key in path[:-1]:
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.pop(path[-1], None)


class Feed:
    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.seq: int | None = None
        self.frame: dict[str, Any] | None = None
        self.bytes = 0  # message text received (before any compression on the wire)
        self.kinds: list[str] = []  # each message's type, in order
        self.bases: list[int] = []  # each patch's base

    async def next(self, wait_s: float = 10) -> dict[str, Any]:
        """The next message; figures as `{"type": snapshot|update, "seq", "data", "today"}`."""
        text = await asyncio.wait_for(self.ws.recv(), wait_s)
        self.bytes += len(text if isinstance(text, bytes) else text.encode())
        message: dict[str, Any] = json.loads(text)
        kind = message.get("type")
        self.kinds.append(str(kind))
        if kind in ("snapshot", "update"):
            self.frame = {"data": message["data"], "today": message["today"]}
        elif kind == "patch":
            if self.frame is None or message["base"] != self.seq:
                raise Gap(f"patch from {message['base']}, holding {self.seq}")
            apply_patch(self.frame, message["set"], message.get("unset", []))
            self.bases.append(message["base"])
        else:
            return message
        self.seq = message["seq"]
        kind = "snapshot" if kind == "snapshot" else "update"
        return {"type": kind, "seq": self.seq, **copy.deepcopy(self.frame)}
