"""The clock every test reads: the wall clock shifted like the stack's clock.

Every process of a run and every test get the same `CCPULSE_CLOCK_OFFSET_SECONDS`.

`make test-clock` runs the suite with the offset that puts "now" at chosen instants (DST nights,
year end, a Sunday just before midnight); tests build their data around this clock, never around
`time.time()`, so the processes they start and the data they post agree on what "now" is.
"""

from __future__ import annotations

import os

from services.clock import SystemClock

OFFSET_S = float(os.environ.get("CCPULSE_CLOCK_OFFSET_SECONDS") or 0)
clock = SystemClock(OFFSET_S)
