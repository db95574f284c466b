"""The alerter's baseline from the SQL history: the same local hour of the week, 4 weeks back."""

from __future__ import annotations

from datetime import datetime, timedelta

from api.alerts.baseline import WEEKS

from .buckets import Segment, VolumeQuery, local_floor
from .reader import HistoryReader
from .sums import Cell, figures


class HistoryBaseline:
    """The alerter's baseline: abandon rate of the same local hour of the week, 4 weeks back."""

    def __init__(self, reader: HistoryReader, weeks: int = WEEKS) -> None:
        self.reader = reader
        self.weeks = weeks

    async def rate(self, channel: str, queue: str | None, at_epoch_s: float) -> float | None:
        """None when those hours hold no contacts (a new install, or a new queue)."""
        zone = self.reader.settings.zone
        hour = local_floor(datetime.fromtimestamp(at_epoch_s, zone), "1h").replace(tzinfo=None)
        cell = Cell(0, 0)
        for week in range(1, self.weeks + 1):
            start = (hour - timedelta(weeks=week)).replace(tzinfo=zone)
            q = VolumeQuery("1h", start, start + timedelta(hours=1), zone, channel, queue)
            seg = Segment(int(start.timestamp()), int(start.timestamp()) + 3600, 0)
            for ch, qu, _, counters in await self.reader._sums(q, seg):
                cell.add(ch, qu, counters)
        out = figures(cell, self.reader.options)
        return out["abandon_rate"] if out["offered"] else None
