"""The session type: a schema type shared by every layer (DESIGN §1)."""

from __future__ import annotations

import msgspec
import numpy as np

NS_PER_MINUTE = 60_000_000_000


class Session(msgspec.Struct, frozen=True):
    """One exchange session. Times are int ns UTC.

    Regular hours are `[open, close)` less the break `[break_start, break_end)` (a midday pause,
    as in Hong Kong or Tokyo; none when the two are equal). The open may fall on the evening
    before the label (overnight futures) and a session may last 24 hours (24/7 calendars).

    `window_start`/`window_end` bound the input rows that belong to the session (extended hours
    included): halfway between the previous close and this open, and between this close and the
    next open.
    """

    label: str  # YYYY-MM-DD
    open: int
    close: int
    early_close: bool
    window_start: int
    window_end: int
    break_start: int = 0
    break_end: int = 0

    @property
    def minutes(self) -> int:
        """Minutes from the open to the close, the break included."""
        return (self.close - self.open) // NS_PER_MINUTE

    @property
    def has_break(self) -> bool:
        return self.break_end > self.break_start

    def regular(self, ts: np.ndarray) -> np.ndarray:
        """Which instants (a bar's start, a tick's time) fall in regular hours."""
        ts = np.asarray(ts, dtype=np.int64)
        inside = (ts >= self.open) & (ts < self.close)
        if self.has_break:
            inside &= (ts < self.break_start) | (ts >= self.break_end)
        return inside
