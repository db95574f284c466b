"""The ingest HTTP app: webhooks in, contract events out to Kafka."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from services.settings import Settings

from . import routes, webhooks
from .exposure import Exposure
from .publisher import Publisher
from .state import IngestState


def create_app(settings: Settings) -> FastAPI:
    webhooks.check_public_url(settings)
    state = IngestState(settings, Publisher(settings))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await state.publisher.close()

    app = FastAPI(title="ccpulse ingest", version="0.1.0", lifespan=lifespan)
    app.state.ingest = state
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
