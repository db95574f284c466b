"""The index of sheets evicted to Redis: never a false negative (a contact seen must be read
back, or its sheet would be taken for a new contact's and counted twice), and it forgets a
filter only once every contact in it has expired."""

from __future__ import annotations

import pytest

from aggregator import state
from aggregator.facts import ContactFacts
from aggregator.state import ColdIndex, Loaded, OwnedState


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


def _plain_facts(
    owned: OwnedState, partition: int, contacts: list[str], now_ms: int
) -> tuple[dict[str, ContactFacts | None], list[str]]:
    """`OwnedState.facts` as defined: each contact's hot sheet, else the index asked for it."""
    part = owned.partitions[partition]
    out: dict[str, ContactFacts | None] = {}
    cold: list[str] = []
    for contact in contacts:
        entry = part.hot.get(contact)
        if entry is not None:
            out[contact] = entry[0] if entry[1] > now_ms else None
        elif part.cold.may_hold(contact, now_ms):
            cold.append(contact)
        else:
            out[contact] = None
    return out, cold


def _owned() -> OwnedState:
    owned = OwnedState(max_sheets=50)
    owned.load(0, Loaded(-1, {}, [], {}))
    for n in range(400):  # evicted in turn: eight filters of 40, later ones expire later
        owned.commit(0, {f"c{n}": ContactFacts(contact=f"c{n}")}, 10_000 + 10 * n, {})
    return owned


def test_facts_asks_the_index_once_a_batch_as_each_contact_would(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The filters are pruned once, at the batch's first contact not hot (as the first
    `may_hold` would), then each contact is tested against what is left."""
    monkeypatch.setattr(state, "GENERATION", 40)
    batches = [
        ([f"c{n}" for n in range(0, 400, 7)], 9_000),  # hot, cold and expired hot sheets
        ([f"c{n}" for n in range(380, 400)], 20_000),  # all hot: nothing pruned yet
        ([f"x{n}" for n in range(50)] + ["c3", "c399"], 12_000),  # prunes some filters
        (["c200", "c10", "c395"], 14_000),
        ([f"c{n}" for n in range(400)], 99_000),  # every filter gone
    ]
    fast, plain = _owned(), _owned()
    for contacts, now_ms in batches:
        assert fast.facts(0, contacts, now_ms) == _plain_facts(plain, 0, contacts, now_ms)
        index, other = fast.partitions[0].cold, plain.partitions[0].cold
        assert (len(index.generations), index.count) == (len(other.generations), other.count)
