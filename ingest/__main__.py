"""`python -m ingest` (and `ccpulse ingest`): serve the webhook endpoints on CCPULSE_INGEST_PORT."""

from __future__ import annotations

import logging

from services import logs, tracing
from services.serving import serve
from services.settings import Settings, load_settings

from .app import create_app
from .webhooks import ConfigError


def main(settings: Settings) -> None:
    """Serve until SIGTERM; raises ConfigError when a source's settings cannot work."""
    tracing.configure("ingest", settings.otel_endpoint)
    try:
        serve(create_app(settings), settings, settings.ingest_host, settings.ingest_port)
    finally:
        tracing.shutdown()


if __name__ == "__main__":
    settings = load_settings()  # a refusal names the settings, never their values
    logs.configure(settings.log_level, settings.log_format)
    try:
        main(settings)
    except ConfigError as exc:
        logging.getLogger("ccpulse.ingest").error("refusing to start: %s", exc)
        raise SystemExit(2) from exc
