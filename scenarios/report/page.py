"""The report's one HTML page: the run's facts as text, the charts as Plotly figures, Plotly's
script embedded once, nothing fetched from the network (DESIGN §15).

The layout is `page.html` (a `string.Template`), styled by `page.css`; `page.js` draws the
figures and the price chart of the symbol picked.
"""

from __future__ import annotations

import datetime as dt
import html
from pathlib import Path
from string import Template
from typing import Any

import numpy as np

from ticktape.scenarios.report import charts
from ticktape.scenarios.report.gather import OUTCOMES, RunSummary

GAP_ROWS = 200  # gap runs listed in the table under the timeline
_HERE = Path(__file__).parent


def _e(value: object) -> str:
    return html.escape(str(value))


def _json(value: Any) -> str:
    """JSON for a <script> element: numpy arrays as Plotly's typed arrays, no `</` inside."""
    from plotly.io.json import to_json_plotly

    return to_json_plotly(value).replace("</", "<\\/")


def _local(summary: RunSummary, ts: int, session: int, fmt: str = "%Y-%m-%d %H:%M") -> str:
    ms = float(summary.local_ms(np.array([ts]), np.array([session]))[0])
    return (dt.datetime(1970, 1, 1) + dt.timedelta(milliseconds=ms)).strftime(fmt)


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.2f} s"
    if seconds >= 86_400:
        return f"{seconds / 3600:,.0f} h"
    hours, minutes = divmod(round(seconds / 60), 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min"


def _table(head: list[str], rows: list[list[str]], cls: str = "") -> str:
    """Cells are HTML already (escape before)."""
    th = "".join(f"<th>{h}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f'<table class="{cls}"><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>'


def _card(label: str, value: str, note: str = "") -> str:
    note = f'<div class="note">{_e(note)}</div>' if note else ""
    return (
        f'<div class="card"><div class="label">{_e(label)}</div>'
        f'<div class="value">{_e(value)}</div>{note}</div>'
    )


# -- the run ----------------------------------------------------------------------------------


def _verdict(summary: RunSummary) -> str:
    v = summary.verify
    if v.ok:
        return (
            '<span class="badge ok">verify: intact</span> the hash chain checks out over all '
            f"{v.events:,} events"
        )
    if not v.first_bad_seq:  # a run set names its shards in the reason
        return f'<span class="badge bad">verify: failed</span> {_e(v.reason)}'
    return (
        f'<span class="badge bad">verify: broken at seq {v.first_bad_seq}</span> {_e(v.reason)}. '
        f"The first {v.events:,} events check out; nothing from seq {v.first_bad_seq} on can be "
        "trusted."
    )


def _state(summary: RunSummary) -> str:
    return {"finished": "finished", "stopped": "stopped by the user"}.get(
        summary.finished, "not finished (still running, or it died)"
    )


def _cards(summary: RunSummary) -> str:
    s, manifest = summary.sessions, summary.manifest
    filled = int(summary.filled.sum() + summary.synthetic.sum())
    expected = int(np.maximum(summary.expected, 0).sum())
    real = int(np.maximum(summary.real, 0).sum())
    quality = f"quality {(real + filled) / expected:.3%}" if expected else ""
    simulated = sum(s.close[i] - s.open[i] for i in range(len(s))) / 1e9
    wall = manifest.get("wall", {}).get("seconds")
    speed = float(manifest.get("config", {}).get("speed", 0) or 0)
    return "".join(
        [
            _card("sessions", f"{len(s):,}", f"{s.labels[0]} to {s.labels[-1]}" if len(s) else ""),
            _card("symbols", f"{len(summary.symbols):,}"),
            _card("1m bars released", f"{summary.kinds.get('Bar', 0):,}", quality),
            _card("gaps", f"{len(summary.gap_ts):,}", f"{filled:,} filled"),
            _card("rows rejected", f"{sum(r.count for r in summary.rejections):,}"),
            _card("events", f"{summary.events:,}", _state(summary)),
            _card(
                "wall time",
                "-" if wall is None else _duration(wall),
                f"paced at {speed:g}x" if speed else "as fast as it goes",
            ),
            _card("simulated time", _duration(simulated), "open to close, summed"),
        ]
    )


def _facts(summary: RunSummary) -> str:
    settings, manifest = summary.settings, summary.manifest
    config = manifest.get("config", {})
    speed = float(config.get("speed", 0) or 0)
    backfill = settings.get("backfill")
    facts = {
        "log": _e(summary.path),
        "digest": f'<code class="digest">{_e(summary.digest)}</code>',
        "state": _e(_state(summary)),
        "calendar": _e(f"{settings.get('calendar', '')} ({summary.tz})"),
        "dates": _e(f"{settings.get('start', '')} to {settings.get('end', '')}"),
        "extended hours": _e("kept" if settings.get("extended_hours") else "left out"),
        "derived bars": _e(", ".join(f"{m}m" for m in settings.get("derived", ())) or "none"),
        "trailing days": _e(settings.get("trailing_days", 0)),
        "gap policy": _e(settings.get("gap_policy", "")),
        "backfill": _e(f"yes, {settings.get('fill_retries', 0)} retries" if backfill else "no"),
        "bar label": _e(settings.get("label", "")),
        "speed": _e(f"{speed:g}x" if speed else "0 (data-driven)"),
        "sync": _e(config.get("sync", "")),
        "data": _e(config.get("data", "")),
        "backfill folder": _e(config.get("backfill") or "-"),
        "inputs": _e(f"{len(manifest.get('inputs', {}))} files (sha256 in the manifest)"),
        "started": _e(manifest.get("wall", {}).get("started") or manifest.get("created", "")),
        "host, code": _e(
            f"{manifest.get('host', '-')}, ticktape {manifest.get('code_version', '-')}"
        ),
        "resumed": _e(len(manifest.get("resumes", [])) or "no"),
        "rows outside regular hours": _e(f"{sum(summary.sessions.left_out):,}"),
        "events by kind": _e(", ".join(f"{k} {n:,}" for k, n in summary.kinds.items())),
    }
    return "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in facts.items())


def _sessions(summary: RunSummary) -> str:
    s = summary.sessions
    marks = charts.session_marks(summary)
    rows = []
    for i in range(len(s)):
        hours = (
            f"{_local(summary, s.open[i], i, '%H:%M')}–{_local(summary, s.close[i], i, '%H:%M')}"
        )
        if s.break_minutes[i]:
            pause = _local(summary, s.break_start[i], i, "%H:%M")
            hours += f", break {pause} for {s.break_minutes[i]} min"
        rows.append(
            [
                _e(s.labels[i]),
                _e(hours),
                f"{s.bars[i]:,}" if s.bars[i] >= 0 else "not closed",
                f"{s.left_out[i]:,}",
                _e(", ".join(name for name, at in marks.items() if i in at)),
            ]
        )
    head = ["session", f"hours ({_e(summary.tz)})", "1m bars", "rows left out", "marked"]
    return _table(head, rows, "sessions")


def _session_at(opens: np.ndarray, ts: int) -> int:
    return max(0, int(np.searchsorted(opens, ts, "right")) - 1)


def _controls(summary: RunSummary) -> str:
    if not summary.controls:
        return ""
    opens = np.array(summary.sessions.open, np.int64)
    rows = [
        [_e(kind), _e(_local(summary, ts, _session_at(opens, ts), "%Y-%m-%d %H:%M:%S")), _e(detail)]
        for kind, ts, detail in summary.controls
    ]
    return "<h3>Controls and failures</h3>" + _table(["event", "simulated time", "detail"], rows)


def _shards(summary: RunSummary) -> str:
    """A run set's shards, as its manifest records them."""
    shards = summary.manifest.get("shards")
    if not shards:
        return ""
    rows = [
        [
            f"{s['index']}",
            _e(f"{s['sessions'][0]} to {s['sessions'][-1]}" if s["sessions"] else ""),
            _e(s["state"]),
            f"{s['events']:,}",
            f"<code>{_e(s['digest'][:16])}…</code>" if s["digest"] else "",
            _e(s.get("error", "")),
        ]
        for s in shards
    ]
    head = ["shard", "sessions", "state", "events", "digest", "error"]
    return f"<h3>Run set: {len(shards)} shards</h3>" + _table(head, rows)


def _run(summary: RunSummary) -> str:
    chips = " ".join(f"<span class='chip'>{_e(x)}</span>" for x in summary.symbols)
    return f"""<section id="run">
  <p class="verdict">{_verdict(summary)}</p>
  <div class="cards">{_cards(summary)}</div>
  <div class="two">
    <div><h3>Settings and manifest</h3><table class="facts">{_facts(summary)}</table></div>
    <div><h3>Symbols</h3><p class="chips">{chips}</p>
      <h3>Sessions</h3><div class="scroll">{_sessions(summary)}</div></div>
  </div>
  {_shards(summary)}
  {_controls(summary)}
</section>"""


# -- the other sections -----------------------------------------------------------------------


def _gaps_table(summary: RunSummary) -> str:
    runs = charts.gap_runs(summary)
    order = np.argsort(runs["ts"], kind="stable")[:GAP_ROWS]
    rows = []
    for i in order.tolist():
        outcome = int(runs["outcome"][i])
        rows.append(
            [
                _e(summary.symbols[runs["symbol"][i]]),
                _e(summary.sessions.labels[runs["session"][i]]),
                _e(_local(summary, int(runs["ts"][i]), int(runs["session"][i]))),
                f"{int(runs['minutes'][i])}",
                f'<span class="dot o{outcome}"></span>{_e(OUTCOMES[outcome])}',
            ]
        )
    head = ["symbol", "session", f"first missing minute ({_e(summary.tz)})", "minutes", "became"]
    more = len(runs["ts"]) - len(rows)
    if more > 0:
        rows.append(
            [
                "",
                "",
                f"and {more:,} more (<code>ticktape log show LOG --kind GapDetected</code>)",
                "",
                "",
            ]
        )
    if not rows:
        return "<p>No gaps: every expected minute had a bar.</p>"
    return _table(head, rows, "gaps")


def _rejections(summary: RunSummary) -> str:
    if not summary.rejections:
        return "<p>No input row was rejected.</p>"
    rows = [
        [
            f"<code>{_e(r.reason)}</code>",
            _e(r.file),
            f"{r.count:,}",
            _e(", ".join(f"line {row}" + (f" ({sym})" if sym else "") for row, sym in r.rows)),
        ]
        for r in summary.rejections
    ]
    chart = '<div id="rejections-chart" class="chart"></div>'
    return chart + _table(["reason", "file", "rows", "first rows"], rows)


def _lateness(summary: RunSummary, drawn: bool) -> str:
    if not drawn:
        return "<p class='note'>A data-driven run (speed 0) is not paced: it has no lateness.</p>"
    releases = summary.manifest["lateness"].get("releases", 0)
    return (
        '<h3>Lateness of paced releases</h3><div id="lateness" class="chart"></div>'
        f"<p class='note'>Wall time of each release minus the time it was due, over "
        f"{releases:,.0f} releases; each figure is the upper edge of a histogram bucket (buckets "
        "12% apart), from the manifest (pacing is never a fact of the log).</p>"
    )


def _prices_note(summary: RunSummary) -> str:
    bucket = summary.prices.bucket
    what = (
        "Each 1m close"
        if bucket == 1
        else f"The 1m close per {bucket} minutes (the last close, and a band from the lowest to "
        "the highest)"
    )
    outside = summary.prices.outside_hours
    return (
        f"{what}, with the gaps marked below it (and shaded when there are few). Derived bars of "
        "the latest sessions are drawn on demand."
        + (f" {outside:,} bars outside regular hours are not drawn." if outside else "")
    )


def render(summary: RunSummary) -> str:
    """The whole page as one string."""
    from plotly.offline import get_plotlyjs

    figures: dict[str, Any] = {
        "coverage-chart": charts.coverage(summary),
        "gap-timeline": charts.gap_timeline(summary),
        "throughput-chart": charts.throughput(summary),
    }
    late = charts.lateness(summary)
    if late is not None:
        figures["lateness"] = late
    rejected = charts.rejections(summary)
    if rejected is not None:
        figures["rejections-chart"] = rejected
    per_span = len(charts.gap_runs(summary)["ts"]) > charts.GAP_POINTS
    span = charts.gap_span(summary)
    gaps_note = (
        " Too many to draw one by one: each cell counts a symbol's gap minutes "
        + ("in a session" if span == 1 else f"over {span} sessions")
        + "; hover for what became of them."
        if per_span
        else ""
    )
    template = Template((_HERE / "page.html").read_text(encoding="utf-8"))
    return template.substitute(
        title=_e(f"ticktape report · {summary.path}"),
        css=(_HERE / "page.css").read_text(encoding="utf-8"),
        plotly=get_plotlyjs(),
        path=_e(summary.path),
        digest=_e(summary.digest),
        run=_run(summary),
        gaps_note=gaps_note,
        gaps_table=_gaps_table(summary),
        prices_note=_e(_prices_note(summary)),
        symbol_options="".join(f"<option>{_e(x)}</option>" for x in summary.symbols),
        derived_options="".join(
            f'<option value="{d.interval}">{d.interval}m</option>' for d in summary.derived
        ),
        rejections=_rejections(summary),
        wall_note=""
        if summary.manifest.get("wall")
        else (" (this log's manifest has no wall-clock progress: an older ticktape wrote it)"),
        lateness=_lateness(summary, late is not None),
        figures=_json(figures),
        price_data=_json(charts.price_data(summary)),
        price_layout=_json(charts.price_layout(summary)),
        script=(_HERE / "page.js").read_text(encoding="utf-8"),
    )
