"""The api: live figures over REST and websocket, Prometheus metrics, and the wallboard."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import Depends, FastAPI
from fastapi.responses import FileResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import ProcessCollector
from prometheus_client.core import GaugeMetricFamily
from redis.exceptions import RedisError

from services import problems, tracing
from services.apikeys import Role
from services.clock import Clock
from services.database import make_engine
from services.keys import ALERTS_CHANNEL
from services.logs import AccessLog
from services.settings import Settings

from . import metrics, openapi, security
from .alerts.evaluator import AlertService
from .auth import require
from .broadcaster import Broadcaster
from .deps import ApiState
from .planning.baseline import HistoryBaseline
from .planning.reader import HistoryReader
from .redis_connect import connect, connect_replica
from .routes import alerts as alert_routes
from .routes import config, health, history_imports, live, live_intervals, session, sign_in, ws
from .routes import contacts as contact_routes
from .routes import drilldown as drilldown_routes
from .routes import planning as planning_routes
from .routes import worklist as worklist_routes
from .snapshot import wallboard_frame

WEB_ROOT = Path(__file__).resolve().parent.parent / "web"


def create_app(settings: Settings, clock: Clock | None = None) -> FastAPI:
    redis = connect(settings)
    replica = connect_replica(settings)
    state = ApiState(settings, redis, clock or settings.clock(), reads=replica)

    async def snapshot() -> dict[str, object]:
        return await wallboard_frame(state.reader, state.clock.now())

    state.broadcaster = Broadcaster(
        redis, snapshot, settings.ws_min_interval_seconds, alerts_channel=ALERTS_CHANNEL
    )
    engine = make_engine(settings)
    history = HistoryReader(engine, settings, state.reader)
    state.history = history
    alerter = AlertService(
        redis, state.reader, settings, state.clock, baseline=HistoryBaseline(history)
    )
    state.alerts = alerter

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        assert state.broadcaster is not None
        await state.broadcaster.start()
        await alerter.start()
        yield
        await alerter.stop()
        await state.broadcaster.stop()
        await engine.dispose()
        await redis.aclose()
        if replica is not None:
            await replica.aclose()

    app = FastAPI(
        title="ccpulse api", version="0.1.0", lifespan=lifespan, **security.docs_urls(settings)
    )
    app.state.api = state
    problems.install(app)
    openapi.install(app)
    csp = security.content_security_policy(security.inline_script_hashes(WEB_ROOT / "basic.html"))
    app.add_middleware(security.SecurityHeaders, csp=csp)
    security.add_docs(app, settings)
    app.add_middleware(AccessLog, enabled=settings.access_log)  # outermost: sees every request
    tracing.instrument(app)
    for router in (health.router, ws.router, session.router, sign_in.router):
        app.include_router(router)
    viewer = (live.router, config.router, live_intervals.router, alert_routes.router)
    for router, role in [(r, Role.viewer) for r in viewer] + [
        (planning_routes.router, Role.planner),
        (history_imports.router, Role.planner),
        (contact_routes.router, Role.planner),
        (drilldown_routes.router, Role[settings.contact_lists_role.value]),
        (worklist_routes.router, Role[settings.contact_lists_role.value]),
    ]:
        app.include_router(
            router,
            dependencies=[Depends(require(role))],
            responses=problems.responses(401, 403, 503),  # no key, too low a role, no key store
        )
    _metrics_route(app, state)
    _web(app)
    return app


def _metrics_route(app: FastAPI, state: ApiState) -> None:
    # process_* of this replica (RSS, CPU, open fds): registered nowhere, only read per scrape.
    process = ProcessCollector(registry=None)

    @app.get("/metrics", include_in_schema=False, dependencies=[Depends(require(Role.viewer))])
    async def prometheus() -> Response:
        assert state.broadcaster is not None
        clients = GaugeMetricFamily("ccpulse_websocket_clients", "Connected wallboard clients")
        clients.add_metric([], len(state.broadcaster.clients))
        shed = metrics.websocket_shed(state.broadcaster)
        try:
            extra = [clients, shed, *process.collect()]
            body = await metrics.render(state.reader, state.clock.now(), extra)
        except (RedisError, OSError):
            return Response("live state unavailable\n", status_code=503)
        return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")


def _web(app: FastAPI) -> None:
    """Serve the built wallboard (web/dist) when present, else the plain first page."""
    dist = WEB_ROOT / "dist"

    @app.get("/basic", include_in_schema=False)
    async def basic() -> FileResponse:
        """The dependency-free wallboard, for screens too old or small for the built one."""
        return FileResponse(WEB_ROOT / "basic.html")

    if (dist / "index.html").exists():
        app.mount("/", StaticFiles(directory=dist, html=True), name="web")
        return

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(WEB_ROOT / "basic.html")
