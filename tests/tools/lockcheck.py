"""`python -m tests.tools.lockcheck [LOCK]`: is this environment exactly the lock file?

`make setup` installs requirements/dev.lock with hashes; this compares what is installed (as
`pip freeze` sees it) with what the lock pins for this platform, both ways, and says what differs.
"""

from __future__ import annotations

import re
import sys
from importlib import metadata
from pathlib import Path

from packaging.markers import Marker
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_LOCK = ROOT / "requirements" / "dev.lock"
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)\s*(?:;\s*([^\\]+?))?\s*\\?$")
# pip freeze leaves these out too; the project itself is installed editable, not from the lock
NOT_FROZEN = {"pip", "setuptools", "wheel", "distribute", "ccpulse"}


def pinned(lock: Path) -> dict[str, str]:
    """Name -> version of every pin in the lock whose marker holds on this interpreter."""
    out: dict[str, str] = {}
    for line in lock.read_text().splitlines():
        match = PIN.match(line)
        if match is None:
            continue
        name, version, marker = match.groups()
        if marker and not Marker(marker).evaluate():
            continue
        out[canonicalize_name(name)] = version
    return out


def installed() -> dict[str, str]:
    return {
        canonicalize_name(d.metadata["Name"]): d.version
        for d in metadata.distributions()
        if canonicalize_name(d.metadata["Name"]) not in NOT_FROZEN
    }


def differences(lock: Path) -> list[str]:
    want, have = pinned(lock), installed()
    want = {n: v for n, v in want.items() if n not in NOT_FROZEN}
    problems = [f"missing: {n}=={v}" for n, v in sorted(want.items()) if n not in have]
    problems += [
        f"{n}: installed {have[n]}, locked {v}"
        for n, v in sorted(want.items())
        if n in have and have[n] != v
    ]
    problems += [f"not in the lock: {n}=={v}" for n, v in sorted(have.items()) if n not in want]
    return problems


def main() -> None:
    lock = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_LOCK
    problems = differences(lock)
    for p in problems:
        print(p)
    print(f"{lock.name}: {len(pinned(lock))} pins, {len(problems)} differences")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
