"""What was read from each partition, kept while the partition's version (epoch, offset, group
steps) is the one it was read at.

Only a partition's step writes its gauges (waiting and open contacts) and its scopes, in the
same atomic step as its offset (aggregator/apply.lua), and neither expires: a partition whose
version did not change since a read holds what that read returned, which is what the shared
documents already rely on (api/shared_reads.py). A partition without a version (state written
by something else) is read every time.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class PartitionCache(Generic[T]):
    def __init__(self) -> None:
        self._held: dict[int, tuple[Any, Hashable, T]] = {}  # partition -> version, question, value

    def stale(self, partitions: range, versions: list[Any], question: Hashable) -> list[int]:
        """The partitions to read again for `question`: no version, another version, another
        question, or never read."""
        held = self._held
        for partition in [p for p in held if p not in partitions]:
            del held[partition]
        return [
            p
            for p in partitions
            if versions[p] is None
            or (known := held.get(p)) is None
            or known[0] != versions[p]
            or known[1] != question
        ]

    def put(self, partition: int, version: Any, question: Hashable, value: T) -> None:
        self._held[partition] = (version, question, value)

    def question(self, partition: int) -> Hashable:
        return self._held[partition][1]

    def value(self, partition: int) -> T:
        return self._held[partition][2]
