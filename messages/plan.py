"""A session's release stream, planned ahead by Prefetch and walked by the coordinator."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ticktape.messages.codec import EncodedBatch
from ticktape.messages.columns import BarColumns, QuoteColumns, TradeColumns
from ticktape.messages.session import Session


@dataclass(frozen=True, slots=True)
class SessionPlan:
    """One session's release stream, ready to walk."""

    session: Session
    start: int  # stream start: the open, or the window start with extended hours
    end: int  # the close, or the last extended-hours release after it
    data_end: int  # the last release of any data item; after it the stream is exhausted
    records: EncodedBatch  # every release event, in log order
    record_time: np.ndarray  # release time of each record, non-decreasing
    boundaries: np.ndarray  # minute boundaries where upkeep runs, the close last
    boundary_cuts: np.ndarray  # records released by each boundary (where its findings go)
    bars: BarColumns  # released bars, in release order
    bar_release: np.ndarray
    regular: np.ndarray  # bars inside [open, close): the ones upkeep and quality count
    trades: TradeColumns
    quotes: QuoteColumns
    left_out: int  # input rows outside regular hours, kept out of the stream
