"""Browser fixtures: Debian's chromium driven by Playwright, a real Redis and the real api.

`live_api` runs `python -m api` as a child process (killed by PID, restartable on the same port)
against the session's real redis-server; `feed` writes counters straight into Redis in the
aggregator's layout (services/keys.py) and publishes the change notice, which is all a UI test
needs. `tests/browser/test_pipeline_browser.py` drives the whole pipeline instead.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from ccpulse.stack import EmbeddedRedis
from services import keys
from tests.clock import OFFSET_S, clock
from tests.harness import ROOT, Child, free_port, migrate, wait_until

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = ROOT / "tests" / "artifacts"
DIST = ROOT / "web" / "dist"
TIMEZONE = "Europe/Paris"


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Per module: Playwright's sync API keeps an event loop running while it is started, which
    would break every later test that runs asyncio itself."""
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (apt-get install -y chromium)")
    if not (DIST / "index.html").exists():
        pytest.fail("web/dist is not built: run `make setup` (cd web && npm ci && npm run build)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, timeout=30_000
        )
        try:
            yield chromium
        finally:
            chromium.close()


class LiveApi:
    """The api as a real server on loopback, with a viewer and an admin key (auth on)."""

    def __init__(self, redis_url: str, workdir: Path, extra_env: dict[str, str]) -> None:
        self.port = free_port()
        self.viewer_key = "view-" + secrets.token_urlsafe(16)
        self.admin_key = "admin-" + secrets.token_urlsafe(16)
        env = {k: v for k, v in os.environ.items() if not k.startswith("CCPULSE_")}
        env.update(
            CCPULSE_REDIS_URL=redis_url,
            CCPULSE_API_HOST="127.0.0.1",
            CCPULSE_API_PORT=str(self.port),
            CCPULSE_INGEST_HOST="127.0.0.1",
            CCPULSE_DATA_DIR=str(workdir),
            CCPULSE_DATABASE_URL=f"sqlite+aiosqlite:///{workdir}/history.db",
            CCPULSE_WS_MIN_INTERVAL_SECONDS="0.2",
            CCPULSE_CLOCK_OFFSET_SECONDS=str(OFFSET_S),
            CCPULSE_TIMEZONE=TIMEZONE,
            CCPULSE_VIEWER_KEY=self.viewer_key,
            CCPULSE_ADMIN_KEY=self.admin_key,
            **extra_env,
        )
        self.child = Child("api", "api", env, workdir / "api.log")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        migrate(self.child.env, Path(self.child.env["CCPULSE_DATA_DIR"]))
        self.child.start()
        wait_until(
            lambda: httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200, 30, "api"
        )

    def stop(self) -> None:
        self.child.stop()

    def pause(self) -> None:
        import signal

        self.child.signal(signal.SIGSTOP)

    def resume(self) -> None:
        import signal

        self.child.signal(signal.SIGCONT)

    def get(self, path: str, **params: Any) -> Any:
        response = httpx.get(
            self.url + path,
            params=params,
            headers={"Authorization": f"Bearer {self.admin_key}"},
            timeout=10,
        )
        assert response.status_code == 200, response.text
        return response.json()

    def login_url(self, admin: bool = False, tv: bool = False) -> str:
        key = self.admin_key if admin else self.viewer_key
        return f"{self.url}/login?key={key}" + ("&tv=1" if tv else "")


@pytest.fixture
def live_redis(clean_redis: EmbeddedRedis) -> Iterator[EmbeddedRedis]:
    """The session's real redis-server, emptied; resumed at the end if a test paused it."""
    try:
        yield clean_redis
    finally:
        clean_redis.resume()


@pytest.fixture
def live_api(live_redis: EmbeddedRedis, tmp_path: Path) -> Iterator[LiveApi]:
    api = LiveApi(live_redis.url, tmp_path, {})
    api.start()
    try:
        yield api
    finally:
        api.resume()
        api.stop()
        if api.child.process is not None and api.child.process.returncode not in (0, -15, None):
            print(f"--- api log ---\n{api.child.log_tail()}")


class Feed:
    """Writes what the aggregator would: minute counters, waiting sets, agent states (as the
    aggregator's partition 0, the only one of a one-partition topic)."""

    def __init__(self, url: str) -> None:
        self.redis = redis.Redis.from_url(url, decode_responses=True, socket_timeout=5)

    def _one_partition(self) -> None:
        self.redis.set(keys.PARTITIONS, 1, nx=True)

    def counters(self, scope: str, fields: dict[str, int], at_s: float | None = None) -> None:
        self._one_partition()
        minute = keys.bucket_start_s(at_s if at_s is not None else clock.now(), "m")
        key = keys.partition_counter_key(0, "m", minute)
        with self.redis.pipeline(transaction=True) as pipe:
            for name, value in fields.items():
                pipe.hincrby(key, keys.counter_field(scope, name), value)
            pipe.expire(key, 3 * 3600)
            pipe.zadd(keys.partition_scopes_key(0), {scope: minute}, gt=True)  # GT adds new ones
            pipe.execute()

    def waiting(self, scope: str, contact: str, since_s: float) -> None:
        self._one_partition()
        self.redis.zadd(keys.partition_waiting_key(0, scope), {contact: int(since_s * 1000)})
        self.redis.zadd(keys.partition_active_key(0, scope), {contact: int(since_s * 1000)})

    def answered(self, scope: str, contact: str) -> None:
        self.redis.zrem(keys.partition_waiting_key(0, scope), contact)

    def agent(self, name: str, state: str, since_s: float, queue: str | None = None) -> None:
        self._one_partition()
        ms = int(since_s * 1000)
        sheet: dict[str, Any] = {"agent": name, "state": {"value": state, "ms": ms, "id": "x"}}
        if queue is not None:
            sheet["queues"] = {queue: ms}
        self.redis.hset(keys.partition_agents_key(0), name, json.dumps(sheet))
        self.redis.zadd(keys.partition_agent_log_key(0, name), {f"ev-{name}-{ms}|{state}": ms})
        minute = keys.bucket_start_s(since_s, "m")
        self.redis.zadd(keys.partition_scopes_key(0), {keys.agent_scope(name): minute})

    def publish(self) -> None:
        self.redis.publish(keys.CHANGES_CHANNEL, "1")

    def close(self) -> None:
        self.redis.close()


@pytest.fixture
def feed(live_redis: EmbeddedRedis) -> Iterator[Feed]:
    f = Feed(live_redis.url)
    try:
        yield f
    finally:
        f.close()


# Playwright's clock.install() also fakes timers and `performance`; only Date moves here.
SHIFT_DATE = """(() => {
  const Real = Date;
  class Shifted extends Real {
    constructor(...args) {
      if (args.length === 0) super(Real.now() + OFFSET_MS);
      else super(...args);
    }
    static now() { return Real.now() + OFFSET_MS; }
  }
  globalThis.Date = Shifted;
})();"""


@pytest.fixture
def page_factory(browser: Any, artifacts: Path) -> Iterator[Any]:
    """New pages in fresh contexts (own cookies); console errors are collected per page."""
    contexts: list[Any] = []

    def make(width: int = 1600, height: int = 1000) -> Any:
        context = browser.new_context(
            viewport={"width": width, "height": height}, accept_downloads=True
        )
        context.set_default_timeout(15_000)
        contexts.append(context)
        if OFFSET_S:  # the page lives at the stack's instant too; timers and performance stay real
            context.add_init_script(SHIFT_DATE.replace("OFFSET_MS", str(round(OFFSET_S * 1000))))
        page = context.new_page()
        page.errors = []  # type: ignore[attr-defined]
        page.on("pageerror", lambda exc: page.errors.append(str(exc)))
        return page

    try:
        yield make
    finally:
        for context in contexts:
            context.close()
