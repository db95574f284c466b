"""`python -m api`: serve REST, websocket, metrics and the wallboard on CCPULSE_API_PORT."""

from __future__ import annotations

import logging

import uvicorn

from services.settings import load_settings

from .app import create_app


def main() -> None:
    settings = load_settings()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(name)s %(message)s")
    uvicorn.run(
        create_app(settings),
        host=settings.api_host,
        port=settings.api_port,
        log_level="warning",
        access_log=False,
    )


if __name__ == "__main__":
    main()
