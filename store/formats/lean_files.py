"""LEAN's data folders as files: where a zip sits says what it holds, the data root says its zone.

LEAN (QuantConnect's engine) lays out minute and tick data as
`{security}/{market}/{resolution}/{symbol}/{yyyymmdd}_{trade|quote}.zip`, each zip holding one
headerless CSV (`{yyyymmdd}_{symbol}_minute_trade.csv`, `{yyyymmdd}_{symbol}_Trade_Tick.csv`).
Times are milliseconds since midnight in the market's *data* time zone, which the data root's
`market-hours/market-hours-database.json` gives per `{Security}-{market}-{SYMBOL}` entry (with
`{Security}-{market}-[*]` as the default); it is not always the exchange's zone (US indices are
Chicago, crypto and CME futures UTC).
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import zipfile
import zlib
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np

from ticktape.messages import rejections as why
from ticktape.store.formats.vendor import Unusable

MARKET_HOURS = Path("market-hours") / "market-hours-database.json"
# folder name -> the security type LEAN's market hours database names; the ones whose zips hold
# one CSV per day and symbol
SECURITY_TYPES = {
    "equity": "Equity",
    "index": "Index",
    "crypto": "Crypto",
    "cryptofuture": "CryptoFuture",
    "forex": "Forex",
    "cfd": "Cfd",
}
SCALED = frozenset({"equity"})  # prices written in units of 1/10,000 (LEAN's equity scale)
RESOLUTIONS = ("minute", "tick")
_FILE = re.compile(r"^(\d{8})_(trade|quote)\.zip$")
_NS_PER_MS = 1_000_000
_NS_PER_S = 1_000_000_000


@dataclass(frozen=True, slots=True)
class LeanPath:
    """What a zip's place in the data root says about it."""

    security: str  # folder name: equity, index, ...
    market: str
    resolution: str  # minute | tick
    symbol: str  # upper case, as the project names symbols
    day: date
    tick_type: str  # trade | quote

    @property
    def member(self) -> str:
        """The CSV the zip must hold (compared without case): LEAN names a tick file
        `{date}_{symbol}_{type}_tick.csv`, a bar file `{date}_{symbol}_{resolution}_{type}.csv`."""
        stamp = self.day.strftime("%Y%m%d")
        last = (
            (self.tick_type, "tick")
            if self.resolution == "tick"
            else (self.resolution, self.tick_type)
        )
        return f"{stamp}_{self.symbol}_{last[0]}_{last[1]}.csv".lower()


def data_root(folder: Path) -> Path | None:
    """The LEAN data root at or above `folder`: the folder holding the market hours database."""
    for candidate in (folder.resolve(), *folder.resolve().parents):
        if (candidate / MARKET_HOURS).is_file():
            return candidate
    return None


def resolved(paths: list[Path]) -> list[Path]:
    """`path.resolve()` of each path, each folder resolved once: a data root holds thousands of
    zips in a few folders."""
    folders: dict[Path, Path] = {}
    real = []
    for path in paths:
        if path.is_symlink():
            real.append(path.resolve())
            continue
        if path.parent not in folders:
            folders[path.parent] = path.parent.resolve()
        real.append(folders[path.parent] / path.name)
    return real


def parse_path(relative: tuple[str, ...]) -> LeanPath | None:
    """A zip's path relative to the data root, or None when LEAN's layout has no such file."""
    if len(relative) != 5:
        return None
    security, market, resolution, symbol, name = relative
    found = _FILE.match(name.lower())
    if security.lower() not in SECURITY_TYPES or resolution.lower() not in RESOLUTIONS or not found:
        return None
    stamp = found.group(1)
    try:
        day = date(int(stamp[:4]), int(stamp[4:6]), int(stamp[6:]))  # strptime costs 10x
    except ValueError:
        return None
    return LeanPath(
        security.lower(), market.lower(), resolution.lower(), symbol.upper(), day, found.group(2)
    )


@cache
def _zones(database: Path) -> dict[str, str]:
    entries = json.loads(database.read_text())["entries"]
    return {key: entry["dataTimeZone"] for key, entry in entries.items()}


def data_zone(root: Path, where: LeanPath) -> str | None:
    """The data time zone of a symbol's market, from the root's market hours database."""
    zones = _zones(root / MARKET_HOURS)
    prefix = f"{SECURITY_TYPES[where.security]}-{where.market}-"
    return zones.get(prefix + where.symbol) or zones.get(prefix + "[*]")


@cache
def day_bounds(day: date, zone: str) -> tuple[int, int]:
    """ns UTC of the day's midnight and the next midnight in `zone`."""
    tz = ZoneInfo(zone)
    start = datetime(day.year, day.month, day.day, tzinfo=tz)
    end = datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=tz)
    return int(start.timestamp()) * _NS_PER_S, int(end.timestamp()) * _NS_PER_S


def ms_to_ns(ms: np.ndarray, days: list[tuple[date, str]], owner: np.ndarray) -> np.ndarray:
    """Milliseconds since the local midnight of each row's day (`days[owner]`: a day and its
    zone) to ns UTC; a day with an offset change (a daylight saving day) takes each row's offset
    from its local hour."""
    local = [_day_offsets(day, zone) for day, zone in days]
    midnight = np.array([m for m, _ in local], dtype=np.int64)
    ns = midnight[owner] + ms.astype(np.int64) * _NS_PER_MS
    changes = np.array([offsets - offsets[0] for _, offsets in local]).reshape(-1, 24)
    if not changes.any():
        return ns
    hour = np.clip(ms // 3_600_000, 0, 23).astype(np.int64)
    return ns - changes[owner, hour] * _NS_PER_S


@cache
def _day_offsets(day: date, zone: str) -> tuple[int, np.ndarray]:
    """The day's midnight (ns UTC) and the zone's UTC offset (s) at each local hour."""
    tz = ZoneInfo(zone)
    offsets = [
        datetime(day.year, day.month, day.day, hour, tzinfo=tz).utcoffset().total_seconds()  # type: ignore[union-attr]
        for hour in range(24)
    ]
    return day_bounds(day, zone)[0], np.array(offsets, dtype=np.int64)


@dataclass(frozen=True, slots=True)
class ZipCheck:
    """Why a zip cannot be used ("" if it can), from its directory alone. A zip of at most
    `READ_WHOLE` bytes is read once, whole: its sha256 comes with the verdict, and its archive,
    open over those bytes, for `read_member` (a minute zip is opened and read once, not three
    times)."""

    reason: str
    sha256: str = ""  # "" when the file was not read whole
    archive: zipfile.ZipFile | None = None
    size: int = 0  # bytes the archive holds


READ_WHOLE = 1 << 20


def check_zip(path: Path, where: LeanPath) -> ZipCheck:
    sha256 = ""
    try:
        if path.stat().st_size > READ_WHOLE:
            with zipfile.ZipFile(path) as archive:
                names = [n.lower() for n in archive.namelist()]
            kept = None
        else:
            data = path.read_bytes()
            sha256 = hashlib.sha256(data).hexdigest()
            kept = zipfile.ZipFile(io.BytesIO(data))
            names = [n.lower() for n in kept.namelist()]
    except (zipfile.BadZipFile, OSError, EOFError):
        return ZipCheck(why.DAMAGED_ZIP, sha256)
    if where.member not in names:
        return ZipCheck(why.WRONG_ZIP_MEMBER, sha256)
    return ZipCheck("", sha256, kept, len(data) if kept else 0)


def read_member(source: Path | zipfile.ZipFile, where: LeanPath) -> bytes:
    """The CSV the zip holds (`source`: its file, or the archive its check kept); a zip that
    breaks while it is read is `Unusable`."""
    try:
        with source if isinstance(source, zipfile.ZipFile) else zipfile.ZipFile(source) as archive:
            for info in archive.infolist():
                if info.filename.lower() == where.member:
                    return archive.read(info)
    except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
        raise Unusable(why.DAMAGED_ZIP) from exc
    raise Unusable(why.WRONG_ZIP_MEMBER)
