"""The same bars through NautilusTrader's BacktestEngine, for `ticktape bench --peers`.

NautilusTrader is the optional extra `peers`: it is imported here only, and this module is imported
only by the bench. The strategy counts bars and does nothing else, so the figure is the engine's
cost of loading and delivering bars. Bars are stamped at their END for Nautilus (its convention:
a bar event happens when the bar closes), which is when ticktape releases them too.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from nautilus_trader.backtest.engine import BacktestEngine, BacktestEngineConfig
from nautilus_trader.config import LoggingConfig
from nautilus_trader.model.currencies import USD
from nautilus_trader.model.data import Bar, BarType
from nautilus_trader.model.enums import AccountType, OmsType
from nautilus_trader.model.identifiers import Venue
from nautilus_trader.model.objects import Money
from nautilus_trader.persistence.wranglers import BarDataWrangler
from nautilus_trader.test_kit.providers import TestInstrumentProvider
from nautilus_trader.trading.strategy import Strategy

VENUE = "XNAS"
_BAR_COLUMNS = ["open", "high", "low", "close", "volume"]


class BarCounter(Strategy):
    """Subscribes to every bar type and counts what it is handed."""

    def __init__(self, bar_types: list[BarType]) -> None:
        super().__init__()
        self.bar_types = bar_types
        self.bars = 0

    def on_start(self) -> None:
        for bar_type in self.bar_types:
            self.subscribe_bars(bar_type)

    def on_bar(self, bar: Bar) -> None:
        self.bars += 1


def run_nautilus(data: Path, symbols: tuple[str, ...]) -> int:
    """Load `<SYM>.csv` for each symbol, replay every bar through a BacktestEngine; bars seen."""
    engine = BacktestEngine(BacktestEngineConfig(logging=LoggingConfig(log_level="ERROR")))
    engine.add_venue(
        Venue(VENUE),
        oms_type=OmsType.NETTING,
        account_type=AccountType.CASH,
        starting_balances=[Money(1_000_000, USD)],
    )
    bar_types, bars = [], []
    for symbol in symbols:
        instrument = TestInstrumentProvider.equity(symbol, VENUE)
        engine.add_instrument(instrument)
        bar_type = BarType.from_str(f"{instrument.id}-1-MINUTE-LAST-EXTERNAL")
        frame = pd.read_csv(data / f"{symbol}.csv")
        frame.index = pd.to_datetime(frame["timestamp"], utc=True) + pd.Timedelta(minutes=1)
        bars += BarDataWrangler(bar_type, instrument).process(frame[_BAR_COLUMNS])
        bar_types.append(bar_type)
    engine.add_data(bars)  # sorted by the engine
    counter = BarCounter(bar_types)
    engine.add_strategy(counter)
    engine.run()
    engine.dispose()
    return counter.bars
