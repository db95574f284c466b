"""`python -m api` (and `ccpulse api`): serve REST, websocket, metrics and the wallboard on
CCPULSE_API_PORT."""

from __future__ import annotations

from services import logs
from services.serving import serve
from services.settings import Settings, load_settings

from .app import create_app


def main(settings: Settings) -> None:
    serve(create_app(settings), settings, settings.api_host, settings.api_port)


if __name__ == "__main__":
    settings = load_settings()
    logs.configure(settings.log_level, settings.log_format)
    main(settings)
