"""`ccpulse ingest|aggregator|api`, the containers' entry point, run the same processes as
`python -m ...`: the same refusal of bad settings, and the api serving on its port."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from ccpulse.processes import terminate
from ccpulse.stack import EmbeddedRedis
from tests.harness import ROOT, free_port, wait_until


@pytest.mark.parametrize("process", ["api", "ingest", "aggregator"])
def test_a_refusal_names_the_setting_and_never_prints_a_secret(process: str) -> None:
    admin = "admin-" + "k" * 40
    env = {
        "PATH": os.environ["PATH"],
        "CCPULSE_API_HOST": "0.0.0.0",
        "CCPULSE_HASH_KEY": "h" * 40,
        "CCPULSE_ADMIN_KEY": admin,
        "CCPULSE_INGEST_TOKENS": '["tiny-token"]',
    }
    argv = [sys.executable, "-m", "ccpulse", process]
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and "CCPULSE_INGEST_TOKENS[1] is 10 characters" in done.stderr
    assert "Traceback" not in done.stderr
    for secret in (admin, "h" * 40, "tiny-token"):
        assert secret not in done.stderr + done.stdout


def test_ccpulse_api_serves(clean_redis: EmbeddedRedis, tmp_path: Path) -> None:
    port = free_port()
    env = {
        "PATH": os.environ["PATH"],
        "CCPULSE_REDIS_URL": clean_redis.url,
        "CCPULSE_DATA_DIR": str(tmp_path),
        "CCPULSE_API_PORT": str(port),
        "CCPULSE_AUTH": "off",
    }
    log_path = tmp_path / "api.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "ccpulse", "api"], cwd=ROOT, env=env, stdout=log, stderr=log
        )
    try:
        url = f"http://127.0.0.1:{port}/healthz"
        wait_until(lambda: httpx.get(url).status_code == 200, 60, log_path.name)
    finally:
        terminate(proc)
