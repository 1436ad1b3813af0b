"""Cutting a raw CSV into blocks never changes which line a row is on."""

from __future__ import annotations

from pathlib import Path

from ticktape.store.calendar import TradingCalendar
from ticktape.store.repository import MarketDataRepository

DAY = "2024-03-05"


def test_a_block_cut_between_cr_and_lf_does_not_shift_line_numbers(tmp_path: Path) -> None:
    rows = [f"AAA,2024-03-05T14:{30 + i:02d}:00Z,10,11,9,10.5,{100 + i}" for i in range(20)]
    text = "\r\n".join(["symbol,timestamp,open,high,low,close,volume", *rows]) + "\r\n"
    (tmp_path / "AAA.csv").write_bytes(text.encode())
    session = TradingCalendar("XNYS").sessions(DAY, DAY)[0]
    expected = list(range(2, 22))  # the header is line 1
    for block_bytes in range(30, 80):  # every place a cut can fall within a line
        repo = MarketDataRepository(tmp_path, ["AAA"], block_bytes=block_bytes)
        loaded = repo.load_session(session)
        assert loaded.rejected == (), block_bytes
        assert loaded.bars.source.tolist() == expected, block_bytes
        assert loaded.bars.volume.tolist() == [100 + i for i in range(20)], block_bytes
