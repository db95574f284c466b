"""The formatter formats everything: no file opts out of it with skip or off markers."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
PACKAGES = ("ccpulse", "services", "ingest", "aggregator", "api", "simulator", "tests")
MARKERS = ("fmt: " + "skip", "fmt: " + "off")  # spelled apart so this file does not match


def test_no_file_opts_out_of_the_formatter() -> None:
    found = [
        f"{path.relative_to(ROOT)}:{n}"
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if any(marker in line for marker in MARKERS)
    ]
    assert found == [], found
