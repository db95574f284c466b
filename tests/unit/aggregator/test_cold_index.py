"""The index of sheets evicted to Redis: never a false negative (a contact seen must be read
back, or its sheet would be taken for a new contact's and counted twice), and it forgets a
filter only once every contact in it has expired."""

from __future__ import annotations

import pytest

from aggregator import state
from aggregator.state import ColdIndex


def test_every_contact_added_is_found_until_it_expires(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(state, "GENERATION", 100)
    index = ColdIndex()
    for n in range(1000):
        index.add(f"c{n}", expires_ms=10_000 + n)  # ten filters, later ones expire later
    assert len(index.generations) == 10
    assert all(index.may_hold(f"c{n}", now_ms=9_000) for n in range(1000))
    false = sum(index.may_hold(f"x{n}", now_ms=9_000) for n in range(2000))
    assert false < 2000 * 0.2  # ten filters at 1 % each: about 10 %
    # at 10,500 the first five filters hold only expired contacts: dropped, the rest kept
    assert all(index.may_hold(f"c{n}", now_ms=10_500) for n in range(501, 1000))
    assert len(index.generations) == 5
    assert not any(index.may_hold(f"c{n}", now_ms=20_000) for n in range(1000))
    assert index.generations == []
    index.add("late", 30_000)
    assert index.may_hold("late", 20_000) and index.count == 1
