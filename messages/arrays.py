"""numpy idioms that every layer needs, written once.

numpy's general forms are slow on the columns here: `np.unique` hashes first (numpy 2), and `%`
on int64 follows Python's floored rules element by element. These give the same answers faster.
"""

from __future__ import annotations

import numpy as np

from ticktape.messages.session import NS_PER_MINUTE


def distinct(values: np.ndarray) -> np.ndarray:
    """The sorted distinct values of an int array (np.unique's answer, by a sort)."""
    values = np.sort(values)
    return values[np.concatenate(([True], values[1:] != values[:-1]))] if len(values) else values


def on_minute(ts: np.ndarray) -> np.ndarray:
    """Whether each int ns time is a whole minute (since the epoch, so in every UTC session)."""
    return ts // NS_PER_MINUTE * NS_PER_MINUTE == ts
