"""The calendar is built only for the years a run needs, and cached; the sessions stay the same."""

from __future__ import annotations

import itertools

import exchange_calendars as xcals
import pytest

from ticktape.store import calendar
from ticktape.store.calendar import CalendarError, TradingCalendar


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TICKTAPE_CACHE", str(tmp_path))
    calendar._table.cache_clear()
    yield tmp_path
    calendar._table.cache_clear()


def _reference(start: str, end: str) -> list[tuple[str, int, int, bool]]:
    """Sessions straight from exchange-calendars, built over a wide range."""
    cal = xcals.get_calendar("XNYS", start="2000-01-01", end="2026-12-31")
    labels = cal.sessions_in_range(start, end)
    return [
        (
            day.strftime("%Y-%m-%d"),
            cal.schedule.loc[day, "open"].value,
            cal.schedule.loc[day, "close"].value,
            day in cal.early_closes,
        )
        for day in labels
    ]


def test_built_and_cached_tables_give_the_exchange_calendars_sessions(fresh_cache) -> None:
    built = TradingCalendar().sessions("2024-11-25", "2024-12-03")
    assert list(fresh_cache.glob("calendars/XNYS-*.npz"))
    calendar._table.cache_clear()  # the next one is read from the cache folder
    cached = TradingCalendar().sessions("2024-11-25", "2024-12-03")
    assert cached == built
    got = [(s.label, s.open, s.close, s.early_close) for s in cached]
    assert got == _reference("2024-11-25", "2024-12-03")
    assert "2024-11-28" not in [s.label for s in cached]  # Thanksgiving
    assert [s.label for s in cached if s.early_close] == ["2024-11-29"]
    for before, after in itertools.pairwise(cached):  # windows meet in the night
        assert before.window_end == after.window_start == (before.close + after.open) // 2


def test_trailing_sessions_reach_back_over_year_ends(fresh_cache) -> None:
    trailing = TradingCalendar().sessions_before("2024-01-05", 300)
    assert len(trailing) == 300
    assert trailing[-1].label == "2024-01-04"
    reference = _reference("2022-01-01", "2024-01-04")[-300:]
    assert [(s.label, s.open, s.close, s.early_close) for s in trailing] == reference


def test_unknown_calendar_and_dates_outside_it_are_one_sentence(fresh_cache) -> None:
    with pytest.raises(CalendarError, match="unknown calendar"):
        TradingCalendar("NOPE").sessions("2024-01-02", "2024-01-02")
    with pytest.raises(CalendarError, match="outside the XNYS calendar"):
        TradingCalendar().sessions("1980-01-02", "1980-01-03")
    with pytest.raises(CalendarError, match="not a date"):
        TradingCalendar().sessions("2024-13-01", "2024-12-01")
