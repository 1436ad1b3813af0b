"""Query results people can use: numpy columns, or Arrow and pandas with symbol names and
tz-aware timestamps. pyarrow and pandas load only when a conversion is asked for."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

TIME_FIELDS = ("ts", "ts_start", "ts_end")
_INTERNAL = ("source",)  # the row's place in the input: for the tie order, not for people


def timestamp(ns: int, tz: str = "UTC") -> pd.Timestamp:
    """An int of ns UTC (every time inside ticktape) as a tz-aware pandas Timestamp."""
    import pandas as pd

    return pd.Timestamp(int(ns), unit="ns", tz="UTC").tz_convert(tz)


class Columns:
    """A query's answer: one numpy array per field (`result.close`, `result.ts_start`; symbols
    as ids into the run's symbols), `len(result)`, `to_arrow()` and `to_pandas()`."""

    def __init__(self, columns: Any, symbols: tuple[str, ...]) -> None:
        self.columns = columns
        self.symbols = symbols

    def __getattr__(self, name: str) -> np.ndarray:
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(self.columns, name)

    def __len__(self) -> int:
        return len(self.columns)

    def __repr__(self) -> str:
        return f"<{type(self.columns).__name__}: {len(self)} rows>"

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(f for f in self.columns.__slots__ if f not in _INTERNAL)

    def to_arrow(self) -> pa.Table:
        """Symbol names (not ids), times as timestamp[ns, UTC]."""
        import pyarrow as pa

        arrays = {}
        for name in self.fields:
            values = getattr(self.columns, name)
            if name == "symbol":
                arrays[name] = pa.array(np.asarray(self.symbols, dtype=object)[values], pa.string())
            elif name in TIME_FIELDS:
                arrays[name] = pa.array(values, pa.int64()).cast(pa.timestamp("ns", tz="UTC"))
            else:
                arrays[name] = pa.array(values)
        return pa.table(arrays)

    def to_pandas(self, tz: str = "UTC") -> pd.DataFrame:
        """A DataFrame with symbol names and tz-aware times (in `tz`, e.g. the exchange's)."""
        import pandas as pd

        frame = pd.DataFrame({name: getattr(self.columns, name) for name in self.fields})
        if "symbol" in frame:
            frame["symbol"] = np.asarray(self.symbols, dtype=object)[frame["symbol"].to_numpy()]
        for name in TIME_FIELDS:
            if name in frame:
                frame[name] = pd.to_datetime(frame[name], unit="ns", utc=True).dt.tz_convert(tz)
        return frame
