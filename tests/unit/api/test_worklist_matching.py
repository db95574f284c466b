"""The worklist's matching (api/worklist.py): a table of cases, and order/duplicate invariance."""

from __future__ import annotations

import random

import pytest

from api.worklist import Abandon, Later, by_queue, figures, item_document, match

H = 3_600_000
W = 24 * H


def ab(contact: str, customer: str, at: int, queue: str = "sales") -> Abandon:
    return Abandon(contact, "voice", queue, customer, at, 30_000, "queue", "abandoned")


def later(contact: str, customer: str, start: int, channel: str = "chat") -> Later:
    return Later(contact, channel, customer, start)


@pytest.mark.parametrize(
    ("rows", "want"),
    [
        pytest.param([], None, id="no later contact"),
        pytest.param([later("b", "k", 10 * H)], None, id="a contact before the abandon"),
        pytest.param([later("b", "k", 10 * H + 5)], ("b", 5), id="a start 5 ms later"),
        pytest.param([later("b", "k", 10 * H)], None, id="same instant is not later"),
        pytest.param([later("b", "k", 10 * H + W)], ("b", W), id="exactly at the window's end"),
        pytest.param([later("b", "k", 10 * H + W + 1)], None, id="1 ms after the window"),
        pytest.param([later("b", "x", 11 * H)], None, id="another customer"),
        pytest.param(
            [later("c", "k", 12 * H), later("b", "k", 11 * H)], ("b", H), id="the first one"
        ),
        pytest.param([later("z", "k", 11 * H), later("b", "k", 11 * H)], ("b", H), id="ties by id"),
    ],
)
def test_first_later_contact_within_the_window(
    rows: list[Later], want: tuple[str, int] | None
) -> None:
    [item] = match([ab("a", "k", 10 * H)], rows, W)
    got = None if item.reached is None else (item.reached.contact, item.reached.delay_ms)
    assert got == want


def test_unknown_customer_is_never_reached_nor_counted_not_reached() -> None:
    items = match([ab("a", "", 10 * H), ab("b", "k", 10 * H)], [later("c", "", 11 * H)], W)
    assert [i.reached for i in items] == [None, None]
    assert item_document(items[0])["customer_known"] is False
    assert item_document(items[0])["customer"] is None
    assert figures(items) == {
        "abandoned": 2,
        "reached": 0,
        "not_reached": 1,
        "median_seconds_to_reach": None,
    }


def test_figures_per_queue_and_median() -> None:
    abandons = [ab("a1", "k1", 0), ab("a2", "k2", 0), ab("a3", "k3", 0, "billing")]
    rows = [later("b1", "k1", 60_000), later("b2", "k2", 180_000), later("b3", "k3", 10_000)]
    items = match(abandons, rows, W)
    assert figures(items)["median_seconds_to_reach"] == 60.0
    assert item_document(items[1])["reached"] == {
        "contact": "b2",
        "channel": "chat",
        "at_ms": 180_000,
        "delay_seconds": 180.0,
    }
    queues = {q["queue"]: q for q in by_queue(items)}
    assert queues["sales"]["median_seconds_to_reach"] == 120.0  # mean of the middle two
    assert (queues["billing"]["reached"], queues["billing"]["not_reached"]) == (1, 0)


def test_order_and_duplicates_do_not_change_the_answer() -> None:
    rng = random.Random(7)
    abandons = [ab(f"a{i}", f"k{i % 5}", rng.randrange(40) * H) for i in range(30)]
    rows = [later(f"l{i}", f"k{i % 6}", rng.randrange(80) * H) for i in range(40)]
    rows += [later(a.contact, a.customer, a.at_ms - 60_000) for a in abandons]  # themselves
    want = match(abandons, rows, 3 * H)
    for _ in range(20):
        a2, r2 = abandons + abandons[:7], rows + rows[:9]
        rng.shuffle(a2)
        rng.shuffle(r2)
        assert match(a2, r2, 3 * H) == want
    assert len(want) == 30 and any(i.reached for i in want) and not all(i.reached for i in want)
