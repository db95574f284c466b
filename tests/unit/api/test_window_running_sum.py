"""A window's running sum (api/window_sums.py) equals summing its buckets from scratch, whatever
the order buckets are put, replaced and dropped: the same fields (zeros kept while a bucket holds
them) and the same totals as `sum_fields`, which sums every bucket anew; split by scope, the
same counters in the same order as `by_scope` makes of the total."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from api.live_reader import by_scope, sum_fields
from api.window_sums import Cell, RunningSum

FIELDS = [
    b"ch|voice|offered",
    b"q|voice|sales|answered",
    b"ag|ann|handled",
    b"ch|chat|x:menu",
    b"ch|voice|answered",
    b"ch|voice|x:menu",
]
SCOPES = ["ch|voice", "q|voice|sales", "ag|ann", "ch|chat"]
CELLS: list[Cell] = [(p, res, start) for p in range(3) for res, start in (("m", 60), ("h", 0))]

contents = st.dictionaries(st.sampled_from(FIELDS), st.integers(-5, 5), max_size=4)
ops = st.lists(
    st.tuples(st.sampled_from(CELLS), st.one_of(st.none(), contents)), min_size=1, max_size=30
)


def flat(fields: dict[bytes, int]) -> list[bytes]:
    return [v for name, value in fields.items() for v in (name, str(value).encode())]


@given(ops)
def test_running_sum_equals_summing_the_buckets_anew(
    steps: list[tuple[Cell, dict[bytes, int] | None]],
) -> None:
    running = RunningSum()
    held: dict[Cell, dict[bytes, int]] = {}
    for n, (cell, fields) in enumerate(steps):
        if fields is None:
            running.drop(cell)
            held.pop(cell, None)
        else:
            running.put(cell, str(n).encode(), flat(fields))
            held[cell] = fields
        assert running.total == sum_fields(flat(f) for f in held.values())
        assert sorted(running.cells()) == sorted(held)
        # split by scope as by_scope splits the total, counters in the same order
        split = running.by_scope([*SCOPES, "q|none"])
        assert [list(c.items()) for c in split.values()] == [
            list(c.items()) for c in by_scope(running.total, [*SCOPES, "q|none"]).values()
        ]


def test_a_field_no_bucket_holds_any_more_leaves_the_sum() -> None:
    running = RunningSum()
    running.put((0, "m", 60), b"1", flat({b"a|x": 2, b"b|y": 0}))
    running.put((1, "m", 60), b"1", flat({b"a|x": -2}))
    assert running.total == {b"a|x": 0, b"b|y": 0}  # zeros stay while a bucket holds the field
    running.drop((0, "m", 60))
    assert running.total == {b"a|x": -2}
    running.put((1, "m", 60), b"2", flat({}))
    assert running.total == {}
    assert running.version((1, "m", 60)) == b"2" and running.version((0, "m", 60)) is None


def test_a_bucket_read_again_with_more_counts_moves_only_what_changed() -> None:
    """The bucket of the current minute, read push after push: its fields' values grow and new
    fields come; the sums and their split by scope follow, and it leaves them whole when it
    is dropped."""
    running = RunningSum()
    other = (1, "h", 0)
    running.put(other, b"1", flat({b"ch|voice|offered": 5}))
    current = (0, "m", 60)
    running.put(current, b"1", flat({b"ch|voice|offered": 1, b"ag|ann|handled": 2}))
    running.put(
        current,
        b"2",
        flat({b"ch|voice|offered": 4, b"ag|ann|handled": 2, b"q|voice|sales|answered": 1}),
    )
    assert running.total == {
        b"ch|voice|offered": 9,
        b"ag|ann|handled": 2,
        b"q|voice|sales|answered": 1,
    }
    assert running.by_scope(["ch|voice", "ag|ann", "q|voice|sales"]) == {
        "ch|voice": {"offered": 9},
        "ag|ann": {"handled": 2},
        "q|voice|sales": {"answered": 1},
    }
    assert running.version(current) == b"2"
    running.drop(current)
    assert running.total == {b"ch|voice|offered": 5}
    assert running.by_scope(["ch|voice", "ag|ann"]) == {"ch|voice": {"offered": 5}, "ag|ann": {}}
