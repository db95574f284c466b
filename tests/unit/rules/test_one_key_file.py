"""Every Redis key is spelled in `services/keys.py`, and every lock runs `services/locks.py`.

Producers and readers of a key cannot drift apart when only one file spells it; two lock scripts
doing one job in two forms could.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
PACKAGES = ("ccpulse", "services", "ingest", "aggregator", "api", "simulator")
KEYS = ROOT / "services" / "keys.py"
LOCKS = ROOT / "services" / "locks.py"
# A literal starting with the prefix and a name, or a key built from the prefix constant. A glob
# over every key (`'ccp:*'` in an operator's instruction) names no key.
SPELLED = re.compile(r"""["']ccp:[\w{]|\{PREFIX\}|\bPREFIX\b.*[+:]|keys\.PREFIX\b""")
LOCK_SCRIPT = re.compile(r"\bpexpire\b|'SET'.*\bPX\b|\bnx=True.*\bpx=", re.IGNORECASE)


def _lines(pattern: re.Pattern[str], allowed: Path) -> list[str]:
    return [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*"))
        if path.suffix in (".py", ".lua") and path != allowed
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if pattern.search(line)
    ]


def test_only_the_key_file_spells_a_redis_key() -> None:
    assert _lines(SPELLED, KEYS) == []


def test_only_the_lock_file_takes_or_renews_a_lock() -> None:
    assert _lines(LOCK_SCRIPT, LOCKS) == []


def test_the_patterns_find_what_they_guard() -> None:
    """Each pattern finds the file it guards, so an empty answer above means something."""
    assert [line for line in KEYS.read_text().splitlines() if SPELLED.search(line)]
    assert [line for line in LOCKS.read_text().splitlines() if LOCK_SCRIPT.search(line)]
