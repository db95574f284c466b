"""deploy/prometheus/ as Prometheus itself reads it: rules, their unit tests, the config.

promtool comes from Debian's `prometheus` package (`.ci/system-deps` installs it); without it
these tests skip and say so.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

PROMETHEUS = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"
PROMTOOL = shutil.which("promtool")

pytestmark = pytest.mark.skipif(
    PROMTOOL is None,
    reason="promtool not found: install Debian's prometheus package (make system-deps)",
)


def promtool(*args: str, cwd: Path = PROMETHEUS) -> str:
    assert PROMTOOL is not None
    done = subprocess.run(
        [PROMTOOL, *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, f"promtool {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def test_rules_are_valid() -> None:
    rules = sorted(str(p) for p in (PROMETHEUS / "rules").glob("*.yml"))
    assert len(rules) == 2
    out = promtool("check", "rules", *rules)
    assert out.count("SUCCESS") == 2


def test_rule_unit_tests_pass() -> None:
    tests = sorted(str(p) for p in (PROMETHEUS / "tests").glob("*.yml"))
    assert tests, "no promtool unit tests in deploy/prometheus/tests"
    out = promtool("test", "rules", *tests)
    assert out.count("SUCCESS") == len(tests)


def test_config_is_valid(tmp_path: Path) -> None:
    """The config with its rules; the viewer key file is the one thing a site provides."""
    copy = tmp_path / "prometheus"
    shutil.copytree(PROMETHEUS, copy)
    key = tmp_path / "viewer-key"
    key.write_text("ccp_test_key\n")
    config = copy / "prometheus.yml"
    text = config.read_text()
    assert "/etc/prometheus/secrets/ccpulse-viewer-key" in text
    config.write_text(text.replace("/etc/prometheus/secrets/ccpulse-viewer-key", str(key)))
    out = promtool("check", "config", str(config), cwd=copy)
    assert "SUCCESS" in out
