"""Peak RSS and start-up time of the raw-folder repository over a large generated folder.

    python -m ticktape.scenarios.repository_memory FOLDER SESSIONS

FOLDER is created with 100 symbols x ~100 sessions (one CSV per symbol) when it does not exist.
Each call measures one process: start-up (the folder scan) and the peak RSS after loading the
first SESSIONS sessions in order, as Prefetch does.
"""

from __future__ import annotations

import resource
import sys
import time
from pathlib import Path

T0 = time.perf_counter()

from ticktape.scenarios.demo_data import DemoSpec, generate  # noqa: E402
from ticktape.store.calendar import TradingCalendar  # noqa: E402
from ticktape.store.repository import MarketDataRepository  # noqa: E402

SPEC = DemoSpec(
    symbols=tuple(f"S{i:03d}" for i in range(100)), start="2024-01-02", end="2024-05-24"
)


def main() -> None:
    if len(sys.argv) != 3 or not sys.argv[2].isdigit():
        sys.exit(__doc__)
    folder, count = Path(sys.argv[1]), int(sys.argv[2])
    if not folder.exists():
        generate(folder, SPEC)
        print("generated", folder)
        return
    imported = time.perf_counter()
    repo = MarketDataRepository(folder, None)
    scanned = time.perf_counter()
    sessions = TradingCalendar("XNYS").sessions(SPEC.start, SPEC.end)[:count]
    bars = rejected = 0
    for session in sessions:
        loaded = repo.load_session(session)
        bars += len(loaded.bars)
        rejected += len(loaded.rejected)
    done = time.perf_counter()
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"sessions={len(sessions)} bars={bars} rejected={rejected} import={imported - T0:.2f}s "
        f"startup={scanned - imported:.2f}s load={done - scanned:.2f}s peak_rss={peak_mb:.0f}MB"
    )


if __name__ == "__main__":
    main()
