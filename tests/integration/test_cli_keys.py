"""`ccpulse keys` in process against the real Redis the harness starts: the key is shown once,
stored only as its hash, listed without it, and revoked; an unknown id is refused by name."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import redis
from typer.testing import CliRunner

from ccpulse.cli import app
from ccpulse.stack import EmbeddedRedis
from services.apikeys import key_hash
from services.keys import APIKEYS as KEYS


def keys(redis_url: str, data_dir: Path, *args: str) -> tuple[int, str, str]:
    env = {"CCPULSE_REDIS_URL": redis_url, "CCPULSE_DATA_DIR": str(data_dir)}
    result = CliRunner().invoke(app, ["keys", *args], env=env, prog_name="ccpulse")
    return result.exit_code, result.stdout, result.stderr


def rows(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines()]


def test_keys_create_list_revoke_in_process(clean_redis: EmbeddedRedis, tmp_path: Path) -> None:
    code, out, err = keys(
        clean_redis.url, tmp_path, "create", "--name", "wall-tv", "--role", "planner"
    )
    assert code == 0, err
    [created] = rows(out)
    assert created["name"] == "wall-tv" and created["role"] == "planner"
    with redis.Redis.from_url(clean_redis.url) as client:
        stored = json.loads(client.hget(KEYS, key_hash(created["key"])) or "{}")
        assert stored["id"] == created["id"] and stored["role"] == "planner"
        assert created["key"] not in json.dumps([k.decode() for k in client.hkeys(KEYS)])

    code, out, err = keys(clean_redis.url, tmp_path, "list")
    assert code == 0, err
    listed = {row["id"]: row for row in rows(out)}
    assert listed[created["id"]]["role"] == "planner"
    assert created["key"] not in out

    assert keys(clean_redis.url, tmp_path, "revoke", "--id", created["id"])[0] == 0
    assert created["id"] not in keys(clean_redis.url, tmp_path, "list")[1]
    code, _, err = keys(clean_redis.url, tmp_path, "revoke", "--id", created["id"])
    assert code == 1 and f"no key {created['id']}" in err
