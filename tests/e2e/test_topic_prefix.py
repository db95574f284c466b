"""Two installations on one Kafka cluster and one Redis: CCPULSE_KAFKA_TOPIC_PREFIX keeps their
topics apart, CCPULSE_REDIS_KEY_PREFIX their keys.

The three processes run with a prefix against the real embedded broker, which also holds the
unprefixed topics of "another installation": every event lands in and is counted from the
prefixed topics, and the others stay empty. With both installations running on one broker and
one real Redis, each counts exactly its own events and writes only keys under its own prefix.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from aiokafka import TopicPartition

from aggregator import topic_reading
from ccpulse.stack import EmbeddedBroker, EmbeddedRedis
from services import keys
from services.settings import DEFAULT_KEY_PREFIX, Settings
from tests.clock import clock
from tests.conftest import PARTITIONS, PipelineFactory
from tests.e2e.test_pipeline import assert_matches, corpus

PREFIX = "site-b."
KEY_PREFIX = "site-b"


def _ends(bootstrap: str, topic: str) -> int:
    tps = {TopicPartition(topic, p): 0 for p in range(PARTITIONS)}
    ends = asyncio.run(topic_reading.log_ends(Settings(kafka_bootstrap=bootstrap), tps))
    return sum(ends.values())


def test_a_prefixed_installation_uses_only_its_own_topics(
    broker: EmbeddedBroker, pipeline_factory: PipelineFactory
) -> None:
    broker.create_topics([PREFIX + t for t in keys.ALL_TOPICS], PARTITIONS, {})
    pipeline = pipeline_factory(
        {"CCPULSE_KAFKA_TOPIC_PREFIX": PREFIX, "CCPULSE_CONSUMER_GROUP": "ccpulse-site-b"}
    )
    events = corpus(contacts=40, seed=19, hours=1)
    pipeline.post(events)
    pipeline.wait_applied(len(events))
    assert_matches(pipeline.live(**{"from": clock.now() - 2 * 3600, "to": clock.now()}), events)
    assert _ends(broker.bootstrap, PREFIX + keys.TOPIC_EVENTS) == len(events)
    assert _ends(broker.bootstrap, keys.TOPIC_EVENTS) == 0


def test_two_installations_share_one_broker_and_one_redis(
    broker: EmbeddedBroker,
    redis_server: EmbeddedRedis,
    pipeline_factory: PipelineFactory,
    tmp_path: Path,
) -> None:
    broker.create_topics([PREFIX + t for t in keys.ALL_TOPICS], PARTITIONS, {})
    site_a = pipeline_factory()
    (tmp_path / "site-b").mkdir()
    site_b = pipeline_factory(
        {
            "CCPULSE_KAFKA_TOPIC_PREFIX": PREFIX,
            "CCPULSE_REDIS_KEY_PREFIX": KEY_PREFIX,
            "CCPULSE_CONSUMER_GROUP": "ccpulse-site-b",
            "CCPULSE_DATA_DIR": str(tmp_path / "site-b"),
            "CCPULSE_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'site-b' / 'history.db'}",
        }
    )
    events_a = corpus(contacts=30, seed=23, hours=1)
    events_b = corpus(contacts=45, seed=29, hours=1)
    site_a.post(events_a)
    site_b.post(events_b)
    site_a.wait_applied(len(events_a))
    site_b.wait_applied(len(events_b))
    span = {"from": clock.now() - 2 * 3600, "to": clock.now()}
    assert_matches(site_a.live(**span), events_a)
    assert_matches(site_b.live(**span), events_b)
    names = [name.decode() for name in redis_server.client().scan_iter(count=1000)]
    ours = [n for n in names if n.startswith(KEY_PREFIX + ":")]
    theirs = [n for n in names if n.startswith(DEFAULT_KEY_PREFIX + ":")]
    assert ours and theirs
    assert sorted(set(names) - set(ours) - set(theirs)) == []
    # Each installation's state is whole under its prefix: the same partition count recorded,
    # each with its own offsets, fact sheets and counters.
    for prefix in (KEY_PREFIX, DEFAULT_KEY_PREFIX):
        assert f"{prefix}:partitions" in names
        assert any(n.startswith(f"{prefix}:{keys.partition_tag(0)}:c:m:") for n in names)
