"""The report's charts as Plotly figures (plain dicts), drawn from a `RunSummary`.

Every time on a chart is the exchange's wall-clock time (a date axis has no zone), and the
nights, weekends and holidays between sessions are cut out of the axis. Colours keep one meaning
on every chart: green real, blue filled from the backfill, orange forward-filled, red left.
"""

from __future__ import annotations

import base64
import datetime as dt
from typing import Any

import numpy as np

from ticktape.messages.session import NS_PER_MINUTE
from ticktape.scenarios.report.gather import (
    BACKFILLED,
    FORWARD_FILLED,
    GROUPS,
    LEFT,
    OUTCOMES,
    RunSummary,
)

GAP_POINTS = 4000  # markers on the gap timeline; more gaps are counted per symbol and span
GAP_COLUMNS = 120  # spans of sessions in the gap heatmap
COLOURS = {
    "real": "#2f9e44",
    BACKFILLED: "#1c7ed6",
    FORWARD_FILLED: "#f08c00",
    LEFT: "#e03131",
    "no data": "#adb5bd",
    "price": "#343a40",
    "band": "rgba(52, 58, 64, 0.15)",
}
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif"

Figure = dict[str, Any]


def _layout(height: int, **more: Any) -> dict[str, Any]:
    return {
        "height": height,
        "margin": {"l": 70, "r": 30, "t": 30, "b": 50},
        "font": {"family": FONT, "size": 12, "color": "#212529"},
        "paper_bgcolor": "white",
        "plot_bgcolor": "white",
        "hoverlabel": {"font": {"family": FONT}},
        "legend": {"orientation": "h", "y": 1.02, "yanchor": "bottom", "x": 0},
        **more,
    }


def _grid_axis(**more: Any) -> dict[str, Any]:
    return {"gridcolor": "#e9ecef", "linecolor": "#ced4da", "zeroline": False, **more}


def _text_time(ms: float) -> str:
    """A local wall-clock time in ms as the text Plotly's date axes read."""
    return (dt.datetime(1970, 1, 1) + dt.timedelta(milliseconds=ms)).isoformat(sep=" ")


def time_axis(summary: RunSummary, **more: Any) -> dict[str, Any]:
    """A date axis in exchange time that skips the time between sessions."""
    s = summary.sessions
    n = len(s)
    opens = summary.local_ms(np.array(s.open, np.int64), np.arange(n))
    closes = summary.local_ms(np.array(s.close, np.int64), np.arange(n))
    breaks = [
        {"bounds": [_text_time(closes[i]), _text_time(opens[i + 1])]}
        for i in range(n - 1)
        if opens[i + 1] > closes[i]
    ]
    span = [_text_time(opens[0]), _text_time(closes[-1])] if n else None
    return _grid_axis(type="date", rangebreaks=breaks, range=span, **more)


def session_axis(columns: int, most: int = 40, **more: Any) -> dict[str, Any]:
    """A category axis of sessions (or spans of them) with at most about `most` labels."""
    return {
        "type": "category",
        "tickangle": -45 if columns > 8 else 0,
        "dtick": max(1, -(-columns // most)),
        "range": [-0.5, columns - 0.5],
        "automargin": True,
        **more,
    }


def _b64(values: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(values).tobytes()).decode("ascii")


# -- coverage ---------------------------------------------------------------------------------


def session_marks(summary: RunSummary) -> dict[str, list[int]]:
    """Sessions with an early close, a midday break, or no data at all."""
    s = summary.sessions
    expected = summary.expected.max(axis=0, initial=-1) if len(summary.symbols) else []
    marks: dict[str, list[int]] = {"early close": [], "midday break": [], "no data": []}
    for i in range(len(s)):
        if s.early_close[i]:
            marks["early close"].append(i)
        # A break is known from the event, or from a closed session's expecting fewer minutes
        # than it has (a session still open has expected only the minutes so far).
        if s.break_minutes[i] or (s.bars[i] >= 0 and 0 < int(expected[i]) < s.minutes(i)):
            marks["midday break"].append(i)
        if s.bars[i] == 0 or (int(expected[i]) > 0 and summary.real[:, i].max() <= 0):
            marks["no data"].append(i)
    return marks


def coverage(summary: RunSummary) -> Figure:
    """Quality per symbol and session, with the minutes that were not real bars above it."""
    s = summary.sessions
    labels = list(s.labels)
    expected, real = summary.expected, summary.real
    filled, synthetic = summary.filled, summary.synthetic
    reported = expected > 0
    quality = np.where(reported, (real + filled + synthetic) / np.maximum(expected, 1), np.nan)
    gaps = np.zeros(expected.shape, np.int64)
    if len(summary.gap_ts):
        np.add.at(gaps, (summary.gap_symbol, summary.gap_session), 1)
    custom = np.stack([real, filled, synthetic, np.maximum(expected, 0), gaps], axis=-1)
    rows = list(range(len(summary.symbols)))[::-1]  # the first symbol on top
    missing = np.where(reported, expected - real - filled - synthetic, 0).sum(axis=0)
    traces: list[dict[str, Any]] = [
        _bars("filled from the backfill", labels, filled.sum(axis=0), COLOURS[BACKFILLED]),
        _bars("forward-filled", labels, synthetic.sum(axis=0), COLOURS[FORWARD_FILLED]),
        _bars("left missing", labels, missing, COLOURS[LEFT]),
    ]
    top = max(1, int((filled.sum(axis=0) + synthetic.sum(axis=0) + missing).max(initial=0)))
    for name, symbol in (
        ("early close", "diamond"),
        ("midday break", "line-ew-open"),
        ("no data", "x"),
    ):
        at = session_marks(summary)[name]
        traces.append(
            {
                "type": "scatter",
                "mode": "markers",
                "name": name,
                "x": [labels[i] for i in at],
                "y": [top * 1.15] * len(at),
                "marker": {"symbol": symbol, "size": 10, "color": "#495057", "line": {"width": 2}},
                "hovertemplate": f"%{{x}}: {name}<extra></extra>",
                "xaxis": "x",
                "yaxis": "y",
                "showlegend": True,
                "visible": True if at else "legendonly",
            }
        )
    small = quality.size <= 400
    traces.append(
        {
            "type": "heatmap",
            "name": "quality",
            "x": labels,
            "y": [summary.symbols[r] for r in rows],
            "z": np.round(quality[rows], 6).tolist(),
            "customdata": custom[rows].tolist(),
            "zmin": 0.95,
            "zmax": 1.0,
            "colorscale": [
                [0.0, COLOURS[LEFT]],
                [0.8, "#fcc419"],
                [0.98, "#b2f2bb"],
                [1.0, COLOURS["real"]],
            ],
            "colorbar": {
                "title": {"text": "quality"},
                "tickformat": ".0%",
                "len": 0.75,
                "y": 0,
                "yanchor": "bottom",
                "thickness": 14,
            },
            "xgap": 1 if len(labels) <= 60 else 0,
            "ygap": 1 if len(summary.symbols) <= 60 else 0,
            "text": np.where(
                np.isnan(quality), "no data", np.char.mod("%.1f%%", 100 * np.nan_to_num(quality))
            )[rows].tolist()
            if small
            else None,
            "texttemplate": "%{text}" if small else None,
            "hovertemplate": (
                "%{y} · %{x}<br>quality %{z:.2%}<br>real %{customdata[0]} · backfilled "
                "%{customdata[1]} · forward-filled %{customdata[2]}<br>expected "
                "%{customdata[3]} · gaps %{customdata[4]}<extra></extra>"
            ),
            "xaxis": "x",
            "yaxis": "y2",
        }
    )
    height = 180 + max(180, min(1100, 18 * len(summary.symbols)))
    heat_share = 1 - 150 / height
    return {
        "data": [t for t in traces if t is not None],
        "layout": _layout(
            height,
            barmode="stack",
            plot_bgcolor="#f1f3f5",  # a cell with no report shows through as grey
            xaxis=session_axis(len(labels), anchor="y2"),
            yaxis=_grid_axis(
                domain=[heat_share + 0.04, 1], title={"text": "minutes"}, rangemode="tozero"
            ),
            yaxis2={"domain": [0, heat_share], "type": "category", "automargin": True},
        ),
    }


def _bars(name: str, x: list[str], y: np.ndarray, colour: str) -> dict[str, Any]:
    return {
        "type": "bar",
        "name": name,
        "x": x,
        "y": y.tolist(),
        "marker": {"color": colour},
        "hovertemplate": f"%{{x}}: %{{y}} minutes {name}<extra></extra>",
        "xaxis": "x",
        "yaxis": "y",
    }


# -- gaps -------------------------------------------------------------------------------------


def gap_runs(summary: RunSummary) -> dict[str, np.ndarray]:
    """Consecutive missing minutes of one symbol, session and outcome, as one run each, in
    symbol then time order: symbol, session, ts (first minute, ns UTC), minutes, outcome."""
    order = np.lexsort((summary.gap_ts, summary.gap_symbol))
    symbol, ts = summary.gap_symbol[order], summary.gap_ts[order]
    session, outcome = summary.gap_session[order], summary.gap_outcome[order]
    new = np.ones(len(ts), bool)
    new[1:] = (
        (symbol[1:] != symbol[:-1])
        | (session[1:] != session[:-1])
        | (outcome[1:] != outcome[:-1])
        | (ts[1:] - ts[:-1] != NS_PER_MINUTE)
    )
    starts = np.flatnonzero(new)
    minutes = np.diff(np.append(starts, len(ts)))
    return {
        "symbol": symbol[starts],
        "session": session[starts],
        "ts": ts[starts],
        "minutes": minutes,
        "outcome": outcome[starts],
    }


def gap_timeline(summary: RunSummary) -> Figure:
    """Each symbol's gaps on the run's time axis, coloured by what became of them; when there
    are too many to draw one by one, a heatmap of gap minutes per symbol and span of sessions."""
    runs = gap_runs(summary)
    if len(runs["ts"]) > GAP_POINTS:
        return _gap_heatmap(summary, runs)
    symbols = np.array(summary.symbols, object)
    traces = []
    for outcome, name in enumerate(OUTCOMES):
        mine = runs["outcome"] == outcome
        if not mine.any():
            continue
        traces.append(
            {
                "type": "scatter",
                "mode": "markers",
                "name": name,
                "x": summary.local_ms(runs["ts"][mine], runs["session"][mine]),
                "y": symbols[runs["symbol"][mine]].tolist(),
                "text": [f"{m} min" for m in runs["minutes"][mine].tolist()],
                "marker": {
                    "symbol": "line-ns-open",
                    "size": 16,
                    "color": COLOURS[outcome],
                    "line": {"width": 3, "color": COLOURS[outcome]},
                },
                "hovertemplate": "%{y} %{x|%Y-%m-%d %H:%M}: %{text} " + name + "<extra></extra>",
            }
        )
    return {
        "data": traces,
        "layout": _layout(
            _rows_height(summary, 22),
            xaxis=time_axis(summary, title={"text": f"exchange time ({summary.tz})"}),
            yaxis=_symbol_axis(summary),
            showlegend=True,
        ),
    }


def gap_span(summary: RunSummary) -> int:
    """Sessions per column of the gap heatmap."""
    return max(1, -(-len(summary.sessions) // GAP_COLUMNS))


def _gap_heatmap(summary: RunSummary, runs: dict[str, np.ndarray]) -> Figure:
    span = gap_span(summary)
    labels = summary.sessions.labels
    columns = -(-len(labels) // span)
    minutes = np.zeros((len(summary.symbols), columns, len(OUTCOMES)), np.int64)
    np.add.at(minutes, (runs["symbol"], runs["session"] // span, runs["outcome"]), runs["minutes"])
    x = [
        labels[c * span]
        if span == 1
        else f"{labels[c * span]} to {labels[min(len(labels), (c + 1) * span) - 1]}"
        for c in range(columns)
    ]
    rows = list(range(len(summary.symbols)))[::-1]
    total = minutes.sum(axis=2)
    return {
        "data": [
            {
                "type": "heatmap",
                "x": x,
                "y": [summary.symbols[r] for r in rows],
                "z": total[rows],
                "customdata": minutes[rows].tolist(),
                "zmin": 0,
                "colorscale": [[0, "#ffffff"], [1e-9, "#ffe3e3"], [1, "#c92a2a"]],
                "colorbar": {"title": {"text": "gap min"}, "thickness": 14},
                "hovertemplate": (
                    "%{y} · %{x}<br>%{z} gap minutes: %{customdata[0]} left, "
                    "%{customdata[1]} filled from the backfill, %{customdata[2]} forward-filled"
                    "<extra></extra>"
                ),
            }
        ],
        "layout": _layout(
            _rows_height(summary, 18),
            xaxis=session_axis(columns),
            yaxis={"type": "category", "automargin": True},
        ),
    }


def _rows_height(summary: RunSummary, per_row: int) -> int:
    return 130 + max(120, min(900, per_row * len(summary.symbols)))


def _symbol_axis(summary: RunSummary) -> dict[str, Any]:
    return {
        "type": "category",
        "categoryorder": "array",
        "categoryarray": list(summary.symbols)[::-1],
        "range": [-0.5, len(summary.symbols) - 0.5],
        "gridcolor": "#e9ecef",
        "automargin": True,
    }


# -- prices -----------------------------------------------------------------------------------


def price_data(summary: RunSummary) -> dict[str, Any]:
    """What the page's symbol picker draws from: one shared time grid, per symbol the bucket
    closes (and their low and high when a bucket holds more than a minute), its gap runs, and
    derived bars. Arrays are base64 little-endian (float32 prices, float64 ms times)."""
    p = summary.prices
    x = summary.local_ms(p.start, p.session)
    runs = gap_runs(summary)
    run_x = summary.local_ms(runs["ts"], runs["session"])
    symbols: dict[str, Any] = {}
    for i, name in enumerate(summary.symbols):
        mine = runs["symbol"] == i
        entry = {
            "close": _b64(p.close[i].astype("<f4")),
            "gaps": {
                "x": _b64(run_x[mine].astype("<f8")),
                "minutes": runs["minutes"][mine].tolist(),
                "outcome": runs["outcome"][mine].tolist(),
            },
        }
        if p.bucket > 1:
            entry["low"] = _b64(p.low[i].astype("<f4"))
            entry["high"] = _b64(p.high[i].astype("<f4"))
        symbols[name] = entry
    derived = {}
    for d in summary.derived:
        session = np.searchsorted(np.array(summary.sessions.open), d.ts_start, "right") - 1
        dx = summary.local_ms(d.ts_start, session)
        per = {}
        for i, name in enumerate(summary.symbols):
            mine = d.symbol == i
            if mine.any():
                per[name] = {
                    k: _b64(getattr(d, k)[mine].astype("<f4"))
                    for k in ("open", "high", "low", "close")
                } | {"x": _b64(dx[mine].astype("<f8"))}
        derived[str(d.interval)] = {
            "from": summary.sessions.labels[d.first_session] if len(summary.sessions) else "",
            "symbols": per,
        }
    return {
        "x": _b64(x.astype("<f8")),
        "bucket": p.bucket,
        "symbols": symbols,
        "derived": derived,
        "colours": {OUTCOMES[k]: COLOURS[k] for k in (LEFT, BACKFILLED, FORWARD_FILLED)},
        "outcomes": list(OUTCOMES),
    }


def price_layout(summary: RunSummary) -> dict[str, Any]:
    bucket = summary.prices.bucket
    what = "1m close" if bucket == 1 else f"close per {bucket} min: last, low–high"
    return _layout(
        460,
        xaxis=time_axis(summary, title={"text": f"exchange time ({summary.tz})"}, anchor="y2"),
        yaxis=_grid_axis(domain=[0.14, 1], title={"text": what}),
        yaxis2={
            "domain": [0, 0.08],
            "showticklabels": False,
            "showgrid": False,
            "zeroline": False,
            "range": [0, 1],
            "title": {"text": "gaps", "standoff": 4},
            "fixedrange": True,
        },
        showlegend=True,
    )


# -- throughput -------------------------------------------------------------------------------


def throughput(summary: RunSummary) -> Figure:
    """Events committed over wall time (the manifest's progress), and events per session."""
    wall = summary.manifest.get("wall", {})
    points = np.array(wall.get("events", []), float).reshape(-1, 2)
    traces: list[dict[str, Any]] = []
    if len(points):
        traces.append(
            {
                "type": "scatter",
                "mode": "lines+markers",
                "name": "events committed",
                "x": points[:, 1].tolist(),
                "y": points[:, 0].tolist(),
                "line": {"color": COLOURS["price"]},
                "marker": {"size": 4},
                "hovertemplate": "%{x:.3f} s: %{y:,} events<extra></extra>",
                "xaxis": "x",
                "yaxis": "y",
                "showlegend": False,
            }
        )
    labels = list(summary.sessions.labels)
    palette = ("#2f9e44", "#845ef7", "#1c7ed6", "#f08c00", "#868e96", "#c2255c")
    for g, name in enumerate(GROUPS):
        counts = summary.per_session[:, g]
        if counts.any():
            traces.append(
                {
                    "type": "bar",
                    "name": name,
                    "x": labels,
                    "y": counts.tolist(),
                    "marker": {"color": palette[g]},
                    "hovertemplate": f"%{{x}}: %{{y:,}} {name}<extra></extra>",
                    "xaxis": "x2",
                    "yaxis": "y2",
                }
            )
    return {
        "data": traces,
        "layout": _layout(
            380,
            barmode="stack",
            xaxis=_grid_axis(domain=[0, 0.42], title={"text": "wall seconds since the run began"}),
            yaxis=_grid_axis(title={"text": "events committed"}, rangemode="tozero"),
            xaxis2=session_axis(len(labels), 16, domain=[0.55, 1], anchor="y2"),
            yaxis2=_grid_axis(anchor="x2", title={"text": "events"}, rangemode="tozero"),
            legend={"orientation": "v", "x": 1.02, "y": 1, "yanchor": "top"},
            margin={"l": 70, "r": 150, "t": 30, "b": 50},
        ),
    }


def lateness(summary: RunSummary) -> Figure | None:
    """A paced run's lateness percentiles (the manifest's; pacing, never a fact)."""
    late = summary.manifest.get("lateness") or {}
    names = [k for k in ("p50", "p90", "p99", "p99.9", "max") if k in late]
    if not names:
        return None
    ms = [late[k] * 1e3 for k in names]
    return {
        "data": [
            {
                "type": "bar",
                "x": names,
                "y": ms,
                "text": [f"{v:.3g} ms" for v in ms],
                "textposition": "outside",
                "marker": {"color": ["#74c0fc"] * (len(names) - 1) + ["#1c7ed6"]},
                "hovertemplate": "%{x}: %{y:.3f} ms<extra></extra>",
            }
        ],
        "layout": _layout(
            300,
            xaxis={"type": "category"},
            yaxis=_grid_axis(title={"text": "lateness (ms)"}, rangemode="tozero"),
            showlegend=False,
        ),
    }


def rejections(summary: RunSummary) -> Figure | None:
    """Rejected rows per reason (one bar segment per file)."""
    if not summary.rejections:
        return None
    files = sorted({r.file for r in summary.rejections})
    reasons = sorted({r.reason for r in summary.rejections})
    traces = []
    for file in files:
        counts = {r.reason: r.count for r in summary.rejections if r.file == file}
        traces.append(
            {
                "type": "bar",
                "orientation": "h",
                "name": file,
                "y": reasons,
                "x": [counts.get(r, 0) for r in reasons],
                "hovertemplate": f"%{{y}} in {file}: %{{x:,}} rows<extra></extra>",
            }
        )
    return {
        "data": traces,
        "layout": _layout(
            120 + 28 * len(reasons),
            barmode="stack",
            xaxis=_grid_axis(title={"text": "rows rejected"}),
            yaxis={"type": "category", "automargin": True},
            showlegend=len(files) > 1,
        ),
    }
