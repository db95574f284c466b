"""Managed Redis, against real redis-servers on loopback: rediss:// with a private CA and client
certificates, a password setting, Sentinel, and the api's read replica (docs/managed-services.md).

Every process package builds its Redis through its own shell; each is run here against the same
servers, so one that ignored a setting fails.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from subprocess import Popen

import pytest
import redis
from pydantic import SecretStr
from redis.asyncio import Redis
from redis.exceptions import AuthenticationError, ConnectionError, ResponseError

from aggregator.__main__ import connect as aggregator_connect
from api.redis_connect import connect as api_connect
from ccpulse.processes import free_port, spawn, terminate, wait_ready, write_private
from ccpulse.stack import EmbeddedRedis, redis_binary
from ingest.admin_keys import connect as ingest_connect
from services import keys
from services.settings import Settings
from tests.apiserver import VIEWER, api_settings, asgi_client, bearer
from tests.tls_certs import Pki, make_pki

PASSWORD = "managed-redis-password-0123456789abcdef"
SHELLS: dict[str, Callable[..., Redis]] = {
    "api": api_connect,
    "aggregator": aggregator_connect,
    "ingest": ingest_connect,
}

pytestmark = pytest.mark.skipif(
    shutil.which("openssl") is None or shutil.which("redis-server") is None,
    reason="needs openssl and redis-server",
)


@contextlib.contextmanager
def _server(folder: Path, *args: str, conf: str, ready: Callable[[], bool]) -> Iterator[Popen]:
    """One redis-server (or sentinel) with its secrets in a 0600 file, stopped by its PID."""
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "redis.conf"
    write_private(config, conf)
    log = folder / "redis.log"
    proc = spawn([redis_binary(), str(config), *args, "--dir", str(folder)], log)
    try:
        wait_ready(proc, ready, "redis", log, 20)
        yield proc
    finally:
        terminate(proc)


def _pings(**kwargs: object) -> Callable[[], bool]:
    def ping() -> bool:
        try:
            with redis.Redis(socket_timeout=1, **kwargs) as client:  # type: ignore[arg-type]
                return bool(client.ping())
        except (redis.RedisError, OSError):
            return False

    return ping


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Pki]]:
    """TLS only (no plain port), client certificates required, a password."""
    folder = tmp_path_factory.mktemp("tls-redis")
    pki = make_pki(folder / "pki")
    port = free_port()
    client_files = {
        "ssl": True,
        "ssl_ca_certs": str(pki.ca),
        "ssl_certfile": str(pki.client_cert),
        "ssl_keyfile": str(pki.client_key),
    }
    with _server(
        folder,
        *("--port", "0", "--tls-port", str(port), "--bind", "127.0.0.1", "--save", ""),
        *("--tls-cert-file", str(pki.server_cert), "--tls-key-file", str(pki.server_key)),
        *("--tls-ca-cert-file", str(pki.ca), "--tls-auth-clients", "yes"),
        conf=f"requirepass {PASSWORD}\n",
        ready=_pings(host="127.0.0.1", port=port, password=PASSWORD, **client_files),
    ):
        yield port, pki


def _tls_settings(port: int, pki: Pki, **extra: object) -> Settings:
    values: dict[str, object] = {
        "redis_url": f"rediss://127.0.0.1:{port}/0",
        "redis_password": SecretStr(PASSWORD),
        "redis_ssl_cafile": pki.ca,
        "redis_ssl_certfile": pki.client_cert,
        "redis_ssl_keyfile": pki.client_key,
        **extra,
    }
    return Settings(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize("process", sorted(SHELLS))
async def test_each_process_reaches_rediss_with_its_ca_client_cert_and_password(
    tls_server: tuple[int, Pki], process: str
) -> None:
    port, pki = tls_server
    client = SHELLS[process](_tls_settings(port, pki))
    try:
        assert await client.set(f"managed:{process}", "ok", ex=60)
        assert await client.get(f"managed:{process}") == b"ok"
        info = await client.info("server")
        assert int(str(info["redis_version"]).split(".")[0]) >= 7
    finally:
        await client.aclose()


async def test_the_server_is_not_trusted_without_the_ca_file(tls_server: tuple[int, Pki]) -> None:
    port, pki = tls_server
    client = api_connect(_tls_settings(port, pki, redis_ssl_cafile=None))
    try:
        with pytest.raises(ConnectionError, match=r"(?i)certificate verify failed"):
            await client.ping()
    finally:
        await client.aclose()


async def test_a_wrong_password_is_refused(tls_server: tuple[int, Pki]) -> None:
    port, pki = tls_server
    client = aggregator_connect(_tls_settings(port, pki, redis_password=SecretStr("x" * 40)))
    try:
        with pytest.raises((AuthenticationError, ResponseError)):
            await client.ping()
    finally:
        await client.aclose()


async def test_mutual_tls_refuses_a_client_without_its_certificate(
    tls_server: tuple[int, Pki],
) -> None:
    port, pki = tls_server
    settings = _tls_settings(port, pki, redis_ssl_certfile=None, redis_ssl_keyfile=None)
    client = ingest_connect(settings)
    try:
        with pytest.raises((ConnectionError, OSError)):
            await client.ping()
    finally:
        await client.aclose()


async def test_the_api_serves_live_figures_over_rediss(
    tls_server: tuple[int, Pki], tmp_path: Path
) -> None:
    port, pki = tls_server
    base = _tls_settings(port, pki)
    settings = api_settings(base.redis_url or "", tmp_path, **_managed_fields(base))
    async with asgi_client(settings) as api:
        live = await api.get("/api/v1/live", headers=bearer(VIEWER))
        assert live.status_code == 200, live.text
        ready = await api.get("/readyz")
        assert ready.json()["redis"] is True


def _managed_fields(settings: Settings) -> dict[str, object]:
    names = ("redis_password", "redis_ssl_cafile", "redis_ssl_certfile", "redis_ssl_keyfile")
    return {name: getattr(settings, name) for name in names}


async def test_the_password_setting_opens_a_url_without_one(tmp_path: Path) -> None:
    with EmbeddedRedis(tmp_path / "redis", persistent=False, password=PASSWORD) as server:
        url = f"redis://127.0.0.1:{server.port}/0"
        for connect in SHELLS.values():
            client = connect(Settings(redis_url=url, redis_password=SecretStr(PASSWORD)))
            assert await client.ping()
            await client.aclose()
        bare = api_connect(Settings(redis_url=url))
        with pytest.raises((AuthenticationError, ResponseError), match=r"(?i)noauth|authenticat"):
            await bare.ping()
        await bare.aclose()


async def test_sentinel_finds_the_primary(tmp_path: Path) -> None:
    with EmbeddedRedis(tmp_path / "primary", persistent=False, password=PASSWORD) as primary:
        port = free_port()
        conf = (
            f"port {port}\nbind 127.0.0.1\n"
            f"sentinel monitor ccpulse-main 127.0.0.1 {primary.port} 1\n"
            f"sentinel auth-pass ccpulse-main {PASSWORD}\n"
        )
        with _server(tmp_path / "sentinel", "--sentinel", conf=conf, ready=_sentinel_knows(port)):
            settings = Settings(
                redis_sentinels=[f"127.0.0.1:{port}"],
                redis_sentinel_service="ccpulse-main",
                redis_password=SecretStr(PASSWORD),
            )
            for name, connect in SHELLS.items():
                client = connect(settings)
                assert await client.set(f"via-sentinel:{name}", "1", ex=60)
                await client.aclose()
            with primary.client() as direct:
                assert sorted(direct.keys("via-sentinel:*")) == [
                    f"via-sentinel:{name}".encode() for name in sorted(SHELLS)
                ]


def _sentinel_knows(port: int) -> Callable[[], bool]:
    def ready() -> bool:
        try:
            with redis.Redis(host="127.0.0.1", port=port, socket_timeout=1) as sentinel:
                return bool(sentinel.execute_command("SENTINEL", "MASTERS"))
        except (redis.RedisError, OSError):
            return False

    return ready


async def test_the_api_reads_live_figures_from_the_replica_url(tmp_path: Path) -> None:
    """Two servers told apart by what they hold: the reader must see the replica's."""
    with (
        EmbeddedRedis(tmp_path / "primary", persistent=False, password=PASSWORD) as primary,
        EmbeddedRedis(tmp_path / "replica", persistent=False, password=PASSWORD) as replica,
    ):
        with primary.client() as p, replica.client() as r:
            p.set(keys.PARTITIONS, 2)
            r.set(keys.PARTITIONS, 5)
        settings = api_settings(
            f"redis://127.0.0.1:{primary.port}/0",
            tmp_path,
            redis_password=SecretStr(PASSWORD),
            redis_replica_url=f"redis://127.0.0.1:{replica.port}/0",
        )
        async with asgi_client(settings) as api:
            state = api._transport.app.state.api  # type: ignore[attr-defined]
            assert await state.reader.partitions() == range(5)
            assert int(await state.redis.get(keys.PARTITIONS)) == 2  # writes: the primary


def test_the_aggregator_probe_reaches_rediss_with_the_same_settings(
    tls_server: tuple[int, Pki],
) -> None:
    """deploy/healthcheck.py (the aggregator's liveness probe) builds its client from the same
    settings: reaching Redis it finds no lag report; failing, it names Redis."""
    from tests.integration.test_container_healthcheck import load_script

    probe = load_script()
    port, pki = tls_server
    reached = probe.check_aggregator(_tls_settings(port, pki), "managed-host")
    assert reached == "no lag report from a consumer on managed-host yet"
    refused = probe.check_aggregator(_tls_settings(port, pki, redis_ssl_cafile=None), "h")
    assert refused.startswith("Redis: ") and "certificate verify failed" in refused
