"""A named window's counters kept summed between reads, re-reading only the buckets that changed.

Summing a window from scratch reads every bucket of every partition (`today` at 24 partitions is
about 1,700 hashes of up to a few thousand fields: hundreds of ms of Lua per read). The
aggregator gives each counter hash a version (`keys.partition_counter_version_key`, `epoch:offset`
of the last step that changed it, expiring with it), so a read asks each partition, in one
script, for the versions of the window's buckets and the fields of those whose version is not the
one held. The running sum subtracts a bucket's old fields and adds its new ones, and drops the
buckets that left the window: integers, so the sum is exactly what summing from scratch gives.
A bucket without a version (written by something other than the aggregator's step) is read
every time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

from redis.asyncio import Redis

from services import keys

# KEYS: (version, counter hash) pairs of one partition's buckets; ARGV: the version held for each
# ('' when none). Per pair: the version now ('-' for no hash at all, false for a hash without a
# version), then the hash's fields (flat) when that version is not the one held, else false.
CHANGED_BUCKETS = """
local out = {}
for i = 1, #KEYS, 2 do
  local version = redis.call('GET', KEYS[i])
  if not version and redis.call('EXISTS', KEYS[i + 1]) == 0 then version = '-' end
  out[#out + 1] = version or false
  if version and version == ARGV[(i + 1) / 2] then
    out[#out + 1] = false
  elseif version == '-' then
    out[#out + 1] = {}
  else
    out[#out + 1] = redis.call('HGETALL', KEYS[i + 1])
  end
end
return out
"""

Cell = tuple[int, str, int]  # partition, resolution, bucket start
Fields = dict[bytes, int]
Versions = Callable[[range], Awaitable[list[Any]]]  # partitions -> their version or None each


class RunningSum:
    """Fields summed over a set of buckets, each bucket's own fields kept to subtract them.

    A field stays in the sum while at least one bucket holds it (even at 0), as when every
    bucket is summed anew. The sum is kept split by scope too (`scoped`, what `by_scope` makes
    of `total`, in the same order): a read takes its scopes' dicts instead of splitting
    thousands of fields, and only the fields of a changed bucket are split, once each."""

    def __init__(self) -> None:
        self.total: Fields = {}
        self.scoped: dict[str, dict[str, int]] = {}  # scope -> counter -> sum
        self._holders: dict[bytes, int] = {}  # field -> buckets holding it
        self._cells: dict[Cell, tuple[bytes | None, Fields]] = {}
        # field -> (the one bytes object kept for it, scope, counter), while a bucket holds it
        self._split: dict[bytes, tuple[bytes, str, str]] = {}
        self.partitions: dict[int, Any] = {}  # partition -> its version when last read

    def version(self, cell: Cell) -> bytes | None:
        held = self._cells.get(cell)
        return None if held is None else held[0]

    def cells(self) -> list[Cell]:
        return list(self._cells)

    def holds(self, cell: Cell) -> bool:
        return cell in self._cells

    def put(self, cell: Cell, version: bytes | None, flat: Sequence[bytes]) -> None:
        """The bucket's fields now (`field, value, ...`), replacing what it held."""
        held = self._cells.get(cell)
        if held is not None and self._update(cell, version, held[1], flat):
            return
        self.drop(cell)
        fields: Fields = {}
        hold = self._hold
        values = iter(flat)
        for raw, value in zip(values, values, strict=True):
            number = int(value)
            fields[hold(raw, number)] = number
        self._cells[cell] = (version, fields)

    def _hold(self, raw: bytes, number: int) -> bytes:
        """Add one more bucket's field to the sums; the one bytes object kept for the field."""
        known = self._split.get(raw)
        if known is None:  # a field no bucket held: split once, one bytes object for it
            scope, counter = keys.parse_counter_field(raw.decode())
            self._split[raw] = (raw, scope, counter)
            self.total[raw] = number
            self.scoped.setdefault(scope, {})[counter] = number
            self._holders[raw] = 1
            return raw
        name, scope, counter = known
        self.total[name] += number
        self.scoped[scope][counter] += number
        self._holders[name] += 1
        return name

    def _update(
        self, cell: Cell, version: bytes | None, fields: Fields, flat: Sequence[bytes]
    ) -> bool:
        """Replace a held bucket's fields in place when it still has every field it had (its
        counters only grow in number while it lives): only the fields whose value changed move
        the sums, where a drop and a put would move every field twice. False, having changed
        nothing, when a field is gone (the bucket is then dropped and put)."""
        values = iter(flat)
        pairs = [(raw, int(value)) for raw, value in zip(values, values, strict=True)]
        if len(pairs) < len(fields) or sum(1 for raw, _ in pairs if raw in fields) < len(fields):
            return False
        total, split, scoped = self.total, self._split, self.scoped
        for raw, number in pairs:
            before = fields.get(raw)
            if before is None:  # new in this bucket
                fields[self._hold(raw, number)] = number
            elif before != number:
                name, scope, counter = split[raw]
                total[name] += number - before
                scoped[scope][counter] += number - before
                fields[name] = number  # the key kept is the one bytes object for the field
        self._cells[cell] = (version, fields)
        return True

    def drop(self, cell: Cell) -> None:
        held = self._cells.pop(cell, None)
        if held is None:
            return
        total, holders, split, scoped = self.total, self._holders, self._split, self.scoped
        for name, number in held[1].items():
            left = holders[name] - 1
            _, scope, counter = split[name]
            if left:
                holders[name] = left
                total[name] -= number
                scoped[scope][counter] -= number
            else:
                del holders[name], total[name], split[name]
                counters = scoped[scope]
                del counters[counter]
                if not counters:
                    del scoped[scope]

    def by_scope(self, scopes: Iterable[str]) -> dict[str, dict[str, int]]:
        """`by_scope(total, scopes)`: copies (in C), as the sum changes with the next read."""
        scoped = self.scoped
        return {scope: dict(scoped.get(scope, ())) for scope in scopes}


class WindowSums:
    """One running sum per named window (`15m`, `today`, ...), brought up to date per read.

    A partition whose version (epoch, offset, group steps) is the one it had at the last read,
    and whose buckets in the window are all held, is not asked at all: only its steps and the
    group steps counted in its version write its buckets.
    Unless a held bucket may have expired since (`bucket_ttl_s`, the aggregator's setting)."""

    def __init__(self, redis: Redis, versions: Versions, bucket_ttl_s: int) -> None:
        self.redis = redis
        self.versions = versions
        self.bucket_ttl_s = bucket_ttl_s
        self._sums: dict[str, RunningSum] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def read(
        self,
        name: str,
        cells: Sequence[tuple[str, int]],
        partitions: range,
        now_s: float,
        scopes: Iterable[str],
    ) -> dict[str, dict[str, int]]:
        """The window's counters per scope (`by_scope`) summed over `partitions`, for `cells`
        (resolution, start)."""
        lock = self._locks.setdefault(name, asyncio.Lock())
        async with lock:  # one update of a window at a time: each sees the last one's versions
            held = self._sums.setdefault(name, RunningSum())
            versions = await self.versions(partitions)
            kept = min((s + keys.RESOLUTIONS[r] for r, s in cells), default=0) + self.bucket_ttl_s
            asked = [
                p
                for p in partitions
                if kept <= now_s + 60  # a held bucket may have expired: ask every partition
                or versions[p] is None
                or held.partitions.get(p) != versions[p]
                or not all(held.holds((p, res, start)) for res, start in cells)
            ]
            wanted = [(p, res, start) for p in asked for res, start in cells]
            replies = await self._changed(held, wanted, len(asked), len(cells))
            for p in asked:
                held.partitions[p] = versions[p]
            keep = {(p, res, start) for p in partitions for res, start in cells}
            for cell in held.cells():
                if cell not in keep:
                    held.drop(cell)
            for cell, (version, flat) in zip(wanted, replies, strict=True):
                if flat is not None:
                    held.put(cell, version, flat)
            return held.by_scope(scopes)

    async def _changed(
        self, held: RunningSum, wanted: list[Cell], partitions: int, per_partition: int
    ) -> list[tuple[bytes | None, list[bytes] | None]]:
        """(version now, fields when changed) per wanted cell: one script per partition."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for i in range(partitions):
                names: list[str] = []
                versions: list[bytes | str] = []
                for cell in wanted[i * per_partition : (i + 1) * per_partition]:
                    names += (
                        keys.partition_counter_version_key(*cell),
                        keys.partition_counter_key(*cell),
                    )
                    versions.append(held.version(cell) or "")
                pipe.eval(CHANGED_BUCKETS, len(names), *names, *versions)
            rows = await pipe.execute()
        out: list[tuple[bytes | None, list[bytes] | None]] = []
        for row in rows:
            out += zip(row[0::2], row[1::2], strict=True)
        return out
