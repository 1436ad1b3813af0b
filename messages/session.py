"""The session type: a schema type shared by every layer (DESIGN §1)."""

from __future__ import annotations

import msgspec

NS_PER_MINUTE = 60_000_000_000


class Session(msgspec.Struct, frozen=True):
    """One exchange session. Times are int ns UTC.

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

    @property
    def minutes(self) -> int:
        return (self.close - self.open) // NS_PER_MINUTE
