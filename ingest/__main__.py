"""`python -m ingest`: serve the webhook endpoints on CCPULSE_INGEST_PORT."""

from __future__ import annotations

import logging

import uvicorn

from services.settings import load_settings

from .app import create_app


def main() -> None:
    settings = load_settings()  # a refusal names the settings, never their values
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(name)s %(message)s")
    uvicorn.run(
        create_app(settings),
        host=settings.ingest_host,
        port=settings.ingest_port,
        log_level="warning",
        access_log=False,
        timeout_keep_alive=30,
    )


if __name__ == "__main__":
    main()
