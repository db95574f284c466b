"""`python -m ingest` (and `ccpulse ingest`): serve the webhook endpoints on CCPULSE_INGEST_PORT."""

from __future__ import annotations

import logging

from services.serving import serve
from services.settings import Settings, load_settings

from .app import create_app
from .webhooks import ConfigError


def main(settings: Settings) -> None:
    """Serve until SIGTERM; raises ConfigError when a source's settings cannot work."""
    serve(create_app(settings), settings, settings.ingest_host, settings.ingest_port)


if __name__ == "__main__":
    settings = load_settings()  # a refusal names the settings, never their values
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(name)s %(message)s")
    try:
        main(settings)
    except ConfigError as exc:
        logging.getLogger("ccpulse.ingest").error("refusing to start: %s", exc)
        raise SystemExit(2) from exc
