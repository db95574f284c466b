"""`python -m ingest`: serve the webhook endpoints on CCPULSE_INGEST_PORT."""

from __future__ import annotations

import logging

from services.serving import serve
from services.settings import load_settings

from .app import create_app
from .webhooks import ConfigError


def main() -> None:
    settings = load_settings()  # a refusal names the settings, never their values
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(name)s %(message)s")
    try:
        app = create_app(settings)
    except ConfigError as exc:
        logging.getLogger("ccpulse.ingest").error("refusing to start: %s", exc)
        raise SystemExit(2) from exc
    serve(app, settings, settings.ingest_host, settings.ingest_port)


if __name__ == "__main__":
    main()
