"""Every tool under tests/tools imports: `make bench`, `make chaos` and the measurements in the
docs run them by module name, and a stale import (a module moved into tests/tools) would only
show the day someone runs the benchmark."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

TOOLS = sorted(p.stem for p in (Path(__file__).resolve().parents[2] / "tools").glob("*.py"))


@pytest.mark.parametrize("name", [t for t in TOOLS if t != "__init__"])
def test_the_tool_imports(name: str) -> None:
    importlib.import_module(f"tests.tools.{name}")
