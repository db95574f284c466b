"""Shared fixtures: a real embedded broker and Redis per test, and the three processes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness import Pipeline
from tests.realstack import Broker, RedisServer


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    with Broker(tmp_path / "broker.log") as b:
        yield b


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    with RedisServer(tmp_path / "redis") as r:
        yield r


@pytest.fixture
def pipeline(broker: Broker, redis_server: RedisServer, tmp_path: Path) -> Iterator[Pipeline]:
    p = Pipeline(broker.bootstrap, redis_server.url, tmp_path)
    p.start()
    try:
        yield p
    finally:
        p.stop()
        for child in p.children.values():
            if child.process is not None and child.process.returncode not in (0, -15, None):
                print(f"--- {child.name} log ---\n{child.log_tail()}")
