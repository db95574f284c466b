"""Measured-FCR group sheets (aggregator/repeats.py): a contact is a member of exactly the group
its facts name, and a batch's group change is written once (docs/aggregation.md)."""

from __future__ import annotations

from aggregator import repeats
from aggregator.facts import ContactFacts, Register
from aggregator.repeats import GroupSheet
from services import keys

X, Y, Z = (f"cust{keys.SEP}{issue}" for issue in ("x", "y", "z"))


def facts(issue: str, resolved_ms: int | None = None) -> ContactFacts:
    return ContactFacts(
        contact="c1",
        channel=Register("chat", 1, "e1"),
        customer=Register("cust", 1, "e1"),
        issue=Register(issue, 2, "e2"),
        offered_ms=1_000,
        resolved_ms=resolved_ms,
    )


def test_a_contact_moves_from_its_old_group_to_its_new_one() -> None:
    member = repeats.member_of(facts("y"))
    assert member is not None
    old = {Y: GroupSheet(1, {"c1": member}), Z: None}
    changed = repeats.regroup({"c1": facts("z")}, {"c1": facts("y")}, old)
    assert changed[Y].members == {} and changed[Y].version == 2
    assert changed[Z].members == {"c1": repeats.member_of(facts("z"))}


def test_a_group_left_holding_the_contact_by_a_consumer_that_lost_its_partition_lets_it_go() -> (
    None
):
    """Its facts (issue y, then z) never named x here, but a stale consumer wrote it into x."""
    member = repeats.member_of(facts("x"))
    assert member is not None
    old = {X: GroupSheet(4, {"c1": member, "c2": member}), Y: None, Z: None}
    changed = repeats.regroup({"c1": facts("z")}, {"c1": facts("y")}, old)
    assert changed[X].members == {"c2": member}
    assert changed[Z].members == {"c1": repeats.member_of(facts("z"))}


def test_a_group_is_written_once_per_batch_and_never_by_an_older_one() -> None:
    new = {X: GroupSheet(5), Y: GroupSheet(2)}
    old = {X: GroupSheet(4, seen={3: 120}), Y: GroupSheet(1, seen={3: 80, 1: 500})}
    kept = repeats.unapplied(new, old, partition=3, last=100)
    assert list(kept) == [Y]  # partition 3 already wrote x up to offset 120
    assert kept[Y].seen == {3: 100, 1: 500}
    assert repeats.unapplied({X: GroupSheet(5)}, old, 3, 120) == {}  # the same batch again
    roundtrip = GroupSheet.from_json(kept[Y].to_json())
    assert roundtrip.seen == {3: 100, 1: 500} and roundtrip.version == 2
