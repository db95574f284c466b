"""Code and tests read wall time only through the injected clocks (docs/testing.md).

`make test-clock` shifts every process with `CCPULSE_CLOCK_OFFSET_SECONDS`; one direct read of the
wall clock would put that process at another instant than the rest of the stack.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
PACKAGES = ("ccpulse", "services", "ingest", "aggregator", "api", "simulator", "tests")
WALL_CLOCK = re.compile(
    r"\btime\.time\(\)|\btime\.time_ns\(\)|datetime\.(now|utcnow|today)\(|\bdate\.today\("
)
# the clocks themselves, the tool that picks the offset, and this test's own pattern
ALLOWED = {
    ROOT / "services" / "clock.py",
    ROOT / "tests" / "clock.py",
    ROOT / "tests" / "tools" / "clock_matrix.py",
    Path(__file__).resolve(),
}


def test_no_process_reads_the_wall_clock_directly() -> None:
    found = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
        if path not in ALLOWED
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if WALL_CLOCK.search(line) and not line.lstrip().startswith("#")
    ]
    assert found == []
