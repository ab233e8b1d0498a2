"""Step 1, ingestion: merge every data file in the input folder into ``finaldata.csv``.

Each file (CSV, or JSON records) is checked against the schema; a bad file is rejected with a message
naming the file and the problem while every good file is still ingested. Whole duplicate rows are dropped,
``finaldata.csv`` and the course's ``ingestedfiles.txt`` are written to the output folder, and a record per
file (name, location, sha256, rows read/kept, duplicates dropped, accepted/rejected and why) goes to the
records store. Source files are only ever read. A file rejected before is skipped until its content changes.
"""

from __future__ import annotations

import io
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from datafiles import DATA_SUFFIXES, FINAL_DATA_NAME, INGESTED_FILES_NAME, DataFile, scan_folder
from plumbing import UserFacingError, atomic_write, atomic_write_text, make_parser, run_script
from records import IngestionRecord, RecordsStore
from settings import Settings

log = logging.getLogger("ingestion")

ID_COLUMN = "corporation"
FEATURES = ("lastmonth_activity", "lastyear_activity", "number_of_employees")
TARGET = "exited"
COLUMNS = (ID_COLUMN, *FEATURES, TARGET)
SEPARATOR_HINTS = {";": "semicolons", "\t": "tabs", "|": "pipes"}


class DataFileError(ValueError):
    """A data file or payload does not meet the schema; the message says what is wrong and how to fix it."""


@dataclass
class IngestionResult:
    """The merged data, which file each kept row came from, and the per-file records."""

    data: pd.DataFrame
    source: pd.Series
    records: list[IngestionRecord]

    @property
    def accepted(self) -> list[str]:
        return [r.file_name for r in self.records if r.status == "accepted"]

    @property
    def rejected(self) -> list[IngestionRecord]:
        return [r for r in self.records if r.status == "rejected"]

    def rows_from(self, file_names: set[str]) -> pd.DataFrame:
        """The kept rows that came from the given files (e.g. the new batch)."""
        return self.data[self.source.isin(file_names).to_numpy()]


# --- the data contract ---


def _row_label(position: int) -> str:
    """Human row label for a 0-based data row: the line in the file (line 1 is the header)."""
    return f"line {position + 2}"


def _shown(value: object) -> str:
    """A cell value as the user wrote it, quoted ('abc', '2'), or 'an empty cell'."""
    if pd.isna(value):
        return "an empty cell"
    return repr(value.item() if isinstance(value, np.generic) else value)


def _numeric_column(frame: pd.DataFrame, column: str) -> pd.Series:
    """The column as numbers; empty cells stay missing; any other non-number raises DataFileError."""
    values = frame[column]
    if pd.api.types.is_bool_dtype(values):
        raise DataFileError(f"has true/false values in column {column!r}; {column} must be a number")
    numbers = values if pd.api.types.is_numeric_dtype(values) else pd.to_numeric(values, errors="coerce")
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
            f"is missing column(s) {', '.join(missing)} (found: {', '.join(map(str, columns)) or 'none'}); "
            f"expected {', '.join(expected)}"
        )
    if extra:
        return f"has unexpected column(s) {', '.join(map(str, extra))}; expected exactly {', '.join(expected)}"
    if len(set(columns)) != len(columns):
        return "repeats a column name; each of " + ", ".join(expected) + " must appear once"
    return None


def check_schema(frame: pd.DataFrame, require_target: bool = True, require_id: bool = True) -> pd.DataFrame:
    """Validate a frame against the schema and return it with clean column order and dtypes.

    Raises DataFileError naming the column (and row) at fault. Without ``require_id`` the ``corporation``
    column is optional; without ``require_target`` the ``exited`` column is optional.
    """
    frame = frame.rename(columns=lambda c: str(c).strip())
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
        clean[ID_COLUMN] = frame[ID_COLUMN].astype("string").str.strip()
    for column in FEATURES:
        clean[column] = _numeric_column(frame, column)
    if TARGET in columns:
        clean[TARGET] = _target_column(frame)
    return pd.DataFrame(clean, index=pd.RangeIndex(len(frame)))


def _decode(raw: bytes) -> str:
    if not raw.strip():
        raise DataFileError("is empty; it needs a header line and data rows")
    if b"\x00" in raw:
        raise DataFileError("is not a text file (it holds binary data); save the data as a comma-separated CSV")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise DataFileError(
            f"has bytes that are not UTF-8 text (byte {err.start}: {raw[err.start:err.start + 1]!r}); "
            "re-save it as UTF-8"
        ) from None


def parse_csv_text(text: str) -> pd.DataFrame:
    """Parse CSV text into a raw frame (no schema check); DataFileError if it is not CSV."""
    try:
        return pd.read_csv(io.StringIO(text), skipinitialspace=True)
    except pd.errors.EmptyDataError:
        raise DataFileError("is empty; it needs a header line and data rows") from None
    except (pd.errors.ParserError, ValueError) as err:
        detail = str(err).strip().splitlines()[-1]
        raise DataFileError(f"is not a valid CSV ({detail}); check the number of commas on each line") from None


def parse_json_records(text: str) -> pd.DataFrame:
    """Parse JSON records (a list of objects) into a raw frame (no schema check)."""
    try:
        payload = json.loads(text)
    except json.JSONDecodeError as err:
        raise DataFileError(f"is not valid JSON (line {err.lineno} column {err.colno}: {err.msg})") from None
    if not isinstance(payload, list) or not all(isinstance(row, dict) for row in payload):
        raise DataFileError('must hold JSON records: a list of objects such as [{"corporation": "abcd", ...}]')
    if not payload:
        raise DataFileError("holds no records; add rows or remove the file")
    return pd.DataFrame.from_records(payload)


def read_data_file(path: Path) -> pd.DataFrame:
    """Read and validate one data file; DataFileError says what is wrong (the caller names the file)."""
    suffix = path.suffix.lower()
    if suffix not in DATA_SUFFIXES:
        raise DataFileError(
            f"has an unsupported type {suffix or '(no extension)'!r}; save the data as .csv (comma-separated) "
            "or .json (records)"
        )
    text = _decode(path.read_bytes())
    frame = parse_json_records(text) if suffix == ".json" else parse_csv_text(text)
    return check_schema(frame)


# --- reading many files fast ---


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


def _fast_csv(path: Path) -> pd.DataFrame | None:
    """The raw frame of a plain CSV file, parsed straight from its bytes; None when anything is unusual."""
    if path.suffix.lower() != ".csv":
        return None
    raw = path.read_bytes()
    if not _plain_text(raw):
        return None
    try:
        return pd.read_csv(io.BytesIO(raw), skipinitialspace=True)
    except (pd.errors.ParserError, ValueError):
        return None


def _as_read_is_valid(frame: pd.DataFrame) -> bool:
    """True when a parsed frame already meets the schema, so :func:`check_schema` could only reorder it and
    clean its ids: the five columns, some rows, finite numbers (no text, no true/false) and ``exited`` in {0, 1}.

    Whole-column numpy checks; a False answer sends the file through check_schema, which names the problem.
    """
    names = [str(c).strip() for c in frame.columns]
    if frame.empty or len(names) != len(COLUMNS) or set(names) != set(COLUMNS):
        return False
    for label, name in zip(frame.columns, names):
        if name == ID_COLUMN:
            continue
        values = frame[label].to_numpy()
        if not isinstance(values.dtype, np.dtype) or values.dtype.kind not in "iuf":
            return False
        if values.dtype.kind == "f" and np.isinf(values).any():
            return False
        if name == TARGET and not ((values == 0) | (values == 1)).all():
            return False
    return True


def read_valid_frame(path: Path) -> pd.DataFrame:
    """Read one data file for merging: a frame meeting the schema, columns in schema order.

    Same outcome as :func:`read_data_file` (the same DataFileError for a bad file), but a plain CSV that is
    valid as parsed skips the per-file cleaning: its ids are cleaned for all files at once by
    :func:`merge_frames`, and its ``exited`` may still be 0.0/1.0.
    """
    frame = _fast_csv(path)
    if frame is None:
        return read_data_file(path)
    if not _as_read_is_valid(frame):
        return check_schema(frame)
    names = [str(c).strip() for c in frame.columns]
    if names != list(COLUMNS):
        frame = frame.set_axis(names, axis=1)[list(COLUMNS)]
    return frame


# --- merging ---


def _record(file: DataFile, status: str, **fields: object) -> IngestionRecord:
    return IngestionRecord(
        file_name=file.name,
        location=file.location or str(file.path.resolve()),
        sha256=file.sha256,
        size_bytes=file.size_bytes,
        mtime_ns=file.mtime_ns,
        status=status,
        **fields,
    )


class MergedFrames:
    """Schema-valid frames of many files, added one at a time and merged once by :meth:`merge`.

    Numbers are copied straight into column buffers that are reserved up front but only take memory as rows
    arrive, and each file's frame can be dropped as soon as it is added: memory stays near the size of the
    merged data however many files there are (no repeated concatenation, no second copy of every file).
    """

    NUMBER_COLUMNS = (*FEATURES, TARGET)

    def __init__(self, expected_rows: int = 1 << 16) -> None:
        self._capacity = max(expected_rows, 1)
        self._numbers = {name: np.empty(self._capacity, dtype=np.int64) for name in self.NUMBER_COLUMNS}
        self._ids: list[pd.Series] = []
        self.lengths: list[int] = []
        self.rows = 0

    def add(self, frame: pd.DataFrame) -> None:
        """Append a frame from :func:`read_valid_frame` (or :func:`check_schema`)."""
        end = self.rows + len(frame)
        if end > self._capacity:
            self._reserve(max(end, 2 * self._capacity))
        for name in self.NUMBER_COLUMNS:
            values = frame[name].to_numpy()
            buffer = self._numbers[name]
            if np.result_type(buffer.dtype, values.dtype) != buffer.dtype:  # as concat would: int becomes float
                buffer = self._numbers[name] = self._moved(buffer, self._capacity, np.result_type(buffer, values))
            buffer[self.rows:end] = values
        self._ids.append(frame[ID_COLUMN])
        self.lengths.append(len(frame))
        self.rows = end

    def _moved(self, buffer: np.ndarray, capacity: int, dtype: np.dtype) -> np.ndarray:
        moved = np.empty(capacity, dtype=dtype)
        moved[:self.rows] = buffer[:self.rows]
        return moved

    def _reserve(self, capacity: int) -> None:
        for name, buffer in self._numbers.items():
            self._numbers[name] = self._moved(buffer, capacity, buffer.dtype)
        self._capacity = capacity

    def merge(self, names: list[str]) -> tuple[pd.DataFrame, pd.Series, np.ndarray]:
        """Clean the ids, drop whole-row duplicates (first occurrence wins, in the order added) and return the
        merged frame, each kept row's source (from ``names``, one per frame added) and per-frame counts of
        dropped duplicates. The buffers are handed over: add nothing after merging."""
        ids = pd.concat(self._ids, ignore_index=True).astype("string").str.strip()
        self._ids.clear()
        numbers = {name: buffer[:self.rows] for name, buffer in self._numbers.items()}
        self._numbers.clear()
        numbers[TARGET] = numbers[TARGET].astype(np.int64, copy=False)
        codes = np.repeat(np.arange(len(self.lengths)), self.lengths)
        duplicated = _duplicated(ids, numbers)
        dropped = np.bincount(codes[duplicated], minlength=len(self.lengths))
        if duplicated.any():
            keep = ~duplicated
            ids, codes = ids[keep].reset_index(drop=True), codes[keep]
            for name in self.NUMBER_COLUMNS:  # one column at a time: the old buffer goes as the copy comes
                numbers[name] = numbers[name][keep]
        data = pd.DataFrame({ID_COLUMN: ids, **numbers}, copy=False)
        source = pd.Series(pd.Categorical.from_codes(codes, categories=names))
        return data, source, dropped


def _row_hashes(columns: list[np.ndarray]) -> np.ndarray:
    """A 64-bit hash per row of numeric columns: rows with equal numbers (NaN and -0.0 included) hash alike."""
    hashes = np.zeros(len(columns[0]), dtype=np.uint64)
    for values in columns:
        if values.dtype.kind == "f":
            values = values + 0.0  # -0.0 becomes 0.0
            values[np.isnan(values)] = np.nan  # one NaN bit pattern
            values = values.view(np.uint64)
        hashes ^= values.astype(np.uint64)
        hashes *= np.uint64(0x9E3779B97F4A7C15)  # spread the bits (wraps around, as intended)
        hashes ^= hashes >> np.uint64(29)
    return hashes


def _shared_hash_rows(hashes: np.ndarray) -> np.ndarray:
    """Positions (ascending) of the rows whose hash another row also has."""
    order = np.argsort(hashes, kind="stable")
    ordered = hashes[order]
    same = ordered[1:] == ordered[:-1]
    del ordered
    shared = np.zeros(len(hashes), dtype=bool)
    shared[order[1:][same]] = True
    shared[order[:-1][same]] = True
    return np.flatnonzero(shared)


def _duplicated(ids: pd.Series, numbers: dict[str, np.ndarray]) -> np.ndarray:
    """Whole-row duplicates (first occurrence kept) of the frame made of ``ids`` and ``numbers``, as
    ``DataFrame.duplicated()`` says, in a fraction of its memory: equal rows have equal numbers, so only rows
    whose numbers hash like another row's can be duplicates, and pandas compares just those, in order."""
    duplicated = np.zeros(len(ids), dtype=bool)
    if len(ids) < 2:
        return duplicated
    candidates = _shared_hash_rows(_row_hashes(list(numbers.values())))
    if candidates.size:
        subset = pd.DataFrame({ID_COLUMN: ids.iloc[candidates].reset_index(drop=True),
                               **{name: values[candidates] for name, values in numbers.items()}})
        duplicated[candidates] = subset.duplicated().to_numpy()
    return duplicated


def merge_frames(frames: list[pd.DataFrame], names: list[str]) -> tuple[pd.DataFrame, pd.Series, np.ndarray]:
    """Merge schema-valid frames once (see :class:`MergedFrames`): the merged frame without whole-row
    duplicates (first occurrence wins, frames in order), each kept row's source name, per-frame dropped counts."""
    merged = MergedFrames(sum(len(frame) for frame in frames))
    for frame in frames:
        merged.add(frame)
    return merged.merge(names)


def _expected_rows(files: list[DataFile]) -> int:
    """Room to reserve for the rows of ``files``: a row takes at least 10 bytes (``a,0,0,0,0`` and a newline)."""
    return min(sum(file.size_bytes for file in files) // 10 + len(files), 1 << 26)


def _read_accepted(
    files: list[DataFile], store: RecordsStore, merged: MergedFrames
) -> tuple[list[DataFile], list[IngestionRecord]]:
    """Read every file into ``merged``, skipping known-bad ones; returns the good files and rejection records."""
    good, rejected = [], []
    earlier = store.rejection_reasons([file.key for file in files])
    for file in files:
        if file.key in earlier:
            log.info("skipped %s: rejected before and unchanged (%s)", file.path, earlier[file.key])
            continue
        try:
            merged.add(read_valid_frame(file.path))
            good.append(file)
        except DataFileError as err:
            log.warning("rejected %s: %s %s", file.path, file.name, err)
            rejected.append(_record(file, "rejected", reason=f"{file.name} {err}"))
        except OSError as err:
            log.warning("rejected %s: cannot read it (%s)", file.path, err.strerror)
            rejected.append(_record(file, "rejected", reason=f"{file.name} cannot be read: {err.strerror}"))
    return good, rejected


def write_outputs(settings: Settings, data: pd.DataFrame, accepted: list[str]) -> None:
    """Write ``finaldata.csv`` and ``ingestedfiles.txt`` atomically."""
    out = settings.output_folder_path
    atomic_write(out / FINAL_DATA_NAME, lambda tmp: data.to_csv(tmp, index=False))
    atomic_write_text(out / INGESTED_FILES_NAME, "".join(f"{name}\n" for name in accepted))


def merge_multiple_dataframe(settings: Settings, store: RecordsStore, run_id: int | None = None) -> IngestionResult:
    """Ingest every data file in the input folder; write the outputs and one record per file.

    Raises UserFacingError (after recording any rejections) when no file holds valid data.
    """
    folder = settings.input_folder_path
    files = scan_folder(folder, store)
    merged = MergedFrames(_expected_rows(files))
    good, rejected = _read_accepted(files, store, merged)
    if not good:
        store.record_ingestions(rejected, run_id)
        raise UserFacingError(
            f"no valid data files in {folder} ({len(files)} file(s) there, {len(rejected)} rejected now); "
            "add CSV files with columns " + ", ".join(COLUMNS)
        )
    names = [f.name for f in good]
    data, source, dropped = merged.merge(names)
    accepted = [
        _record(f, "accepted", rows_read=read, rows_kept=read - int(d), duplicates_dropped=int(d))
        for f, read, d in zip(good, merged.lengths, dropped)
    ]
    write_outputs(settings, data, names)
    records = sorted(accepted + rejected, key=lambda r: r.file_name)
    store.record_ingestions(records, run_id)
    log.info(
        "ingested %d file(s) from %s: %d rows kept, %d duplicate(s) dropped, %d file(s) rejected",
        len(good), folder, len(data), int(dropped.sum()), len(rejected),
    )
    return IngestionResult(data=data, source=source, records=records)


def main() -> None:
    parser = make_parser("Merge the data files of the input folder into finaldata.csv and record each file.")
    args = parser.parse_args()

    def step(settings: Settings) -> int:
        with RecordsStore(settings.records_db_path) as store:
            merge_multiple_dataframe(settings, store)
        return 0

    raise SystemExit(run_script(args, step))


if __name__ == "__main__":
    main()
