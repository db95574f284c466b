"""The ingest HTTP app: webhooks in, contract events out to Kafka."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from services.settings import Settings

from . import routes, webhooks
from .exposure import Exposure
from .limits import RateLimiter, source_of
from .publisher import Publisher
from .state import IngestState


def create_app(settings: Settings) -> FastAPI:
    state = IngestState(settings, Publisher(settings))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await state.publisher.close()

    app = FastAPI(title="ccpulse ingest", version="0.1.0", lifespan=lifespan)
    app.state.ingest = state
    limiter = RateLimiter(settings.ingest_rate_per_second, settings.ingest_burst)

    @app.middleware("http")
    async def rate_limit(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        if request.method == "POST":
            client = request.client.host if request.client else None
            source = source_of(request.url.path, request.headers.get("authorization"), client)
            wait = limiter.take(source)
            if wait > 0:
                state.metrics.refused.labels("rate_limited").inc()
                retry = str(max(1, math.ceil(wait)))
                return JSONResponse({"detail": f"rate limit for {source.split(':')[0]} exceeded"},
                                    status_code=429, headers={"Retry-After": retry})  # fmt: skip
        return await call_next(request)

    app.include_router(routes.router)
    app.include_router(webhooks.router)
    app.add_middleware(
        Exposure,
        docs=settings.docs_mode(),
        metrics=settings.ingest_metrics_mode(),
        authorised=state.authorised,
    )

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    async def readyz(request: Request) -> JSONResponse:
        ok = await state.publisher.check()
        return JSONResponse({"broker": ok}, status_code=200 if ok else 503)

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app
