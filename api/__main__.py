"""`python -m api` (and `ccpulse api`): serve REST, websocket, metrics and the wallboard on
CCPULSE_API_PORT."""

from __future__ import annotations

import gc

from services import logs, tracing
from services.serving import serve
from services.settings import Settings, load_settings

from .app import create_app

# The reads keep what they read between requests (api/window_sums.py, log_cache.py, the shared
# documents: hundreds of thousands of objects) and build documents of hundreds of dicts: with
# CPython's default thresholds (700, 10, 10) a full collection re-walked them all, pausing every
# request for up to 130 ms (measured on the bench state of 24 partitions and 500 agents).
# Collect the young generation every 50,000 allocations, as the aggregator does.
GC_THRESHOLDS = (50_000, 20, 100)


def main(settings: Settings) -> None:
    tracing.configure("api", settings.otel_endpoint)
    app = create_app(settings)
    gc.freeze()  # what was built at start is never collected
    gc.set_threshold(*GC_THRESHOLDS)
    try:
        serve(app, settings, settings.api_host, settings.api_port)
    finally:
        tracing.shutdown()


if __name__ == "__main__":
    settings = load_settings()
    logs.configure(settings.log_level, settings.log_format)
    main(settings)
