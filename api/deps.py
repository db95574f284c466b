"""Annotated dependencies: routes ask for what they need, the app state provides it."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from redis.asyncio import Redis

from services.clock import Clock
from services.settings import Settings

from .alerts.evaluator import AlertService
from .auth import Authenticator
from .broadcaster import Broadcaster
from .live_reader import LiveReader
from .planning.reader import HistoryReader


class ApiState:
    """Clients and services built once in create_app, shared by every request."""

    def __init__(
        self, settings: Settings, redis: Redis, clock: Clock, reads: Redis | None = None
    ) -> None:
        self.settings = settings
        self.redis = redis
        self.clock = clock
        # Live figures are only read (legacy scripts that read run on a replica): a replica may
        # serve them (CCPULSE_REDIS_REPLICA_URL); everything else writes, so uses the primary.
        self.reader = LiveReader(reads or redis, settings)
        self.broadcaster: Broadcaster | None = None
        self.auth = Authenticator(redis, settings, clock)
        self.history: HistoryReader | None = None  # None: no SQL history configured
        self.alerts: AlertService | None = None  # None: the built-in alerter is off


def get_state(request: Request) -> ApiState:
    state: ApiState = request.app.state.api
    return state


State = Annotated[ApiState, Depends(get_state)]
