"""No public default secrets off loopback; `ccpulse up` keeps its own secrets owner-only.

Issue 13: with CCPULSE_API_HOST=0.0.0.0 the service started with the built-in hash key, the
placeholder admin key of deploy/ccpulse.env and a one-character ingest token.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from ccpulse.launch import access_lines, masked_url, with_access_keys
from services.settings import Settings
from tests.harness import ROOT, free_port

STRONG = "s" * 40
STRONG_KEYS: dict[str, Any] = {
    "hash_key": "h" * 40,
    "admin_key": "a" * 40,
    "ingest_tokens": [STRONG],
}


def refusal(**values: Any) -> str:
    with pytest.raises(ValidationError) as caught:
        Settings(**values)
    return str(caught.value.errors()[0]["msg"])


def test_off_loopback_every_weak_secret_is_named() -> None:
    message = refusal(
        api_host="0.0.0.0",
        admin_key="replace-with-a-generated-key",
        viewer_key="short-viewer",
        ingest_tokens=[STRONG, "x"],
        redis_url="redis://:tiny@redis.internal:6379/0",
    )
    for name, why in [
        ("CCPULSE_HASH_KEY", "placeholder"),
        ("CCPULSE_ADMIN_KEY", "placeholder"),
        ("CCPULSE_VIEWER_KEY", "12 characters"),
        ("CCPULSE_INGEST_TOKENS[2]", "1 characters"),
        ("CCPULSE_REDIS_URL password", "4 characters"),
    ]:
        assert f"{name} is" in message and why in message.split(f"{name} is")[1].split(";")[0]
    assert "CCPULSE_INGEST_TOKENS[1]" not in message
    for secret in ("short-viewer", "tiny", "replace-with-a-generated-key"):
        assert secret not in message, "the refusal names settings, never their values"


@pytest.mark.parametrize("host", ["api_host", "ingest_host"])
def test_either_listener_off_loopback_needs_strong_secrets(host: str) -> None:
    assert "CCPULSE_ADMIN_KEY is not set" in refusal(**{host: "10.0.0.5", "hash_key": STRONG})
    assert "change-me" not in refusal(**{host: "10.0.0.5"})  # the default is named, not shown
    strong = Settings(**{host: "10.0.0.5", **STRONG_KEYS})
    assert strong.secure_cookies() and strong.docs_mode() == "key"


def test_loopback_keeps_the_development_defaults() -> None:
    settings = Settings(admin_key="x", ingest_tokens=["y"])
    assert not settings.secure_cookies() and settings.docs_mode() == "open"


def _env_file(path: Path) -> dict[str, str]:
    """As docker compose's env_file reads it: KEY=VALUE, taken literally."""
    pairs = (line.split("=", 1) for line in path.read_text().splitlines())
    return {p[0]: p[1] for p in pairs if len(p) == 2 and not p[0].startswith("#")}


@pytest.mark.parametrize("process", ["api", "ccpulse"])
def test_the_shipped_env_file_refuses_to_start_with_a_clear_message(process: str) -> None:
    env = {**_env_file(ROOT / "deploy" / "ccpulse.env"), "PATH": os.environ["PATH"]}
    env["CCPULSE_API_PORT"] = str(free_port())
    argv = [sys.executable, "-m", process, *(["up", "--only-infra"] if process != "api" else [])]
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "Traceback" not in done.stderr, done.stderr
    for name in ("CCPULSE_HASH_KEY", "CCPULSE_ADMIN_KEY", "CCPULSE_INGEST_TOKENS[1]"):
        assert f"{name} is a placeholder" in done.stderr, done.stderr
    assert "replace-with" not in done.stderr + done.stdout


@pytest.mark.parametrize("process", ["api", "ingest", "aggregator"])
def test_a_refusal_never_prints_a_secret(process: str) -> None:
    admin = "admin-" + "k" * 40
    env = {
        "PATH": os.environ["PATH"],
        "CCPULSE_API_HOST": "0.0.0.0",
        "CCPULSE_HASH_KEY": STRONG,
        "CCPULSE_ADMIN_KEY": admin,
        "CCPULSE_INGEST_TOKENS": '["tiny-token"]',
    }
    argv = [sys.executable, "-m", process]
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and "CCPULSE_INGEST_TOKENS[1] is 10 characters" in done.stderr
    for secret in (admin, STRONG, "tiny-token"):
        assert secret not in done.stderr + done.stdout


@pytest.fixture
def open_umask() -> Iterator[None]:
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


_opened: list[tuple[str, Any]] = []


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if event == "open" and str(args[0]).endswith(("secrets.json", "secrets.json.tmp")):
        _opened.append((str(args[0]), args[1]))


sys.addaudithook(_audit)


def test_up_keeps_generated_secrets_owner_only_from_creation(
    tmp_path: Path, open_umask: None
) -> None:
    _opened.clear()
    settings = with_access_keys(Settings(data_dir=tmp_path))
    path = tmp_path / "secrets.json"
    assert path.stat().st_mode & 0o777 == 0o600
    writes = [(name, mode) for name, mode in _opened if mode is None or "r" not in str(mode)]
    assert writes and all(mode is None for _, mode in writes), f"os.open only: {writes}"
    assert settings.hash_key.get_secret_value() != "ccpulse-dev-key-change-me"
    again = with_access_keys(Settings(data_dir=tmp_path))
    for name in ("hash_key", "admin_key", "viewer_key"):
        assert getattr(again, name) == getattr(settings, name), "kept across restarts"


def test_only_generated_keys_are_printed(tmp_path: Path) -> None:
    generated = with_access_keys(Settings(data_dir=tmp_path))
    shown = "\n".join(access_lines(generated))
    assert generated.admin_key is not None and generated.admin_key.get_secret_value() in shown
    from_env = Settings(data_dir=tmp_path, admin_key="a" * 40, viewer_key="v" * 40)
    shown = "\n".join(access_lines(with_access_keys(from_env), frozenset({"admin_key"})))
    assert "a" * 40 not in shown and "from CCPULSE_ADMIN_KEY" in shown


def test_start_up_output_masks_the_redis_password() -> None:
    assert masked_url("redis://:s3cret@127.0.0.1:6379/0") == "redis://:***@127.0.0.1:6379/0"
    assert masked_url("rediss://user:p@ss@host:1/0") == "rediss://user:***@host:1/0"
    assert masked_url("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"
