"""`python -m api` (and `ccpulse api`): serve REST, websocket, metrics and the wallboard on
CCPULSE_API_PORT."""

from __future__ import annotations

from services import logs, tracing
from services.serving import serve
from services.settings import Settings, load_settings

from .app import create_app


def main(settings: Settings) -> None:
    tracing.configure("api", settings.otel_endpoint)
    try:
        serve(create_app(settings), settings, settings.api_host, settings.api_port)
    finally:
        tracing.shutdown()


if __name__ == "__main__":
    settings = load_settings()
    logs.configure(settings.log_level, settings.log_format)
    main(settings)
