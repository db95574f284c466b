"""Measured first-contact resolution: a resolved contact counts only if the same customer makes
no new contact about the same issue within the FCR window, on any channel.

That is a fact about a *group* of contacts (one customer, one issue), so each group keeps a sheet
of its members and contributes like a contact does: `contribution(new) - contribution(old)`.
Pure: the store loads and versions the sheets.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from services import keys
from services import kpis as k

from .contributions import Contribution, minute_of
from .facts import ContactFacts

Member = tuple[int | None, int | None, str, str | None]  # offered ms, resolved ms, channel, queue


@dataclass(slots=True)
class GroupSheet:
    """The contacts of one customer about one issue; `version` guards concurrent writers, and
    `seen` (source partition -> last offset of the batch that last changed it) makes a batch's
    group change apply once: it is written before that batch's own step, so a replay of the
    batch (the step failed or its consumer lost the partition) finds it applied."""

    version: int = 0
    members: dict[str, Member] = field(default_factory=dict)
    seen: dict[int, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "v": self.version,
            "m": {c: list(m) for c, m in self.members.items()},
            "s": self.seen_json(),
        }

    def dumps(self) -> bytes:
        """`orjson.dumps(self.to_json())` without the copy: orjson writes tuples as arrays."""
        return orjson.dumps({"v": self.version, "m": self.members, "s": self.seen_json()})

    def seen_json(self) -> dict[str, int]:
        return {str(p): o for p, o in self.seen.items()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> GroupSheet:
        members = {c: (m[0], m[1], m[2], m[3]) for c, m in data.get("m", {}).items()}
        seen = {int(p): int(o) for p, o in (data.get("s") or {}).items()}
        return cls(version=int(data.get("v", 0)), members=members, seen=seen)

    def applied(self, partition: int, last: int) -> bool:
        """Whether a batch of `partition` up to offset `last` (or a later one) changed it."""
        return self.seen.get(partition, -1) >= last


def group_of(facts: ContactFacts | None) -> str | None:
    """`customer|issue`, once both are known."""
    if facts is None or facts.customer is None or facts.issue is None:
        return None
    return f"{facts.customer.value}{keys.SEP}{facts.issue.value}"


def member_of(facts: ContactFacts | None) -> Member | None:
    if facts is None or facts.channel is None:
        return None
    queue = None if facts.queue is None else str(facts.queue.value)
    return (facts.offered_ms, facts.resolved_ms, str(facts.channel.value), queue)


def candidate_groups(
    contacts: Iterable[str],
    old_facts: Mapping[str, ContactFacts | None],
    new_customers: Mapping[str, set[str]],
    new_issues: Mapping[str, set[str]],
) -> set[str]:
    """Every group a batch may touch: old and new customer x issue of each contact (a superset)."""
    out: set[str] = set()
    for contact in contacts:
        old = old_facts.get(contact)
        new_customer = new_customers.get(contact)
        old_customer = None if old is None or old.customer is None else str(old.customer.value)
        if not new_customer and old_customer is None:
            continue  # no customer, no group
        new_issue = new_issues.get(contact)
        old_issue = None if old is None or old.issue is None else str(old.issue.value)
        customer, issue = _single(new_customer, old_customer), _single(new_issue, old_issue)
        if customer is not None and issue is not None:  # most contacts: one group, no sets
            out.add(f"{customer}{keys.SEP}{issue}")
            continue
        customers = set(new_customer or ())
        issues = set(new_issue or ())
        if old_customer is not None:
            customers.add(old_customer)
        if old_issue is not None:
            issues.add(old_issue)
        out.update(f"{c}{keys.SEP}{i}" for c in customers for i in issues)
    return out


def _single(new: set[str] | None, old: str | None) -> str | None:
    """The one value of `new` and `old` together; None when there are none or several."""
    if not new:
        return old
    if len(new) == 1 and (old is None or old in new):
        return next(iter(new))
    return None


def regroup(
    new_facts: Mapping[str, ContactFacts],
    old_facts: Mapping[str, ContactFacts | None],
    old_groups: Mapping[str, GroupSheet | None],
) -> dict[str, GroupSheet]:
    """New sheets for the groups whose members changed (version bumped)."""
    changed: dict[str, GroupSheet] = {}
    holders = _holders(old_groups, new_facts)
    for contact, facts in new_facts.items():
        old = old_facts.get(contact)
        was, now = group_of(old), group_of(facts)
        held = holders.get(contact)
        if was is None and now is None and held is None:
            continue  # in no group before or after, and held by none: nothing to move
        before, after = (was, member_of(old)), (now, member_of(facts))
        if before != after:
            if was is not None:
                _sheet(changed, old_groups, was).members.pop(contact, None)
            if now is not None and after[1] is not None:
                _sheet(changed, old_groups, now).members[contact] = after[1]
        # A group may hold the contact as a consumer that lost its partition left it (written
        # before its step was refused, docs/aggregation.md): the contact's facts decide.
        for key in held or ():
            if key != was and key != now:
                current = changed[key] if key in changed else old_groups[key]
                if current is not None and contact in current.members:
                    _sheet(changed, old_groups, key).members.pop(contact, None)
    return changed


def _sheet(
    changed: dict[str, GroupSheet], old_groups: Mapping[str, GroupSheet | None], key: str
) -> GroupSheet:
    """The group's new sheet in `changed`, a copy of the one read (version bumped) at first."""
    sheet = changed.get(key)
    if sheet is None:
        old = old_groups.get(key) or _NO_GROUP
        sheet = changed[key] = GroupSheet(old.version + 1, dict(old.members))
    return sheet


_NO_GROUP = GroupSheet()  # a group never written: read only (most groups a batch makes are new)


def _holders(
    groups: Mapping[str, GroupSheet | None], contacts: Mapping[str, object]
) -> dict[str, list[str]]:
    """Contact of the batch -> the groups read that hold it."""
    out: dict[str, list[str]] = {}
    for key, group in groups.items():
        for contact in group.members if group is not None else ():
            if contact in contacts:
                out.setdefault(contact, []).append(key)
    return out


def unapplied(
    groups: Mapping[str, GroupSheet],
    old_groups: Mapping[str, GroupSheet | None],
    partition: int,
    last: int,
) -> dict[str, GroupSheet]:
    """The changed groups a batch of `partition` up to `last` still has to write, each marked
    as written by it; a group that batch (or a later one) already changed is left as it is."""
    out: dict[str, GroupSheet] = {}
    for key, sheet in groups.items():
        old = old_groups.get(key)
        if old is not None and old.applied(partition, last):
            continue
        sheet.seen = {**(old.seen if old is not None else {}), partition: last}
        out[key] = sheet
    return out


def contribution(sheet: GroupSheet | None, window_ms: int) -> Contribution:
    """Per resolved member, at its resolution minute: eligible, and met unless repeated."""
    out: Contribution = {}
    if sheet is None:
        return out
    if len(sheet.members) == 1:
        return _alone(sheet)
    offers = [(c, m[0]) for c, m in sheet.members.items() if m[0] is not None]
    for contact, (_, resolved, channel, queue) in sheet.members.items():
        if resolved is None:
            continue
        repeated = False  # a loop, not any(): groups are a few members, a generator costs more
        for other, offered in offers:
            if resolved < offered <= resolved + window_ms and other != contact:
                repeated = True
                break
        minute = minute_of(resolved)
        for scope in _scopes(channel, queue):
            cell = out.get((minute, scope))
            if cell is None:
                out[(minute, scope)] = {k.FCR_ELIGIBLE: 1} if repeated else _MET.copy()
                continue
            cell[k.FCR_ELIGIBLE] = cell.get(k.FCR_ELIGIBLE, 0) + 1
            if not repeated:
                cell[k.FCR_MET] = cell.get(k.FCR_MET, 0) + 1
    return out


_MET = {k.FCR_ELIGIBLE: 1, k.FCR_MET: 1}  # a new cell's first member, not repeated


def _alone(sheet: GroupSheet) -> Contribution:
    """`contribution` of a one-member group (most groups): no other member can repeat it."""
    out: Contribution = {}
    for _, resolved, channel, queue in sheet.members.values():
        if resolved is not None:
            minute = minute_of(resolved)
            for scope in _scopes(channel, queue):
                out[(minute, scope)] = _MET.copy()
    return out


def _scopes(channel: str, queue: str | None) -> tuple[str, ...]:
    """A member's channel (and queue) scope, formatted once per pair (a few dozen recur)."""
    found = _SCOPES.get((channel, queue))
    if found is None:
        channel_scope = keys.channel_scope(channel)
        found = (
            (channel_scope,) if queue is None else (channel_scope, keys.queue_scope(channel, queue))
        )
        if len(_SCOPES) > 10_000:  # queue names are open-ended: stay bounded
            _SCOPES.clear()
        _SCOPES[(channel, queue)] = found
    return found


_SCOPES: dict[tuple[str, str | None], tuple[str, ...]] = {}


def resolves(sheet: GroupSheet | None) -> bool:
    """Whether the sheet has a resolved member: only those contribute (`contribution`)."""
    if sheet is not None:
        for member in sheet.members.values():
            if member[1] is not None:
                return True
    return False


def deltas(
    old_groups: Mapping[str, GroupSheet | None],
    new_groups: Mapping[str, GroupSheet],
    window_ms: int,
) -> dict[str, Contribution]:
    """Per changed group: what it adds to the counters (its shard's step writes it). With no
    resolved member on either side both contributions are empty: most groups, skipped."""
    out: dict[str, Contribution] = {}
    for key, sheet in new_groups.items():
        old = old_groups.get(key)
        if not resolves(old):  # its contribution is empty: the new one is the difference
            out[key] = _gained(contribution(sheet, window_ms)) if resolves(sheet) else {}
        else:
            out[key] = group_diff(contribution(old, window_ms), contribution(sheet, window_ms))
    return out


def _gained(new: Contribution) -> Contribution:
    """`group_diff({}, new)` without the empty side's look-ups: cells and fields in the same
    (set) order, since `set(view)` fills a set as `{}.keys() | view` does."""
    out: Contribution = {}
    for cell in set(new.keys()):
        after = new[cell]
        delta = {n: after[n] for n in set(after.keys()) if after[n]}
        if delta:
            out[cell] = delta
    return out


def group_diff(old: Contribution, new: Contribution) -> Contribution:
    """`contributions.diff`, cells equal on both sides passed over without a field-by-field
    difference: a group's change mostly leaves the other members' cells as they were."""
    if old == new:
        return {}
    out: Contribution = {}
    for cell in old.keys() | new.keys():
        before, after = old.get(cell, _NONE), new.get(cell, _NONE)
        if before == after:
            continue
        delta = {n: after.get(n, 0) - before.get(n, 0) for n in before.keys() | after.keys()}
        delta = {n: v for n, v in delta.items() if v}
        if delta:
            out[cell] = delta
    return out


_NONE: dict[str, int] = {}
