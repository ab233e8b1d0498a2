"""The fast reader: every data file of a run parsed and merged at a fraction of the plain reader's memory.

The rule, stated once: **whatever the reader, the result is the one :func:`plain_read` gives**: each file is
accepted or rejected exactly as ``risk.schema.read_data_file`` says of it alone, the accepted files' rows follow
one another in the order given, and whole-row duplicates are dropped, the first occurrence kept (ids compared
once trimmed). ``ingestion_reader`` in config picks ``fast`` (the default) or ``plain``; the tests hold the two
to the same result on files of every kind.

How the fast reader earns its keep (1M rows: 95 MB peak against the plain reader's 241 MB):

- Plain CSV files (ASCII, trimmed, the schema's header, a first id that is surely text) that follow one another
  with the same header are parsed together, one ``read_csv`` per :data:`BATCH_BYTES`; anything else is read on
  its own, and anything unusual or bad goes through ``read_data_bytes``, which names the problem.
- Numbers go straight into a :class:`ColumnBuffer` (columns reserved up front, filled file by file), so there is
  never a frame per file nor a second copy of every file.
- Duplicates are found by hashing rows' numbers; only rows sharing a hash are compared value by value, and
  should a collision ever put unequal rows together, pandas decides for them.

Hostile files cost little and stop nothing: each file is read once (the bytes hashed are the bytes parsed), its
header's fields are counted before pandas sees it (risk/schema.py's MAX_FIELDS), at most RESERVED_ROWS rows are
reserved up front, and any failure while reading one file, MemoryError included, rejects that file by name.
"""

from __future__ import annotations

import io
import logging
import re
import warnings
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from risk.files import sha256_bytes
from risk.inputscan import DataFile
from risk.schema import (
    COLUMNS,
    FEATURES,
    ID_COLUMN,
    READ_CSV_NA_MARKERS,
    TARGET,
    DataFileError,
    check_field_count,
    check_suffix,
    header_field_count,
    read_data_bytes,
)

log = logging.getLogger("risk.fastread")

BATCH_BYTES = 1 << 20  # CSV bytes parsed in one read_csv: many small files at once, memory still bounded
MEMORY_REASON = "is too large to read in the memory this run may use"  # ingestion retries such files next run
RESERVED_ROWS = 1 << 20  # at most this many rows reserved up front (32 MB); buffers double past it as rows arrive
BLANKS_AND_QUOTES = (b" ", b"\t", b"\x0b", b"\x0c", b'"')
NUMBER_BYTES = frozenset(b"0123456789+-.eE")
NA_MARKERS = frozenset(READ_CSV_NA_MARKERS)
HASH_MULTIPLIER = np.uint64(0x9E3779B97F4A7C15)
HASH_BLOCK_ROWS = 1 << 16  # rows hashed at a time, so temporaries stay small
NUMBER_COLUMNS = (*FEATURES, TARGET)

NumberColumns = dict  # column name -> numpy array, for the number columns of one file


class Rejection(NamedTuple):
    """A file that was not ingested, and why (the reason starts with the file's name)."""

    file: DataFile
    reason: str


class ReadResult(NamedTuple):
    """The merged rows of the accepted files, where each came from, and what happened to each file."""

    data: pd.DataFrame  # the schema's columns, duplicates dropped
    source: pd.Series  # per kept row, the name of its file (categorical)
    accepted: list[DataFile]  # in the order read
    rows_read: list[int]  # per accepted file
    duplicates: list[int]  # per accepted file: its rows dropped as duplicates of earlier ones
    rejected: list[Rejection]


def read_files(files: list[DataFile], reader: str = "fast") -> ReadResult:
    """Read and merge ``files`` (in the order given) with the chosen reader; the same result either way."""
    if reader == "plain":
        return plain_read(files)
    buffer = ColumnBuffer(_expected_rows(files))
    files_reader = _FileReader(buffer)
    for file in files:
        files_reader.read(file)
    files_reader.finish()
    return _result(buffer, files_reader.good, files_reader.rejected)


def plain_read(files: list[DataFile]) -> ReadResult:
    """The reference: each file through ``read_data_file`` on its own, concatenated, ``duplicated()`` dropped."""
    frames, good, rejected = [], [], []
    for file in files:
        try:
            read, raw = read_bytes(file)
            frames.append(read_data_bytes(raw, file.path.suffix))
            good.append(read)
        except Exception as err:  # noqa: BLE001 - one file's failure (MemoryError included) rejects that file only
            rejected.append(_rejection(file, err))
    if not frames:
        return ReadResult(pd.DataFrame(columns=list(COLUMNS)), pd.Series(dtype="category"), [], [], [], rejected)
    lengths = [len(frame) for frame in frames]
    merged = pd.concat(frames, ignore_index=True)
    codes = np.repeat(np.arange(len(frames)), lengths)
    duplicated = merged.duplicated().to_numpy()
    dropped = np.bincount(codes[duplicated], minlength=len(frames))
    source = pd.Series(pd.Categorical.from_codes(codes[~duplicated], categories=[f.name for f in good]))
    data = merged[~duplicated].reset_index(drop=True)
    data[ID_COLUMN] = data[ID_COLUMN].astype("string")
    return ReadResult(data, source, good, lengths, [int(d) for d in dropped], rejected)


def _result(buffer: ColumnBuffer, good: list[DataFile], rejected: list[Rejection]) -> ReadResult:
    if not good:
        return ReadResult(pd.DataFrame(columns=list(COLUMNS)), pd.Series(dtype="category"), [], [], [], rejected)
    data, source, dropped = buffer.merge([f.name for f in good])
    return ReadResult(data, source, good, list(buffer.lengths), [int(d) for d in dropped], rejected)


def read_bytes(file: DataFile) -> tuple[DataFile, bytes]:
    """The file's bytes, read once, and the file as those bytes are (their sha256 and size): what is recorded is
    what was parsed, even when the file changes between the scan and the read. Unsupported types are refused
    (DataFileError) before anything is read."""
    check_suffix(file.path.suffix)
    raw = file.path.read_bytes()
    return file._replace(sha256=sha256_bytes(raw), size_bytes=len(raw)), raw


def _rejection(file: DataFile, err: BaseException) -> Rejection:
    """Why a file was not ingested, logged as one line naming it (a traceback only at debug level)."""
    if isinstance(err, DataFileError):
        log.warning("rejected %s: %s %s", file.path, file.name, err)
        return Rejection(file, f"{file.name} {err}")
    if isinstance(err, MemoryError):
        reason = f"{file.name} {MEMORY_REASON} ({file.size_bytes} bytes); split it into smaller files"
    elif isinstance(err, OSError):
        reason = f"{file.name} cannot be read: {err.strerror or err}"
    else:  # a bug or a case nobody foresaw: still that file's problem only
        log.debug("reading %s failed", file.path, exc_info=err)
        reason = f"{file.name} could not be read ({type(err).__name__}: {str(err)[:200]}); check the file"
    log.warning("rejected %s: %s", file.path, reason)
    return Rejection(file, reason)


def _expected_rows(files: list[DataFile]) -> int:
    """Room to reserve for the rows of ``files``: a row takes at least 10 bytes (``a,0,0,0,0`` and a newline),
    and never more than RESERVED_ROWS (one huge file must not take memory before it is even read)."""
    return min(sum(file.size_bytes for file in files) // 10 + len(files), RESERVED_ROWS)


# --- which files can be parsed as they are, and together ---


def _plain_text(raw: bytes) -> bool:
    """True for non-blank UTF-8 text without NUL bytes or a byte-order mark: pandas can parse it as it is."""
    if not raw or raw.isspace() or b"\x00" in raw:
        return False
    if raw.isascii():
        return True
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return not raw.startswith(b"\xef\xbb\xbf")


def _trimmed_text(raw: bytes) -> bool:
    """True for ASCII bytes without blanks, quotes or lone carriage returns: no field can need trimming."""
    return (
        raw.isascii()
        and not any(mark in raw for mark in BLANKS_AND_QUOTES)
        and (raw.count(b"\r") == raw.count(b"\r\n"))
    )


def _header_names(raw: bytes) -> list[str] | None:
    """The column names on the first line of trimmed text when they are the five schema columns, else None."""
    end = raw.find(b"\n")
    names = raw[: end if end >= 0 else len(raw)].rstrip(b"\r").decode("ascii").split(",")
    return names if len(names) == len(COLUMNS) and set(names) == set(COLUMNS) else None


def _surely_text(value: bytes) -> bool:
    """True when read_csv can only take ``value`` as text (no number, infinity or missing-value marker): a
    column holding it is read as text whatever its other values, alone or parsed together with other files."""
    if all(byte in NUMBER_BYTES for byte in value) or value.lower().lstrip(b"+-") in (b"inf", b"infinity", b"nan"):
        return False
    return value.decode("ascii") not in NA_MARKERS


class _PlainCsv(NamedTuple):
    """A CSV file that can be parsed together with others: its bytes, its header line and its data lines."""

    file: DataFile
    raw: bytes  # the file's bytes, as read (and hashed) once
    header: bytes  # the header line, without its line end
    body_start: int  # where the data lines start in ``raw``
    rows: int  # non-blank data lines

    @property
    def body(self) -> list[bytes | memoryview]:
        """The data lines, ending with a newline (a view of ``raw``, not a copy), for ``b"".join``."""
        lines = memoryview(self.raw)[self.body_start :]
        return [lines] if self.raw.endswith(b"\n") else [lines, b"\n"]

    @property
    def body_bytes(self) -> int:
        return len(self.raw) - self.body_start


_LEADING_BLANK_LINES = re.compile(rb"(?:\r?\n)*")
_BLANK_LINE_AFTER = re.compile(rb"\n(?=\r?\n)")  # a line end followed by an empty line (fast: a literal first)


def _data_lines(raw: bytes, start: int) -> int:
    """The non-blank lines of trimmed text from ``start`` on (blank: empty or a lone carriage return, which
    read_csv skips), counted without splitting the text into a list of lines."""
    if start >= len(raw):
        return 0
    lines = raw.count(b"\n", start) + (0 if raw.endswith(b"\n") else 1)
    blank = len(_BLANK_LINE_AFTER.findall(raw, start)) + (1 if raw.startswith((b"\n", b"\r\n"), start) else 0)
    return lines - blank


def _batchable(file: DataFile, raw: bytes) -> _PlainCsv | None:
    """The file as a :class:`_PlainCsv` when parsing it with others gives what parsing it alone would: trimmed
    ASCII text, the schema's header, and a first id that is surely text (so its ids are text either way)."""
    if file.path.suffix.lower() != ".csv" or not _plain_text(raw) or not _trimmed_text(raw):
        return None
    names = _header_names(raw)
    header_end = raw.find(b"\n")
    if names is None or header_end < 0:
        return None
    body_start = header_end + 1
    first_start = _LEADING_BLANK_LINES.match(raw, body_start).end()
    first_end = raw.find(b"\n", first_start)
    first = raw[first_start : first_end if first_end >= 0 else len(raw)].rstrip(b"\r")
    if not first:
        return None
    fields = first.split(b",")
    if len(fields) != len(COLUMNS) or not _surely_text(fields[names.index(ID_COLUMN)]):
        return None
    rows = _data_lines(raw, body_start)
    return _PlainCsv(file, raw, raw[:header_end].rstrip(b"\r"), body_start, rows)


# --- parsing ---


def _parse_plain_csv(raw: bytes) -> tuple[pd.DataFrame, list[str], bool] | None:
    """Parse the bytes of a plain CSV: the raw frame, the schema name of each of its columns (stripped
    labels) and whether its fields are surely trimmed already; None when pandas cannot parse it as it is.

    Trimmed text with the schema's header line is parsed without header inference (the names are known).
    """
    trimmed = _trimmed_text(raw)
    names = _header_names(raw) if trimmed else None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", pd.errors.ParserWarning)  # as parse_csv_text: a bad file
            if names is not None:
                return pd.read_csv(io.BytesIO(raw), header=None, skiprows=1), names, trimmed
            frame = pd.read_csv(io.BytesIO(raw), skipinitialspace=True, index_col=False)
    except (pd.errors.ParserWarning, pd.errors.ParserError, ValueError):
        return None
    return frame, [str(label).strip() for label in frame.columns.tolist()], trimmed


def _columns_as_read(frame: pd.DataFrame, names: list[str]) -> tuple[pd.Series, NumberColumns] | None:
    """The ids and number arrays of a parsed frame (``names``: each column's schema name) that already meets
    the schema, or None when it may not.

    "Meets" means :func:`check_schema` could only reorder it and clean its ids: the five columns, some rows,
    finite numbers (no text, no true/false) and ``exited`` in {0, 1}. Whole-column numpy checks, each column
    fetched once; None sends the frame through check_schema, which names the problem.
    """
    labels = frame.columns.tolist()
    if frame.empty or len(labels) != len(COLUMNS) or len(names) != len(COLUMNS) or set(names) != set(COLUMNS):
        return None
    ids, numbers = None, {}
    for label, name in zip(labels, names):
        column = frame[label]
        if name == ID_COLUMN:
            ids = column
            continue
        values = column.to_numpy()
        if not isinstance(values.dtype, np.dtype) or values.dtype.kind not in "iuf":
            return None
        if values.dtype.kind == "f" and np.isinf(values).any():
            return None
        if name == TARGET and not ((values == 0) | (values == 1)).all():
            return None
        numbers[name] = values
    return ids, numbers


def _columns_of(frame: pd.DataFrame) -> tuple[pd.Series, NumberColumns]:
    """The ids and number arrays of a frame returned by :func:`check_schema`."""
    return frame[ID_COLUMN], {name: frame[name].to_numpy() for name in (*FEATURES, TARGET)}


def read_schema_columns(path: Path, raw: bytes | None = None) -> tuple[pd.Series, NumberColumns]:
    """Read one data file for merging: its ids (as text, trimmed) and number columns, once they meet the schema.

    Accepts and rejects exactly as ``risk.schema.read_data_file`` (anything unusual or bad goes through it, so
    the DataFileError is the same), but a plain CSV that is valid as parsed skips the per-file frame building;
    its ids may keep pandas' default text dtype (:class:`ColumnBuffer` makes them ``string``) and its
    ``exited`` may still be 0.0/1.0. ``raw``: the file's bytes when already read.
    """
    if raw is None:
        check_suffix(path.suffix)
        raw = path.read_bytes()
    plain = path.suffix.lower() == ".csv" and _plain_text(raw)
    if plain:  # as parse_csv_text does, before pandas sees a header that would cost quadratic time
        check_field_count(header_field_count(raw), "fields on its header line")
    parsed = _parse_plain_csv(raw) if plain else None
    columns = _columns_as_read(*parsed[:2]) if parsed is not None else None
    if columns is None:  # unusual or bad: the reference path parses it again and names any problem
        return _columns_of(read_data_bytes(raw, path.suffix))
    ids, numbers = columns
    trimmed = parsed[2]
    if not (trimmed and isinstance(ids.dtype, pd.StringDtype)):
        ids = _clean_ids(ids)
    return ids, numbers


# --- merging ---


def _parse_batch(batch: list[_PlainCsv]) -> tuple[pd.Series, NumberColumns] | None:
    """The ids and number columns of all files of ``batch`` (files with the same header line, in order) from
    one read_csv; None unless every file meets the schema as parsed (each is then read on its own)."""
    names = batch[0].header.decode("ascii").split(",")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", pd.errors.ParserWarning)
            frame = pd.read_csv(io.BytesIO(b"".join(piece for part in batch for piece in part.body)), header=None)
    except (pd.errors.ParserWarning, pd.errors.ParserError, ValueError):
        return None
    columns = _columns_as_read(frame, names) if len(frame) == sum(part.rows for part in batch) else None
    if columns is None or any(values.dtype.kind == "u" for values in columns[1].values()):
        return None
    return columns


class _FileReader:
    """Reads files into :class:`ColumnBuffer` in name order, recording rejections; runs of plain CSV files
    with one header line are parsed together (one read_csv per :data:`BATCH_BYTES`), the rest one by one."""

    def __init__(self, merged: ColumnBuffer) -> None:
        self.merged = merged
        self.good: list[DataFile] = []
        self.rejected: list[Rejection] = []
        self._batch: list[_PlainCsv] = []
        self._batch_bytes = 0

    def read(self, file: DataFile) -> None:
        try:
            file, raw = read_bytes(file)
        except Exception as err:  # noqa: BLE001 - unreadable, unsupported or too big: that file is rejected
            self._reject(file, err)
            return
        plain = _batchable(file, raw) if file.path.suffix.lower() == ".csv" else None
        if plain is None or (
            self._batch and (plain.header != self._batch[0].header or self._batch_bytes >= BATCH_BYTES)
        ):
            self.finish()
        if plain is None:
            self._read_alone(file, raw)
        else:
            self._batch.append(plain)
            self._batch_bytes += plain.body_bytes

    def finish(self) -> None:
        """Read the files still waiting in the batch."""
        batch, self._batch, self._batch_bytes = self._batch, [], 0
        try:
            parsed = _parse_batch(batch) if batch else None
            if parsed is not None:
                self.merged.add(*parsed, lengths=[part.rows for part in batch])
        except MemoryError:
            parsed = None  # each file on its own below: the one too big for memory is rejected by name
        if parsed is None:
            for part in batch:
                self._read_alone(part.file, part.raw)
            return
        self.good.extend(part.file for part in batch)

    def _read_alone(self, file: DataFile, raw: bytes | None) -> None:
        try:
            self.merged.add(*read_schema_columns(file.path, raw))
            self.good.append(file)
        except Exception as err:  # noqa: BLE001 - one file's failure (MemoryError included) rejects that file only
            self._reject(file, err)

    def _reject(self, file: DataFile, err: Exception) -> None:
        self.rejected.append(_rejection(file, err))


# --- the column buffer ---


class ColumnBuffer:
    """Schema-valid frames of many files, added one at a time and merged once by :meth:`merge`.

    Numbers are copied straight into column buffers that are reserved up front but only take memory as rows
    arrive, and each file's frame can be dropped as soon as it is added: memory stays near the size of the
    merged data however many files there are (no repeated concatenation, no second copy of every file).
    """

    def __init__(self, expected_rows: int = 1 << 16) -> None:
        self._capacity = max(expected_rows, 1)
        self._numbers: dict[str, np.ndarray] = {}  # allocated by the first add, in that file's dtypes
        self._ids: list[pd.api.extensions.ExtensionArray] = []  # one per add (arrays: cheaper to slice than Series)
        self.lengths: list[int] = []  # rows of each file added
        self.rows = 0

    def add(self, ids: pd.Series, numbers: NumberColumns, lengths: list[int] | None = None) -> None:
        """Append the columns of one file (from :func:`read_schema_columns` or a :func:`check_schema` frame),
        or of several files read together, ``lengths`` giving each one's rows in order."""
        count = len(ids)
        end = self.rows + count
        if end > self._capacity:
            self._reserve(max(end, 2 * self._capacity))
        for name in NUMBER_COLUMNS:
            values = numbers[name]
            buffer = self._numbers.get(name)
            if buffer is None:
                buffer = self._numbers[name] = np.empty(self._capacity, dtype=values.dtype)
            elif np.result_type(buffer, values) != buffer.dtype:  # as concat would: int becomes float
                buffer = self._numbers[name] = self._moved(buffer, self._capacity, np.result_type(buffer, values))
            buffer[self.rows : end] = values
        self._ids.append(ids.array)
        self.lengths.extend([count] if lengths is None else lengths)
        self.rows = end

    def _moved(self, buffer: np.ndarray, capacity: int, dtype: np.dtype) -> np.ndarray:
        moved = np.empty(capacity, dtype=dtype)
        moved[: self.rows] = buffer[: self.rows]
        return moved

    def _reserve(self, capacity: int) -> None:
        for name, buffer in self._numbers.items():
            self._numbers[name] = self._moved(buffer, capacity, buffer.dtype)
        self._capacity = capacity

    def merge(self, names: list[str]) -> tuple[pd.DataFrame, pd.Series, np.ndarray]:
        """Drop whole-row duplicates (first occurrence wins, in the order added; ids compared once cleaned),
        clean the ids, and return the merged frame, each kept row's source (from ``names``, one per add) and
        per-add counts of dropped duplicates. The buffers are handed over: add nothing after merging."""
        numbers = {name: buffer[: self.rows] for name, buffer in self._numbers.items()}
        self._numbers.clear()
        numbers[TARGET] = numbers[TARGET].astype(np.int64, copy=False)
        codes = np.repeat(np.arange(len(self.lengths), dtype=np.min_scalar_type(len(self.lengths))), self.lengths)
        duplicated = _duplicated(self._ids, numbers)
        dropped = np.bincount(codes[duplicated], minlength=len(self.lengths))
        if duplicated.any():
            keep = ~duplicated
            codes = codes[keep]
            for name in NUMBER_COLUMNS:  # one column at a time: each old buffer goes as its copy comes
                numbers[name] = numbers[name][keep]
            ends = np.cumsum([len(part) for part in self._ids])
            for index, (part, end) in enumerate(zip(self._ids, ends)):  # part by part, no full-size copy
                kept = keep[end - len(part) : end]
                if not kept.all():
                    self._ids[index] = part[kept]
        ids = _joined(self._ids).astype("string")
        self._ids.clear()
        data = pd.DataFrame({ID_COLUMN: ids.reset_index(drop=True), **numbers}, copy=False)
        source = pd.Series(pd.Categorical.from_codes(codes, categories=names))
        return data, source, dropped


def _clean_ids(ids: pd.Series) -> pd.Series:
    """Ids as :func:`check_schema` leaves them: text, surrounding whitespace removed."""
    return ids.astype("string").str.strip()


def merge_frames(frames: list[pd.DataFrame], names: list[str]) -> tuple[pd.DataFrame, pd.Series, np.ndarray]:
    """Merge frames from :func:`check_schema` once (see :class:`ColumnBuffer`): the merged frame without
    whole-row duplicates (first occurrence wins, frames in order), each kept row's source, per-frame dropped counts."""
    merged = ColumnBuffer(sum(len(frame) for frame in frames))
    for frame in frames:
        merged.add(*_columns_of(frame))
    return merged.merge(names)


# --- whole-row duplicates ---


def _row_hashes(columns: list[np.ndarray], start: int = 0, stop: int | None = None) -> np.ndarray:
    """A 64-bit hash per row (``start`` to ``stop``) of numeric columns: rows with equal numbers (NaN and
    -0.0 included) hash alike."""
    stop = len(columns[0]) if stop is None else stop
    hashes = np.zeros(stop - start, dtype=np.uint64)
    for block in range(start, stop, HASH_BLOCK_ROWS):
        part = hashes[block - start : min(block + HASH_BLOCK_ROWS, stop) - start]
        for column in columns:
            values = column[block : block + len(part)]
            if values.dtype.kind == "f":
                values = values + 0.0  # -0.0 becomes 0.0
                values[np.isnan(values)] = np.nan  # one NaN bit pattern
            part ^= values.view(np.uint64) if values.dtype.itemsize == 8 else values.astype(np.uint64)
            part *= HASH_MULTIPLIER  # wraps around, as intended
            part ^= part >> np.uint64(29)
    return hashes


def _rows_sharing_a_hash(columns: list[np.ndarray]) -> np.ndarray:
    """Positions (ascending) of the rows whose numbers hash like at least one other row's.

    The hashes are sorted in place to find the repeated ones, then recomputed block by block to find
    their rows: one hash array at a time, never a sorted copy beside it.
    """
    rows = len(columns[0])
    hashes = _row_hashes(columns)
    hashes.sort()
    repeated = np.unique(hashes[1:][hashes[1:] == hashes[:-1]])
    del hashes
    if not repeated.size:
        return np.zeros(0, dtype=np.int64)
    found = []
    for start in range(0, rows, HASH_BLOCK_ROWS):
        block = _row_hashes(columns, start, min(start + HASH_BLOCK_ROWS, rows))
        slot = np.minimum(np.searchsorted(repeated, block), repeated.size - 1)
        found.append(np.flatnonzero(repeated[slot] == block) + start)
    return np.concatenate(found)


def _joined(parts: list[pd.api.extensions.ExtensionArray]) -> pd.Series:
    """One Series of the values of ``parts``, in order."""
    return pd.concat([pd.Series(part, copy=False) for part in parts], ignore_index=True)


def _take_rows(parts: list[pd.api.extensions.ExtensionArray], rows: np.ndarray) -> pd.Series:
    """Rows (ascending positions in the concatenation of ``parts``) taken part by part, without joining them."""
    offsets = np.cumsum([0] + [len(part) for part in parts])
    which = np.searchsorted(offsets, rows, side="right") - 1
    bounds = np.flatnonzero(np.diff(which, prepend=-1, append=len(parts)))
    return _joined([parts[which[a]].take(rows[a:b] - offsets[which[a]]) for a, b in zip(bounds[:-1], bounds[1:])])


def _same_id(one: object, other: object) -> bool:
    """Whether two cleaned ids are equal, a missing id being equal to a missing one (as in duplicated())."""
    return one is other or (one is not pd.NA and other is not pd.NA and one == other)


def _equal_to_first(columns: list[np.ndarray], ids: list[object]) -> np.ndarray | None:
    """``duplicated()`` of the rows made of ``ids`` and numeric ``columns`` (the first column hashing the ids):
    rows are grouped by hash and each is compared with its group's first row (missing equals missing).
    None if a hash collision put unequal rows together."""
    rows = len(ids)
    order = np.argsort(_row_hashes(columns), kind="stable")  # by hash, then by position
    ordered = _row_hashes([values[order] for values in columns])
    starts = np.ones(rows, dtype=bool)
    starts[1:] = ordered[1:] != ordered[:-1]
    first = order[np.maximum.accumulate(np.where(starts, np.arange(rows), 0))]
    for values in columns:
        mine, theirs = values[order], values[first]
        same = mine == theirs
        if values.dtype.kind == "f":
            same |= np.isnan(mine) & np.isnan(theirs)
        if not same.all():
            return None
    later = order[~starts]
    if not all(_same_id(ids[row], ids[head]) for row, head in zip(later, first[~starts])):
        return None
    duplicated = np.zeros(rows, dtype=bool)
    duplicated[later] = True
    return duplicated


def _duplicated(ids: list[pd.api.extensions.ExtensionArray], numbers: dict[str, np.ndarray]) -> np.ndarray:
    """Whole-row duplicates (first occurrence kept) of the rows made of ``ids`` (per-file parts, compared once
    cleaned) and ``numbers``, exactly as ``DataFrame.duplicated()`` says, in a fraction of its memory.

    Equal rows have equal numbers, so only rows whose numbers hash like another row's can be duplicates;
    those few are compared value by value. Should a hash collision ever mix unequal rows, pandas decides for
    them instead.
    """
    rows = len(next(iter(numbers.values())))
    duplicated = np.zeros(rows, dtype=bool)
    if rows < 2:
        return duplicated
    candidates = _rows_sharing_a_hash(list(numbers.values()))
    if candidates.size:
        candidate_ids = _clean_ids(_take_rows(ids, candidates))
        id_values = candidate_ids.tolist()
        id_hashes = np.fromiter(map(hash, id_values), dtype=np.int64, count=len(id_values))
        columns = [id_hashes, *(values[candidates] for values in numbers.values())]
        found = _equal_to_first(columns, id_values)
        if found is None:
            found = pd.DataFrame(
                {ID_COLUMN: candidate_ids, **{name: values[candidates] for name, values in numbers.items()}}
            ).duplicated()
        duplicated[candidates] = found
    return duplicated
