"""`ticktape report`: one self-contained HTML page about a run, from its log alone (DESIGN §15).

`gather` reads the log in one columnar pass into a summary; `charts` turns the summary into
Plotly figures; `page` lays them out with Plotly's script embedded once. Plotly is an optional
extra (`pip install 'ticktape[report]'`), imported only here.
"""

from __future__ import annotations

from pathlib import Path

from ticktape.scenarios.report.gather import RunSummary, gather


def write_report(log: str | Path, out: str | Path, tz: str) -> RunSummary:
    """Write the report of the log at `log` to `out`; returns what it summarised."""
    from ticktape.scenarios.report.page import render

    summary = gather(log, tz)
    Path(out).write_text(render(summary), encoding="utf-8")
    return summary
