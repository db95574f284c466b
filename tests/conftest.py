"""Shared fixtures: real embedded broker and Redis, and the three processes as real servers.

Pipeline tests get a broker and a Redis of their own (each starts in well under a second), so
no test sees another's events or offsets.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ccpulse.stack import EmbeddedBroker, EmbeddedRedis
from services.keys import ALL_TOPICS
from tests.harness import Pipeline
from tests.stackfixtures import (  # noqa: F401
    clean_cluster,
    clean_redis,
    embedded_broker,
    embedded_redis,
    ingest,
    redis_cluster,
)

PARTITIONS = 6


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker(tmp_path / "broker") as b:
        b.create_topics(ALL_TOPICS, PARTITIONS, {"retention.ms": str(7 * 86400 * 1000)})
        yield b


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    with EmbeddedRedis(tmp_path / "redis", persistent=True) as r:
        yield r


PipelineFactory = Callable[..., Pipeline]


@pytest.fixture
def pipeline_factory(
    broker: EmbeddedBroker, redis_server: EmbeddedRedis, tmp_path: Path
) -> Iterator[PipelineFactory]:
    """Start the three processes with extra `CCPULSE_*` settings; stopped after the test."""
    started: list[Pipeline] = []

    def make(extra_env: dict[str, str] | None = None) -> Pipeline:
        p = Pipeline(broker.bootstrap, redis_server.url, tmp_path, extra_env=extra_env or {})
        started.append(p)
        p.start()
        return p

    try:
        yield make
    finally:
        for p in started:
            p.stop()
            for child in p.children.values():
                if child.process is not None and child.process.returncode not in (0, -15, None):
                    print(f"--- {child.name} log ---\n{child.log_tail()}")


@pytest.fixture
def pipeline(pipeline_factory: PipelineFactory) -> Pipeline:
    return pipeline_factory()
