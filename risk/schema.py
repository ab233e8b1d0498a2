"""The data contract: the columns of a data file, and how a file or payload is decoded, parsed and checked.

Every reader of data (ingestion, training, scoring, diagnostics, the API, the client book) checks it here,
so a bad cell is named the same way wherever it arrives. :class:`DataFileError` says what is wrong and how to
fix it; the caller adds the file's name.
"""

from __future__ import annotations

import io
import json
import re
import warnings
from itertools import repeat
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

DATA_SUFFIXES = (".csv", ".json")
ID_COLUMN = "corporation"
FEATURES = ("lastmonth_activity", "lastyear_activity", "number_of_employees")
TARGET = "exited"
COLUMNS = (ID_COLUMN, *FEATURES, TARGET)
# read_csv's default missing-value markers (pandas 3): the fast reader and the client book read text as pandas would
READ_CSV_NA_MARKERS = (
    "",
    "#N/A",
    "#N/A N/A",
    "#NA",
    "-1.#IND",
    "-1.#QNAN",
    "-NaN",
    "-nan",
    "1.#IND",
    "1.#QNAN",
    "<NA>",
    "N/A",
    "NA",
    "NULL",
    "NaN",
    "None",
    "n/a",
    "nan",
    "null",
)
SEPARATOR_HINTS = {";": "semicolons", "\t": "tabs", "|": "pipes"}
# The most fields (columns) a header line or a set of JSON records may have; counted before pandas parses anything.
# The schema has five columns, so a wider file is rejected anyway; counting first keeps that rejection cheap (pandas
# renames repeated column names in quadratic time: a 200 kB header line took 94 s of CPU). Not a config key: any
# value above five only decides how much CPU a bad file may cost.
MAX_FIELDS = 100
NAMES_SHOWN = 10  # column names listed in a message; the rest are counted


class DataFileError(ValueError):
    """A data file or payload does not meet the schema; the message says what is wrong and how to fix it."""


def _row_label(position: int) -> str:
    """Human row label for a 0-based data row: the line in the file (line 1 is the header)."""
    return f"line {position + 2}"


def _shown(value: object) -> str:
    """A cell value as the user wrote it, quoted ('abc', '2'), or 'an empty cell'."""
    if value is None or isinstance(value, float) and np.isnan(value):
        return "an empty cell"
    shown = repr(value.item() if isinstance(value, np.generic) else value)
    return shown if len(shown) <= 60 else shown[:57] + "..."


def _json_number(value: object) -> float:
    """One JSON cell as a float: NaN for null or for anything that is not a number (a bool, list, object...)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str, np.number)):
        return np.nan
    try:
        return float(value)
    except (ValueError, OverflowError):
        return np.nan


def _numeric_column(frame: pd.DataFrame, column: str) -> pd.Series:
    """The column as numbers; empty cells stay missing; any other non-number raises DataFileError."""
    values = frame[column]
    if pd.api.types.is_bool_dtype(values):
        raise DataFileError(f"has true/false values in column {column!r}; {column} must be a number")
    if isinstance(values.dtype, np.dtype) and values.dtype.kind in "iu":
        return values  # numpy integers are never empty nor infinite: nothing to check
    if pd.api.types.is_numeric_dtype(values):
        numbers = values
    elif values.dtype == object:  # JSON values: numbers, strings, null, and whatever else a client sent
        numbers = pd.Series([_json_number(v) for v in values], index=values.index, dtype="float64")
    else:
        numbers = pd.to_numeric(values, errors="coerce")
    bad = (numbers.isna() & values.notna()) | np.isinf(numbers.astype("float64"))
    if bad.any():
        position = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataFileError(
            f"has a non-numeric value {_shown(values.iloc[position])} in column {column!r} at "
            f"{_row_label(position)}; {column} must be a number"
        )
    return numbers


def _target_column(frame: pd.DataFrame) -> pd.Series:
    """The ``exited`` column as integers; anything but 0 or 1 (or a missing value) raises DataFileError."""
    values = _numeric_column(frame, TARGET)
    bad = ~values.isin([0, 1])
    if bad.any():
        position = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataFileError(
            f"has {_shown(frame[TARGET].iloc[position])} in column {TARGET!r} at {_row_label(position)}; "
            f"{TARGET} must be 0 (stayed) or 1 (exited)"
        )
    return values.astype("int64")


def _id_column(frame: pd.DataFrame) -> pd.Series:
    """The ``corporation`` column as stripped text; DataFileError for text that cannot be UTF-8 (a lone surrogate,
    which JSON can carry as an escape such as \\ud800)."""
    values = frame[ID_COLUMN]
    try:
        return values.astype("string").str.strip()
    except UnicodeEncodeError:
        bad = (i for i, value in enumerate(values) if isinstance(value, str) and not _encodable(value))
        position = next(bad, None)
        if position is None:
            raise
        raise DataFileError(
            f"has text that is not valid Unicode {_shown(values.iloc[position])} in column {ID_COLUMN!r} at "
            f"{_row_label(position)}; send the name as plain UTF-8 text"
        ) from None


def _names(columns: list[str]) -> str:
    """Column names for a message: at most NAMES_SHOWN, each cut to 60 characters, the rest counted."""
    shown = [name if len(name) <= 60 else name[:57] + "..." for name in map(str, columns[:NAMES_SHOWN])]
    more = len(columns) - NAMES_SHOWN
    return ", ".join(shown) + (f" and {more} more" if more > 0 else "")


def _column_problem(columns: list[str], expected: list[str]) -> str | None:
    missing = [c for c in expected if c not in columns]
    extra = [c for c in columns if c not in expected]
    if len(columns) == 1 and missing:
        for separator, name in SEPARATOR_HINTS.items():
            if separator in columns[0]:
                return (
                    f"is not comma-separated (its header uses {name}: {columns[0][:80]!r}); "
                    f"save it with commas between the columns {', '.join(expected)}"
                )
    if missing:
        return (
            f"is missing column(s) {', '.join(missing)} (found: {_names(columns) or 'none'}); "
            f"expected {', '.join(expected)}"
        )
    if extra:
        return f"has unexpected column(s) {_names(extra)}; expected exactly {', '.join(expected)}"
    if len(set(columns)) != len(columns):
        return "repeats a column name; each of " + ", ".join(expected) + " must appear once"
    return None


def check_schema(frame: pd.DataFrame, require_target: bool = True, require_id: bool = True) -> pd.DataFrame:
    """Validate a frame against the schema and return it with clean column order and dtypes.

    Raises DataFileError naming the column (and row) at fault. Without ``require_id`` the ``corporation``
    column is optional; without ``require_target`` the ``exited`` column is optional.
    """
    frame = frame.rename(columns=lambda c: str(c).strip()).reset_index(drop=True)
    columns = list(frame.columns)
    expected = [c for c in COLUMNS if (c != TARGET or require_target) and (c != ID_COLUMN or require_id)]
    optional = [c for c in (ID_COLUMN, TARGET) if c not in expected and c in columns]
    problem = _column_problem([c for c in columns if c not in optional], expected)
    if problem:
        raise DataFileError(problem)
    if frame.empty:
        raise DataFileError("has a header but no data rows; add rows or remove the file")
    clean = {}
    if ID_COLUMN in columns:
        clean[ID_COLUMN] = _id_column(frame)
    for column in FEATURES:
        clean[column] = _numeric_column(frame, column)
    if TARGET in columns:
        clean[TARGET] = _target_column(frame)
    return pd.DataFrame(clean, index=pd.RangeIndex(len(frame)))


def feature_arrays(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """Each feature of a schema-checked frame as a float array (missing values as NaN)."""
    return {name: frame[name].to_numpy(dtype="float64", na_value=np.nan) for name in FEATURES}


def decode_text(raw: bytes) -> str:
    """Decode a data file's (or an upload's) bytes as UTF-8 text; DataFileError if empty, binary or not UTF-8."""
    if not raw.strip():
        raise DataFileError("is empty; it needs a header line and data rows")
    if b"\x00" in raw:
        raise DataFileError("is not a text file (it holds binary data); save the data as a comma-separated CSV")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise DataFileError(
            f"has bytes that are not UTF-8 text (byte {err.start}: {raw[err.start : err.start + 1]!r}); "
            "re-save it as UTF-8"
        ) from None


# --- counting fields before parsing ---

_BLANK_LINES = {str: re.compile(r"(?:[ \t]*(?:\r\n|\r|\n))*"), bytes: re.compile(rb"(?:[ \t]*(?:\r\n|\r|\n))*")}
_QUOTED = {str: re.compile(r'"[^"]*(?:""[^"]*)*"'), bytes: re.compile(rb'"[^"]*(?:""[^"]*)*"')}  # linear: no nesting
_FIELD_STOP = {str: re.compile(r'(?<=,)[ ]*"|[\r\n]'), bytes: re.compile(rb'(?<=,)[ ]*"|[\r\n]')}
_LEADING_QUOTE = {str: re.compile(r'[ ]*"'), bytes: re.compile(rb'[ ]*"')}


def header_field_count(text: str | bytes, limit: int = MAX_FIELDS) -> int:
    """The number of fields on the header line of CSV text (or bytes), as pandas would split it (or more, never
    fewer); once over ``limit`` it stops counting and returns a number above ``limit``.

    Linear and cheap whatever the text: blank lines are skipped, as pandas does (and lines of only commas, which
    pandas skips after a lone carriage return: their fields and the next line's both count); commas inside a
    quoted field (one that starts with a quote, after optional spaces) do not count, quoted newlines do not end
    the line. Only quoted fields are visited one by one.
    """
    kind = type(text)
    blank = _BLANK_LINES[kind]
    most, position = 0, 0
    while position <= len(text) and most <= limit:
        position = blank.match(text, position).end()
        fields, end = _line_fields(text, position, limit)
        most = max(most, fields)
        if text[position:end].strip(" \t," if kind is str else b" \t,"):
            break  # a line with content: the header
        position = end + 1
    return max(most, 1)


def _line_fields(text: str | bytes, position: int, limit: int) -> tuple[int, int]:
    """The fields of the CSV line starting at ``position`` (counted up to ``limit`` + 1) and where it ends."""
    kind = type(text)
    comma, quote, newline, carriage = (",", '"', "\n", "\r") if kind is str else (b",", b'"', b"\n", b"\r")
    ends = [index for index in (text.find(newline, position), text.find(carriage, position)) if index >= 0]
    line_end = min(ends, default=len(text))
    if text.find(quote, position, line_end) < 0:  # the usual header: no quotes, so every comma separates
        return 1 + text.count(comma, position, line_end), line_end
    fields = 1
    opening = _LEADING_QUOTE[kind].match(text, position)  # the first field may be quoted too
    while fields <= limit:
        if opening is None:
            stop = _FIELD_STOP[kind].search(text, position)
            end = stop.start() if stop else len(text)
            fields += text.count(comma, position, end)
            if stop is None or text[end : end + 1] in (newline, carriage):
                return fields, end  # the end of the line (or of the text)
            opening = stop
        quoted = _QUOTED[kind].match(text, opening.end() - 1)
        if quoted is None:
            return fields, len(text)  # an unterminated quote runs to the end of the text: one last field
        position, opening = quoted.end(), None
    return fields, len(text)


def check_field_count(count: int, what: str, limit: int = MAX_FIELDS) -> None:
    """DataFileError when ``count`` fields (on the header line, or keys of the records) is over ``limit``."""
    if count > limit:
        raise DataFileError(
            f"has more than {limit} {what} ({count:,} counted, the limit is {limit}); a data file has the columns "
            f"{', '.join(COLUMNS)}: remove the other columns, or check it is comma-separated data"
        )


def check_record_fields(records: list[dict[object, object]], limit: int = MAX_FIELDS) -> None:
    """DataFileError when JSON records have more than ``limit`` distinct keys in all (before a frame is built
    with a column per key; the set holds the parsed keys themselves, so counting them all is cheap)."""
    keys: set[object] = set()
    for record in records:
        keys.update(record)
    check_field_count(len(keys), "distinct keys in its records", limit)


def parse_csv_text(text: str) -> pd.DataFrame:
    """Parse CSV text into a raw frame (no schema check); DataFileError if it is not CSV or is too wide."""
    check_field_count(header_field_count(text), "fields on its header line")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", pd.errors.ParserWarning)  # more fields than the header: not data
            return pd.read_csv(io.StringIO(text), skipinitialspace=True, index_col=False)
    except pd.errors.ParserWarning:
        raise DataFileError(
            "is not a valid CSV (the first data line has more fields than the header); "
            "check the number of commas on each line"
        ) from None
    except pd.errors.EmptyDataError:
        raise DataFileError("is empty; it needs a header line and data rows") from None
    except (pd.errors.ParserError, ValueError) as err:
        detail = str(err).strip().splitlines()[-1]
        raise DataFileError(f"is not a valid CSV ({detail}); check the number of commas on each line") from None


def load_json_records(text: str) -> list[dict[str, object]]:
    """Parse JSON records (a non-empty list of objects, at most MAX_FIELDS distinct keys); no schema check yet."""
    try:
        payload = json.loads(text)
    except json.JSONDecodeError as err:
        raise DataFileError(f"is not valid JSON (line {err.lineno} column {err.colno}: {err.msg})") from None
    if not isinstance(payload, list) or not all(isinstance(row, dict) for row in payload):
        raise DataFileError('must hold JSON records: a list of objects such as [{"corporation": "abcd", ...}]')
    if not payload:
        raise DataFileError("holds no records; add rows or remove the file")
    check_record_fields(payload)
    return payload


def records_frame(records: list[dict[str, object]]) -> pd.DataFrame:
    """JSON records (already through :func:`load_json_records` or :func:`check_record_fields`) as a raw frame."""
    return pd.DataFrame.from_records(records)


def parse_json_records(text: str) -> pd.DataFrame:
    """Parse JSON records (a list of objects) into a raw frame (no schema check)."""
    return records_frame(load_json_records(text))


# --- JSON records check_schema takes as they are, without a frame ---


class PlainRecords(NamedTuple):
    """JSON records that :func:`plain_records` found plainly valid, as the model takes them."""

    ids: list[str | None] | None  # ``corporation`` stripped (None where empty), when any record has the key
    features: np.ndarray  # rows x FEATURES, float64, NaN where a feature is empty (null or absent)


_NUMBER_TYPES = frozenset({int, float, type(None)})  # what json.loads makes of a number or null (bool excluded)
_ID_TYPES = frozenset({str, type(None)})
_TARGET_VALUES = frozenset({0, 1})  # 0.0 and 1.0 too; not True/False (types are checked first)


def plain_records(records: list[dict[str, object]]) -> PlainRecords | None:
    """The records as check_schema would take them, or None when they need its full check.

    Plain records are those check_schema accepts whatever pandas infers for their columns: every key is a column
    of the schema and the features are all there (in one record at least); each feature value is an int or a
    float (not a bool, not infinite, not too big for a float; NaN counts as empty) or null; ``corporation`` is a
    string (UTF-8 encodable) or null; ``exited``, if any record has it, is 0 or 1 in every record. For anything
    else (a problem to report, or a value whose meaning depends on pandas' dtype inference, such as a string of
    digits) the caller checks a frame with check_schema: one set of rules and messages, never a second copy.
    """
    columns = set().union(*records)
    if not columns.issuperset(FEATURES) or not columns.issubset(COLUMNS):
        return None
    features = [_record_values(records, name) for name in FEATURES]
    if not all(_NUMBER_TYPES.issuperset(map(type, values)) for values in features):
        return None
    try:
        matrix = np.array(features, dtype="float64").T  # None becomes NaN
    except OverflowError:  # an integer beyond the float range: check_schema names it
        return None
    if np.isinf(matrix).any():
        return None
    if TARGET in columns:
        targets = _record_values(records, TARGET)
        if not _NUMBER_TYPES.issuperset(map(type, targets)) or not _TARGET_VALUES.issuperset(targets):
            return None
    ids = _record_values(records, ID_COLUMN) if ID_COLUMN in columns else None
    if ids is not None:
        if not _ID_TYPES.issuperset(map(type, ids)) or not _encodable("".join(filter(None, ids))):
            return None
        ids = list(map(str.strip, ids)) if None not in ids else [v if v is None else v.strip() for v in ids]
    return PlainRecords(ids=ids, features=matrix)


def _record_values(records: list[dict[str, object]], name: str) -> list[object]:
    """The value of ``name`` in each record (None where absent), without a Python loop per record."""
    return list(map(dict.get, records, repeat(name)))


def _encodable(value: str | None) -> bool:
    """Whether text can be written as UTF-8 (JSON may carry a lone surrogate such as \\ud800)."""
    if value is None or value.isascii():
        return True
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def read_data_file(path: Path) -> pd.DataFrame:
    """Read and validate one data file; DataFileError says what is wrong (the caller names the file)."""
    check_suffix(path.suffix)
    return read_data_bytes(path.read_bytes(), path.suffix)


def check_suffix(suffix: str) -> None:
    """DataFileError unless ``suffix`` (``.csv``, ``.JSON``...) is a data file type."""
    if suffix.lower() not in DATA_SUFFIXES:
        raise DataFileError(
            f"has an unsupported type {suffix.lower() or '(no extension)'!r}; save the data as .csv "
            "(comma-separated) or .json (records)"
        )


def read_data_bytes(raw: bytes, suffix: str) -> pd.DataFrame:
    """Validate the bytes of one data file already read (``suffix``: its type), as :func:`read_data_file` does."""
    check_suffix(suffix)
    text = decode_text(raw)
    frame = parse_json_records(text) if suffix.lower() == ".json" else parse_csv_text(text)
    return check_schema(frame)
