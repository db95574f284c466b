"""Session-wide embedded broker and Redis for integration and e2e tests (conftest imports these).

One broker and one Redis per session: starting them costs a fraction of a second, but consumer
groups and topic creation are faster on a warm broker. Tests isolate themselves by flushing Redis
(`clean_redis`) and by using their own consumer group ids.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from services.keys import ALL_TOPICS
from services.stack import EmbeddedBroker, EmbeddedRedis

TEST_PARTITIONS = 6
TEST_RETENTION_MS = 7 * 24 * 3600 * 1000


@pytest.fixture(scope="session")
def embedded_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    """A started Tansu broker with every ccpulse topic created (6 partitions)."""
    with EmbeddedBroker(tmp_path_factory.mktemp("broker")) as broker:
        broker.create_topics(ALL_TOPICS, TEST_PARTITIONS, {"retention.ms": str(TEST_RETENTION_MS)})
        yield broker


@pytest.fixture(scope="session")
def embedded_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    """A fresh, non-persistent redis-server for the whole session."""
    with EmbeddedRedis(tmp_path_factory.mktemp("redis"), persistent=False) as redis:
        yield redis


def flush_redis(redis: EmbeddedRedis) -> None:
    """FLUSHALL over a raw socket, so sync and async tests can both call it."""
    redis.flushall()


@pytest.fixture
def clean_redis(embedded_redis: EmbeddedRedis) -> EmbeddedRedis:
    """The session Redis, emptied before this test; use `.url` for clients."""
    flush_redis(embedded_redis)
    return embedded_redis
