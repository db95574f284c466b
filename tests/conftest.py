"""Shared fixtures: real embedded broker and Redis, and the three processes as real servers.

Pipeline tests get a broker and a Redis of their own (each starts in well under a second), so
no test sees another's events or offsets.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from services.keys import ALL_TOPICS
from services.stack import EmbeddedBroker, EmbeddedRedis
from tests.harness import Pipeline
from tests.stackfixtures import clean_redis, embedded_broker, embedded_redis  # noqa: F401

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


@pytest.fixture
def pipeline(
    broker: EmbeddedBroker, redis_server: EmbeddedRedis, tmp_path: Path
) -> Iterator[Pipeline]:
    p = Pipeline(broker.bootstrap, redis_server.url, tmp_path)
    p.start()
    try:
        yield p
    finally:
        p.stop()
        for child in p.children.values():
            if child.process is not None and child.process.returncode not in (0, -15, None):
                print(f"--- {child.name} log ---\n{child.log_tail()}")
