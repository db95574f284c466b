"""The partitions' state this aggregator owns, in memory: loaded on assignment, dropped on revoke.

Redis keeps the durable copy, written in the same atomic step as the partition's offset
(store.py); this working copy lets a batch be planned without reading Redis. It changes only
after Redis accepted a step, and it is reloaded whenever a partition is re-seeked, so it can
never be ahead of or behind what Redis holds. Bounded: cold sheets are evicted, least recently
used first, and read back from Redis on their next event.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import orjson
from rbloom import Bloom

from .facts import AgentFacts, ContactFacts
from .repeats import GroupSheet

Raw = bytes | str


GENERATION = 1 << 18  # contacts per Bloom filter: ~310 kB each at 1 % false positives
FALSE_POSITIVES = 0.01


class ColdIndex:
    """Which contacts may have a sheet in Redis that is not in memory: Bloom filters, ~10 bits a
    contact where a dict entry cost ~130 bytes (a million open contacts).

    Never a false negative, so no sheet is taken for a new contact; a false positive (1 %) only
    costs a read that finds nothing or an expired sheet. A filter is dropped once every contact
    added to it has expired, so the index stays as large as the open contacts."""

    __slots__ = ("count", "generations")

    def __init__(self) -> None:
        self.generations: list[tuple[Bloom, list[int]]] = []  # filter, [latest expiry ms]
        self.count = 0  # contacts in the newest filter

    def add(self, contact: str, expires_ms: int) -> None:
        if not self.generations or self.count >= GENERATION:
            self.generations.append((Bloom(GENERATION, FALSE_POSITIVES), [expires_ms]))
            self.count = 0
        bloom, latest = self.generations[-1]
        bloom.add(contact)
        latest[0] = max(latest[0], expires_ms)
        self.count += 1

    def may_hold(self, contact: str, now_ms: int) -> bool:
        return any(contact in bloom for bloom in self.live(now_ms))

    def live(self, now_ms: int) -> list[Bloom]:
        """The filters holding a contact not yet expired at `now_ms` (the others dropped): a
        batch asks once, then tests each contact against them."""
        if self.generations and min(g[1][0] for g in self.generations) <= now_ms:
            newest = self.generations[-1]  # every sheet of some filter has expired: drop it
            self.generations = [g for g in self.generations if g[1][0] > now_ms]
            if not self.generations or self.generations[-1] is not newest:
                self.count = 0
        return [bloom for bloom, _ in self.generations]


@dataclass(slots=True)
class PartitionState:
    """One partition: hot sheets with their expiry (dict order = least recently used first),
    the contacts whose sheets may be only in Redis, and this partition's slices of agent sheets."""

    hot: dict[str, tuple[ContactFacts, int]] = field(default_factory=dict)
    cold: ColdIndex = field(default_factory=ColdIndex)
    agents: dict[str, AgentFacts] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Loaded:
    """What Redis holds for one partition, read in one transaction with its offset."""

    offset: int
    facts: Mapping[Raw, Raw]
    expiry: list[tuple[Raw, float]]  # ascending expiry: the last ones were written last
    agents: Mapping[Raw, Raw]


class OwnedState:
    """Fact sheets and agent slices of the partitions this process owns, at most `max_sheets`
    sheets in memory across them."""

    def __init__(self, max_sheets: int) -> None:
        self.max_sheets = max(1, max_sheets)
        self.partitions: dict[int, PartitionState] = {}
        self.size = 0

    def owns(self, partition: int) -> bool:
        return partition in self.partitions

    def load(self, partition: int, loaded: Loaded) -> None:
        """Replace the partition's state by Redis's; the most recently written sheets go hot."""
        self.drop(partition)
        state = PartitionState()
        room = max(0, self.max_sheets - self.size)
        split = max(0, len(loaded.expiry) - room)
        for member, score in loaded.expiry[:split]:
            state.cold.add(_text(member), int(score))
        for member, score in loaded.expiry[split:]:
            raw = loaded.facts.get(member)
            if raw is not None:
                state.hot[_text(member)] = (decode_facts(raw), int(score))
        state.agents = {_text(a): decode_agent(v) for a, v in loaded.agents.items()}
        self.partitions[partition] = state
        self.size += len(state.hot)

    def drop(self, partition: int) -> None:
        state = self.partitions.pop(partition, None)
        if state is not None:
            self.size -= len(state.hot)

    def facts(
        self, partition: int, contacts: Iterable[str], now_ms: int
    ) -> tuple[dict[str, ContactFacts | None], list[str]]:
        """Old sheets of these contacts, and those that must first be read back from Redis."""
        state = self.partitions[partition]
        hot = state.hot
        out: dict[str, ContactFacts | None] = {}
        cold: list[str] = []
        blooms: list[Bloom] | None = None  # pruned at the first contact not hot, as may_hold would
        for contact in contacts:
            entry = hot.get(contact)
            if entry is not None:
                out[contact] = entry[0] if entry[1] > now_ms else None
                continue
            if blooms is None:
                blooms = state.cold.live(now_ms)
            for bloom in blooms:
                if contact in bloom:
                    cold.append(contact)  # read back, with its expiry (Store.read_facts)
                    break
            else:
                out[contact] = None
        return out, cold

    def agents(self, partition: int, names: Iterable[str]) -> dict[str, AgentFacts | None]:
        slices = self.partitions[partition].agents
        return {name: slices.get(name) for name in names}

    def commit(
        self,
        partition: int,
        facts: Mapping[str, ContactFacts],
        expires_ms: int,
        agents: Mapping[str, AgentFacts],
    ) -> None:
        """Redis accepted the step: the new sheets become the working copy (most recent last)."""
        state = self.partitions.get(partition)
        if state is None:  # revoked while the step ran; the next owner loads it from Redis
            return
        hot = state.hot
        for contact, sheet in facts.items():
            if hot.pop(contact, None) is None:
                self.size += 1
            hot[contact] = (sheet, expires_ms)
        state.agents.update(agents)
        self._evict()

    def _evict(self) -> None:
        while self.size > self.max_sheets:
            largest = max(self.partitions.values(), key=lambda s: len(s.hot))
            contact = next(iter(largest.hot))
            _, expires = largest.hot.pop(contact)
            largest.cold.add(contact, expires)
            self.size -= 1


class GroupCache:
    """Measured-FCR group sheets last read or written, with their versions. Not owned by a
    partition: the script checks each version, and a conflict evicts the group (re-read).

    Kept as JSON text: a group as objects took ~950 bytes, and 100,000 groups put one aggregator
    95 MB over its memory goal (`bench_memory --fcr`). Text, not orjson's bytes: those keep the
    malloc'd buffer they were shrunk from, and the heap between them stays fragmented (600 MB in
    the same run). Each lookup decodes a fresh sheet, so no plan can change a cached one."""

    def __init__(self, max_groups: int) -> None:
        self.max_groups = max(1, max_groups)
        self.sheets: dict[str, str | None] = {}  # None: known to have no sheet in Redis

    def __len__(self) -> int:
        return len(self.sheets)

    def known(self, groups: Iterable[str]) -> tuple[dict[str, GroupSheet | None], list[str]]:
        out: dict[str, GroupSheet | None] = {}
        missing: list[str] = []
        sheets = self.sheets
        for group in groups:
            if group in sheets:
                raw = sheets[group]
                out[group] = None if raw is None else GroupSheet.from_json(orjson.loads(raw))
            else:
                missing.append(group)
        return out, missing

    def put(self, sheets: Mapping[str, GroupSheet | None]) -> None:
        for group, sheet in sheets.items():
            self.sheets.pop(group, None)
            self.sheets[group] = None if sheet is None else _encoded(sheet)
        while len(self.sheets) > self.max_groups:
            del self.sheets[next(iter(self.sheets))]

    def clear(self) -> None:
        self.sheets.clear()

    def forget(self, groups: Iterable[str]) -> None:
        for group in groups:
            self.sheets.pop(group, None)


def _encoded(sheet: GroupSheet) -> str:
    """`sheet.dumps().decode()`: orjson writes the partitions' int keys as `seen_json` does
    (decimal text), with no dict built for them (a third of the cost of a group's put)."""
    data = {"v": sheet.version, "m": sheet.members, "s": sheet.seen}
    return orjson.dumps(data, option=orjson.OPT_NON_STR_KEYS).decode()


def decode_facts(raw: Raw) -> ContactFacts:
    return ContactFacts.from_json(orjson.loads(raw))


def decode_agent(raw: Raw) -> AgentFacts:
    return AgentFacts.from_json(orjson.loads(raw))


def _text(value: Raw) -> str:
    return value.decode() if isinstance(value, bytes) else value
