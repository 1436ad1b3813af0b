"""Scenario: a lossy feed whose gaps are filled from the repository.

The generator writes a complete data set (gap_rate 0: every regular minute has its bar). A copy
of it loses about 2 % of one symbol's regular-hours rows, as a lossy feed would. The run streams
the lossy copy with the complete set as its backfill source: every dropped minute is reported as
a `GapDetected`, then filled from the backfill with the original bar (`GapFilled`, not synthetic),
and every symbol's final quality is 1.0.

Run it with `ticktape run scenarios/scripts/lossy_feed.py` (or `python` on this file).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from ticktape import (
    Bar,
    DerivedBar,
    DerivedBarRevised,
    GapDetected,
    GapFilled,
    QualityUpdated,
    SessionClosed,
    System,
)
from ticktape.scenarios.demo_data import DemoSpec
from ticktape.scenarios.scripting import scenario

ET = "America/New_York"
LOSSY = "BOLT"
DROP_SHARE = 0.02
SPEC = DemoSpec(start="2024-11-26", end="2024-11-27", gap_rate=0.0)


def regular(stamps: pd.Series) -> np.ndarray:
    local = pd.to_datetime(stamps, format="ISO8601", utc=True).dt.tz_convert(ET)
    minute = local.dt.hour * 60 + local.dt.minute
    return ((minute >= 9 * 60 + 30) & (minute < 16 * 60)).to_numpy()


def drop_rows(full: Path, lossy: Path) -> dict[tuple[str, int], tuple]:
    """Copy the data set, dropping ~2 % of LOSSY's regular rows; returns what was dropped."""
    shutil.copytree(full, lossy)
    path = lossy / f"{LOSSY}.csv"
    frame = pd.read_csv(path)
    candidates = np.flatnonzero(regular(frame["timestamp"]))
    rng = np.random.default_rng(2024)
    count = round(len(candidates) * DROP_SHARE)
    dropped = frame.iloc[np.sort(rng.choice(candidates, count, replace=False))]
    frame.drop(index=dropped.index).to_csv(path, index=False, lineterminator="\n")
    ts = pd.to_datetime(dropped["timestamp"], format="ISO8601", utc=True).dt.as_unit("ns")
    values = zip(dropped["open"], dropped["high"], dropped["low"], dropped["close"], strict=True)
    volumes = dropped["volume"].astype(float)
    return {
        (LOSSY, int(t)): (*ohlc, v)
        for t, ohlc, v in zip(ts.astype("int64"), values, volumes, strict=True)
    }


def main() -> None:
    with scenario("lossy", SPEC) as setup:
        lossy = setup.folder / "lossy"
        dropped = drop_rows(setup.data, lossy)  # the full data set is the backfill
        config = setup.config(data=str(lossy), backfill=str(setup.data))
        totals = System(config).run(timeout=60)
        events = list(enumerate(setup.events(digest=totals.digest), 1))
    assert len(dropped) >= 10, "too few rows dropped to mean anything"

    detected = {(e.symbol, e.ts_start): seq for seq, e in events if isinstance(e, GapDetected)}
    filled = {(e.symbol, e.ts_start): (seq, e) for seq, e in events if isinstance(e, GapFilled)}
    assert set(detected) == set(dropped), "gaps other than the dropped minutes, or some missed"
    assert set(filled) == set(dropped), "not every dropped minute was filled"
    for key, seq in detected.items():
        filled_seq, fill = filled[key]
        assert seq < filled_seq, f"{key} was filled before it was detected"
        assert fill.ts >= key[1] + 60_000_000_000, f"{key} was filled before its minute ended"
        assert not fill.synthetic, f"{key} was forward-filled, not backfilled"
        values = (fill.open, fill.high, fill.low, fill.close, fill.volume)
        assert values == dropped[key], f"{key}: filled {values}, dropped {dropped[key]}"

    released = {(e.symbol, e.ts_start) for _, e in events if isinstance(e, Bar)}
    assert not released & set(dropped), "a dropped bar was released as if it were real"
    n_sessions = sum(isinstance(e, SessionClosed) for _, e in events)
    assert n_sessions == 2
    assert len(released) + len(dropped) == 390 * len(SPEC.symbols) * n_sessions

    # Fills come before the derived bar they belong to, so derived bars count them; no revisions.
    derived = [e for _, e in events if isinstance(e, DerivedBar) and e.symbol == LOSSY]
    assert sum(d.filled for d in derived if d.interval == 5) == len(dropped)
    assert all(d.bars == 5 for d in derived if d.interval == 5)
    assert not any(isinstance(e, DerivedBarRevised) for _, e in events)

    final: dict[tuple[str, str], QualityUpdated] = {}
    for _, e in events:
        if isinstance(e, QualityUpdated):
            final[(e.symbol, e.session)] = e
    assert len(final) == len(SPEC.symbols) * n_sessions
    for (symbol, session), q in final.items():
        assert q.quality == 1.0, f"{symbol} {session}: final quality {q.quality}"
        assert q.real + q.filled == q.expected == 390 and q.synthetic == 0, q
    assert sum(q.filled for q in final.values()) == len(dropped)

    print(
        f"lossy_feed: dropped {len(dropped)} of {LOSSY}'s regular rows; {len(detected)} gaps "
        f"detected, {len(filled)} filled from the backfill; final quality 1.0 for "
        f"{', '.join(SPEC.symbols)}; digest {totals.digest[:16]}"
    )


if __name__ == "__main__":
    main()
