"""Scenario: pause and resume in the middle of a session.

A consumer reads `system.events()` through a small bounded output queue. Once it has seen 300
bars it pauses the run. While paused, nothing is logged (the log's `next_seq` stays put) and
nothing reaches the consumer. After resuming, the run goes on from the same simulated time and
completes with every bar; `Paused` and `Resumed` are in the log, in that order, inside the session.

Run it with `ticktape run scenarios/scripts/pause_resume.py` (or `python` on this file).
"""

from __future__ import annotations

import threading
import time

from ticktape import Bar, Event, Paused, Resumed, RunFinished, SessionClosed, SessionOpened, System
from ticktape.scenarios.demo_data import DemoSpec, expected_bars
from ticktape.scenarios.scripting import scenario

DAY = "2024-11-26"
SPEC = DemoSpec(start=DAY, end=DAY, extended_hours=False)
PAUSE_AFTER_BARS = 300
SETTLE = 0.5  # seconds for the step in hand when the pause came to be logged
HOLD = 0.5  # seconds to watch a paused run for activity
TIMEOUT = 30.0


def main() -> None:
    with scenario("pause", SPEC) as setup:
        # a small, bounded queue: the run cannot get far ahead of the consumer
        config = setup.config(output_queue=2, step_minutes=1)
        seen: list[Event] = []
        paused_seen = threading.Event()

        with System(config) as system:

            def consume() -> None:
                bars = 0
                for event in system.events():
                    seen.append(event)
                    if isinstance(event, Bar):
                        bars += 1
                        if bars == PAUSE_AFTER_BARS:
                            system.pause()
                    elif isinstance(event, Paused):
                        paused_seen.set()

            system.start()
            consumer = threading.Thread(target=consume, name="consumer", daemon=True)
            consumer.start()
            assert paused_seen.wait(TIMEOUT), "the pause never reached the event stream"
            time.sleep(SETTLE)  # the step in hand is written, then everything stops
            logged, delivered = system.log.next_seq, len(seen)
            time.sleep(HOLD)
            assert system.log.next_seq == logged, (
                f"{system.log.next_seq - logged} events logged while paused"
            )
            assert len(seen) == delivered, "events were delivered while paused"
            assert consumer.is_alive(), "the run ended while paused"
            system.resume()
            consumer.join(TIMEOUT)
            assert not consumer.is_alive(), "the run did not finish after resume"
            totals = system.wait(timeout=TIMEOUT)
        logged_events = setup.events(digest=totals.digest)

    assert seen == logged_events, "the consumer saw something other than the log"
    kinds = [type(e).__name__ for e in seen]
    assert kinds.count("Paused") == 1 and kinds.count("Resumed") == 1, kinds
    i_paused, i_resumed = kinds.index("Paused"), kinds.index("Resumed")
    i_open = next(i for i, e in enumerate(seen) if isinstance(e, SessionOpened))
    i_close = next(i for i, e in enumerate(seen) if isinstance(e, SessionClosed))
    assert i_open < i_paused < i_resumed < i_close, "the pause was not in mid-session"
    paused, resumed = seen[i_paused], seen[i_resumed]
    assert isinstance(paused, Paused) and isinstance(resumed, Resumed)
    assert paused.ts == resumed.ts, "simulated time moved while paused"
    # Between Paused and Resumed at most the step that was in hand, nothing later than the pause.
    assert all(e.ts <= paused.ts for e in seen[i_paused:i_resumed]), "time moved while paused"

    bars = [e for e in seen if isinstance(e, Bar)]
    want = expected_bars(SPEC)
    assert len(bars) == len(want) == totals.bars, (len(bars), len(want))
    assert sum(isinstance(e, Bar) for e in seen[:i_paused]) >= PAUSE_AFTER_BARS
    assert isinstance(seen[-1], RunFinished) and seen[-1].bars == len(bars)

    print(
        f"pause_resume: paused after {sum(isinstance(e, Bar) for e in seen[:i_paused])} bars, "
        f"nothing logged for {HOLD:.1f} s while paused, resumed; {len(bars)} bars, "
        f"{len(seen)} events; digest {totals.digest[:16]}"
    )


if __name__ == "__main__":
    main()
