"""The stable reasons of `DataRejected`: the only texts a rejection may carry.

A reason is part of the run's digest (DESIGN §6), so it depends on the data alone: never on a
library's error message, a path, or a version. Change a text here and every digest changes; add
new reasons instead. Library detail, when there is any, goes to loguru, not into the log.

`row` in a rejection is the physical line number in the file (the header is line 1) for CSV, the
1-based row for Parquet, the line in the zipped CSV for LEAN, the 1-based record for DBN, and 0
for a whole file or a folder entry.

Every reason has a stable code (`code`) and a scope (`scope`), and the scope alone decides in which
session a rejection is reported, whatever the source (a raw folder or its catalog):
- FILE: a whole file or a folder entry, in `file_rejections` (row 0);
- ROW: a row whose time parsed, with the first load of the session window that time falls in;
- UNDATED (a time that did not parse, a line that could not be delimited or decoded, a damaged
  tail): with the first loaded session whose window overlaps the file's dated range (the times
  of its rows of the run's symbols, or of no symbol), or the first session when there is none.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Scope = Literal["file", "row", "undated"]
FILE: Scope = "file"
ROW: Scope = "row"
UNDATED: Scope = "undated"


@dataclass(frozen=True, slots=True)
class Reason:
    code: str  # stable identifier, for tools and tests
    text: str  # what `DataRejected.reason` carries (in the digest)
    scope: Scope


_BY_TEXT: dict[str, Reason] = {}
_BY_PREFIX: dict[str, Reason] = {}  # reasons with a value in their text: "<prefix> ..."


def _reason(code: str, text: str, scope: Scope) -> str:
    _BY_TEXT[text] = Reason(code, text, scope)
    return text


def _template(code: str, prefix: str, scope: Scope) -> None:
    _BY_PREFIX[prefix] = Reason(code, prefix + " ...", scope)


def reason_of(text: str) -> Reason:
    """The reason a rejection's text is; KeyError for a text that is none of them."""
    found = _BY_TEXT.get(text)
    if found is not None:
        return found
    for prefix, reason in _BY_PREFIX.items():
        if text.startswith(prefix):
            return reason
    raise KeyError(f"not a rejection reason: {text!r}")


def code(text: str) -> str:
    return reason_of(text).code


def scope(text: str) -> Scope:
    return reason_of(text).scope


def is_undated(text: str) -> bool:
    """A rejection with no usable time: it belongs to its file, not to a session window."""
    return reason_of(text).scope == UNDATED


def is_line(text: str) -> bool:
    """A line that could not be delimited or decoded: it has no fields, so no symbol of its own."""
    return reason_of(text).code in _LINE_CODES


# -- a folder entry or a whole file (row 0) -----------------------------------------------------
DANGLING_LINK = _reason("dangling_link", "dangling link", FILE)
LINK_LOOP = _reason("link_loop", "link loop", FILE)
NOT_A_FILE = _reason("not_a_file", "not a regular file", FILE)
UNREADABLE_FOLDER = _reason("unreadable_folder", "unreadable folder", FILE)
UNREADABLE_FILE = _reason("unreadable_file", "unreadable file", UNDATED)  # also mid-run
NO_HEADER = _reason("no_header", "no header line", FILE)
HEADER_NOT_UTF8 = _reason("header_not_utf8", "header is not UTF-8", FILE)
HEADER_UNREADABLE = _reason("header_unreadable", "header is not a CSV line", FILE)

# -- a line that cannot be delimited or decoded -------------------------------------------------
INVALID_UTF8 = _reason("invalid_utf8", "invalid UTF-8", UNDATED)
UNBALANCED_QUOTES = _reason("unbalanced_quotes", "unbalanced quotes", UNDATED)
DAMAGED_FROM_HERE = _reason(
    "damaged_from_here", "damaged or cut-off data from this line on", UNDATED
)
UNREADABLE_ROW_GROUP = _reason(
    "unreadable_row_group", "unreadable row group from this row on", UNDATED
)

# -- a row's values ------------------------------------------------------------------------------
UNPARSEABLE_TIMESTAMP = _reason("unparseable_timestamp", "unparseable timestamp", UNDATED)
NAIVE_TIMESTAMP = _reason("naive_timestamp", "timestamp has no time zone", UNDATED)
NOT_NS_TIMESTAMP = _reason("not_ns_timestamp", "timestamp is not ns since the epoch", UNDATED)
TIMESTAMP_OUT_OF_RANGE = _reason("timestamp_out_of_range", "timestamp outside 1677-2262", UNDATED)
# with a time zone given for naive timestamps (`ingest --tz`): a wall time at a DST change
AMBIGUOUS_LOCAL_TIME = _reason(
    "ambiguous_local_time", "local time occurs twice (a DST change): no unique instant", UNDATED
)
NONEXISTENT_LOCAL_TIME = _reason(
    "nonexistent_local_time", "local time does not exist (skipped by a DST change)", UNDATED
)
MISSING_SYMBOL = _reason("missing_symbol", "missing symbol", ROW)
NAN_PRICE = _reason("nan_price", "NaN price", ROW)
NON_POSITIVE_PRICE = _reason("non_positive_price", "non-positive price", ROW)
NEGATIVE_PRICE = _reason("negative_price", "negative price", ROW)
HIGH_BELOW_LOW = _reason("high_below_low", "high below low", ROW)
HIGH_BELOW_BODY = _reason("high_below_body", "high below max(open, close)", ROW)
LOW_ABOVE_BODY = _reason("low_above_body", "low above min(open, close)", ROW)
NAN_VOLUME = _reason("nan_volume", "NaN volume", ROW)
NEGATIVE_VOLUME = _reason("negative_volume", "negative volume", ROW)
NAN_SIZE = _reason("nan_size", "NaN size", ROW)
NEGATIVE_SIZE = _reason("negative_size", "negative size", ROW)
PRICE_OUT_OF_RANGE = _reason("price_out_of_range", "price outside 1e-9..1e12", ROW)
QUANTITY_OUT_OF_RANGE = _reason("quantity_out_of_range", "volume or size above 1e15", ROW)
SIZE_WITHOUT_PRICE = _reason("size_without_price", "quote side with size but no price", ROW)
OFF_GRID = _reason("off_grid", "off the minute grid", ROW)
DUPLICATE = _reason("duplicate", "duplicate timestamp", ROW)
OUT_OF_ORDER = _reason("out_of_order", "out-of-order timestamp", ROW)

# -- vendor formats (store/formats); found when a file is read are UNDATED, like a damaged tail --
DAMAGED_ZIP = _reason("damaged_zip", "damaged or cut-off zip", UNDATED)
WRONG_ZIP_MEMBER = _reason("wrong_zip_member", "zip does not hold the file its path names", FILE)
LEAN_UNSUPPORTED = _reason(
    "lean_unsupported", "not a LEAN minute or tick file of trades or quotes", FILE
)
LEAN_NO_MARKET_HOURS = _reason(
    "lean_no_market_hours", "market not in the data root's market hours database", FILE
)
LEAN_UNKNOWN_COLUMNS = _reason("lean_unknown_columns", "unknown LEAN column layout", UNDATED)
LEAN_SUSPICIOUS = _reason("lean_suspicious", "tick flagged suspicious", ROW)
TIME_OUTSIDE_FILE = _reason("time_outside_file", "time outside the range its file names", UNDATED)
DBN_UNSUPPORTED_VERSION = _reason("dbn_unsupported_version", "unsupported DBN version", FILE)
DBN_UNSUPPORTED_SCHEMA = _reason("dbn_unsupported_schema", "unsupported DBN schema", FILE)
DBN_BAD_METADATA = _reason("dbn_bad_metadata", "unreadable DBN metadata", FILE)
DBN_OTHER_RECORD = _reason(
    "dbn_other_record", "record of another type than the file's schema", UNDATED
)
DBN_UNMAPPED = _reason("dbn_unmapped", "instrument not in the file's symbology mappings", ROW)
DBN_UNDEFINED_PRICE = _reason("dbn_undefined_price", "undefined price (DBN sentinel)", ROW)
DAMAGED_FROM_RECORD = _reason(
    "damaged_from_record", "damaged or cut-off data from this record on", UNDATED
)

_template("unparseable_value", "unparseable ", ROW)
_template("malformed_row", "malformed row ", UNDATED)
_template("missing_columns", "missing column", FILE)
_template("duplicate_column", "duplicate column ", FILE)
_LINE_CODES = frozenset({"invalid_utf8", "unbalanced_quotes", "malformed_row"})


def unparseable(field: str) -> str:
    """A value that is not a number (`field` is a canonical column name)."""
    return f"unparseable {field}"


def malformed(fields: int, header: int) -> str:
    """A line with the wrong number of fields."""
    return f"malformed row ({fields} fields, header has {header})"


def duplicate_column(name: str) -> str:
    """A header that names a column it needs twice: which one is meant cannot be known."""
    return f"duplicate column {name}"


def missing_columns(columns: list[str], closest: str) -> str:
    """A file whose header is no kind's: the columns the closest kind lacks."""
    noun = "column" if len(columns) == 1 else "columns"
    return f"missing {noun} {', '.join(columns)} (closest kind: {closest})"
