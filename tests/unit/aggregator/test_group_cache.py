"""The measured-FCR group cache keeps groups encoded: what comes back must equal what went in,
a known absence must stay known, and no plan may change a cached group through the object it
was handed."""

from __future__ import annotations

from aggregator.repeats import GroupSheet
from aggregator.state import GroupCache


def _sheet(n: int) -> GroupSheet:
    return GroupSheet(
        version=n + 1,
        members={
            f"c{n}": (1_700_000_000_000 + n, None, "voice", "sales"),
            "x": (None, 5, "chat", None),
        },
        seen={n % 6: 100 + n, 7: 3},
    )


def test_groups_come_back_equal_and_absences_stay_known() -> None:
    cache = GroupCache(max_groups=10)
    cache.put({"a|billing": _sheet(1), "b|billing": None})
    found, missing = cache.known(["a|billing", "b|billing", "c|billing"])
    assert found == {"a|billing": _sheet(1), "b|billing": None}
    assert missing == ["c|billing"]


def test_a_changed_copy_leaves_the_cached_group_alone() -> None:
    cache = GroupCache(max_groups=10)
    cache.put({"a|billing": _sheet(1)})
    first, _ = cache.known(["a|billing"])
    sheet = first["a|billing"]
    assert sheet is not None
    sheet.members["new"] = (1, 2, "email", None)
    sheet.seen[0] = 999
    again, _ = cache.known(["a|billing"])
    assert again["a|billing"] == _sheet(1)


def test_the_least_recently_written_groups_go_first() -> None:
    cache = GroupCache(max_groups=3)
    cache.put({f"g{n}": _sheet(n) for n in range(3)})
    cache.put({"g0": _sheet(10)})  # written again: now the newest
    cache.put({"g3": _sheet(3)})
    assert len(cache) == 3
    found, missing = cache.known(["g0", "g1", "g2", "g3"])
    assert missing == ["g1"]
    assert found["g0"] == _sheet(10)
    cache.forget(["g0"])
    assert cache.known(["g0"])[1] == ["g0"]
