"""The stable reasons of `DataRejected`: the only texts a rejection may carry.

A reason is part of the run's digest (DESIGN §6), so it depends on the data alone: never on a
library's error message, a path, or a version. Change a text here and every digest changes; add
new reasons instead. Library detail, when there is any, goes to loguru, not into the log.

`row` in a rejection is the physical line number in the file (the header is line 1) for CSV, the
1-based row for Parquet, and 0 for a whole file or a folder entry.
"""

from __future__ import annotations

# -- a folder entry or a whole file (row 0) -----------------------------------------------------
DANGLING_LINK = "dangling link"
LINK_LOOP = "link loop"
NOT_A_FILE = "not a regular file"
UNREADABLE_FOLDER = "unreadable folder"
UNREADABLE_FILE = "unreadable file"
NO_HEADER = "no header line"
HEADER_NOT_UTF8 = "header is not UTF-8"

# -- a line that cannot be delimited or decoded -------------------------------------------------
INVALID_UTF8 = "invalid UTF-8"
UNBALANCED_QUOTES = "unbalanced quotes"
DAMAGED_FROM_HERE = "damaged or cut-off data from this line on"
UNREADABLE_ROW_GROUP = "unreadable row group from this row on"

# -- a row's values ------------------------------------------------------------------------------
UNPARSEABLE_TIMESTAMP = "unparseable timestamp"
NAIVE_TIMESTAMP = "timestamp has no time zone"
NOT_NS_TIMESTAMP = "timestamp is not ns since the epoch"
TIMESTAMP_OUT_OF_RANGE = "timestamp outside 1677-2262"
MISSING_SYMBOL = "missing symbol"
NAN_PRICE = "NaN price"
NON_POSITIVE_PRICE = "non-positive price"
NEGATIVE_PRICE = "negative price"
HIGH_BELOW_LOW = "high below low"
HIGH_BELOW_BODY = "high below max(open, close)"
LOW_ABOVE_BODY = "low above min(open, close)"
NAN_VOLUME = "NaN volume"
NEGATIVE_VOLUME = "negative volume"
NAN_SIZE = "NaN size"
NEGATIVE_SIZE = "negative size"
SIZE_WITHOUT_PRICE = "quote side with size but no price"
OFF_GRID = "off the minute grid"
DUPLICATE = "duplicate timestamp"
OUT_OF_ORDER = "out-of-order timestamp"


def unparseable(field: str) -> str:
    """A value that is not a number (`field` is a canonical column name)."""
    return f"unparseable {field}"


def malformed(fields: int, header: int) -> str:
    """A line with the wrong number of fields."""
    return f"malformed row ({fields} fields, header has {header})"


def missing_columns(columns: list[str], closest: str) -> str:
    """A file whose header is no kind's: the columns the closest kind lacks."""
    noun = "column" if len(columns) == 1 else "columns"
    return f"missing {noun} {', '.join(columns)} (closest kind: {closest})"
