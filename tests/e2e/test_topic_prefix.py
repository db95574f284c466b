"""Two installations on one Kafka cluster: CCPULSE_KAFKA_TOPIC_PREFIX keeps their topics apart.

The three processes run with a prefix against the real embedded broker, which also holds the
unprefixed topics of "another installation": every event lands in and is counted from the
prefixed topics, and the others stay empty.
"""

from __future__ import annotations

import asyncio

from aiokafka import TopicPartition

from aggregator import topic_reading
from ccpulse.stack import EmbeddedBroker
from services import keys
from services.settings import Settings
from tests.clock import clock
from tests.conftest import PARTITIONS, PipelineFactory
from tests.e2e.test_pipeline import assert_matches, corpus

PREFIX = "site-b."


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
