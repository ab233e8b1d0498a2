"""The risk list the client managers act on: every client ranked by attrition probability, with a band and a reason.

**Rank.** Highest probability first; equal probabilities by corporation id (so the same book and model always
give the same list), ``rank`` 1..n with no gaps.

**Band** (``band``, 1..10): the decile of the ranking within this book. Band 1 is the riskiest tenth of the
clients, band 10 the safest; clients with equal probabilities share the band of the first of them. Deciles and
not probability thresholds ("high" above 0.5...), because the course model is not well calibrated (its
probabilities come from a straight line in raw activity counts; on the synthetic book they are off by up to 0.15
in places, see risk.cbpe.reliability) and a threshold on a miscalibrated probability says little, while its
ranking still holds: a decile says "among the riskiest 10% of our book" whatever the calibration, and it maps onto
the managers' work (10,000 clients: band 1 is the first 1,000 calls). It is relative: a band-1 client of a calm
book may be safer than a band-3 client of a bad one; the probability column is there for that comparison.

**Reason**: the feature that pushes the client's risk up the most, from the model's own coefficients against
the typical client: contribution ``coef_j * (x_j - median_j)`` in log-odds, the largest positive one, worded by
direction and by strength against the training quartiles: "below typical" inside the middle half of training
clients, "far below typical" beyond the lower quartile (likewise above), e.g. "last month's activity far below
typical (12 vs typical 96)". A client with no positive contribution gets "no factor above typical" (its risk is
the model's baseline, not anything particular to it). A missing value is imputed with the median by the model,
so it never is the reason.

Everything per client is vectorised; reasons are built once per distinct (wording, value) pair and dictionary
encoded. The CSV is written by pyarrow's writer (a pinned dependency), atomically (risk.files.atomic_write).

**The list the pipeline keeps**: :func:`refresh_risk_list` is the one producer of ``risklist.csv`` in
``output_model_path``: it ranks the book with the deployed model, writes the list, and records it in the store
with its summary (the CBPE estimate, the top 100's corporations, which the next list's "what changed" compares
with, and the model's calibration on the labelled ingested rows), so that a GET only reads.
"""

from __future__ import annotations

import io
import logging
import os
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple, TextIO

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from risk.artifacts import FINAL_DATA_NAME, RISK_LIST_NAME
from risk.cbpe import F1Estimate, Reliability, estimate_f1, reliability
from risk.config import Settings
from risk.datasets import read_final_data
from risk.deployed import DeployedModel
from risk.errors import UserFacingError
from risk.files import atomic_write, sha256_bytes, sha256_file
from risk.predict import is_sklearn, labels, predict_frame
from risk.schema import (
    FEATURES,
    ID_COLUMN,
    READ_CSV_NA_MARKERS,
    TARGET,
    DataFileError,
    check_schema,
    decode_text,
    parse_csv_text,
    parse_json_records,
)
from risk.store import RecordsStore, RiskListRow

log = logging.getLogger("risk.risklist")

COLUMNS = ("rank", "corporation", "probability", "band", "reason", "model_version")
COLUMN_TYPES = {
    "rank": "int64",
    "corporation": "str",
    "probability": "float64",
    "band": "int64",
    "reason": "str",
    "model_version": "str",
}
BANDS = 10  # deciles
TRACKED_TOP = 100  # the top of the list whose entrants the dashboard shows (recorded with each list)
RELIABILITY_BINS = 10
FEATURE_WORDS = {
    "lastmonth_activity": "last month's activity",
    "lastyear_activity": "last year's activity",
    "number_of_employees": "number of employees",
}
NO_REASON = "no factor above typical"
PROGRESS_MIN_BYTES = 2 * 2**20  # about 130,000 clients (a quarter second): smaller books need no bar
WRITE_BATCH_ROWS = 250_000
MISSING_STRINGS = READ_CSV_NA_MARKERS  # for the number columns only: an id such as "NA" or "null" is a client
PACKED_ID_BYTES = 7  # ids up to this long are checked for repeats as packed integers (fast); longer ones by pandas
BOOK_CSV_OPTIONS: dict[str, Any] = {
    "keep_default_na": False,
    "na_values": {column: list(MISSING_STRINGS) for column in (*FEATURES, TARGET)},
    "skipinitialspace": True,
    "index_col": False,
    "encoding": "utf-8-sig",
}


class Quartiles(NamedTuple):
    """A feature's lower quartile, median and upper quartile in the training data."""

    lower: float
    median: float
    upper: float


@dataclass(frozen=True)
class TypicalClient:
    """What "typical" means: per feature (in risk.schema.FEATURES order), the training data's quartiles."""

    quartiles: tuple[Quartiles, ...]
    rows: int  # training rows they were computed from

    def __post_init__(self) -> None:
        if len(self.quartiles) != len(FEATURES):
            raise ValueError(f"a typical client needs quartiles for {len(FEATURES)} features ({', '.join(FEATURES)})")
        for name, q in zip(FEATURES, self.quartiles):
            if not (np.isfinite(q).all() and q.lower <= q.median <= q.upper):
                raise ValueError(f"quartiles of {name} must be finite and ordered lower <= median <= upper: {q}")

    def of(self, feature: str) -> Quartiles:
        return self.quartiles[FEATURES.index(feature)]

    def as_json(self) -> dict[str, Any]:
        """JSON-ready values (stored in the model metadata at training time)."""
        return {
            "rows": self.rows,
            "features": {
                name: {"lower_quartile": q.lower, "median": q.median, "upper_quartile": q.upper}
                for name, q in zip(FEATURES, self.quartiles)
            },
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TypicalClient:
        """The typical client written by :meth:`as_json`; ValueError naming what is missing."""
        try:
            features = data["features"]
            quartiles = tuple(
                Quartiles(
                    float(features[name]["lower_quartile"]),
                    float(features[name]["median"]),
                    float(features[name]["upper_quartile"]),
                )
                for name in FEATURES
            )
            return cls(quartiles=quartiles, rows=int(data["rows"]))
        except (KeyError, TypeError) as err:
            raise ValueError(
                f"typical client is missing {err}; it must be TypicalClient.as_json() of the training data "
                "(retrain the model to record it)"
            ) from None


def typical_client(frame: pd.DataFrame) -> TypicalClient:
    """The typical client of a (schema-checked) training frame: quartiles per feature, missing values skipped."""
    values = frame[list(FEATURES)].to_numpy(dtype="float64", na_value=np.nan)
    empty = [name for name, column in zip(FEATURES, values.T) if np.isnan(column).all()]
    if empty:
        raise ValueError(f"no values in {', '.join(empty)}: the training data cannot say what a typical client is")
    lower, median, upper = np.nanquantile(values, [0.25, 0.5, 0.75], axis=0)
    return TypicalClient(
        quartiles=tuple(Quartiles(float(a), float(b), float(c)) for a, b, c in zip(lower, median, upper)),
        rows=len(frame),
    )


@dataclass(frozen=True, eq=False)
class RiskList:
    """A ranked book: ``frame`` has :data:`COLUMNS`, one row per client, rank 1 first."""

    frame: pd.DataFrame
    model_version: str
    book_sha256: str  # of the client book that was ranked
    scored_at: str  # ISO 8601 UTC
    rows: int
    estimate: F1Estimate  # CBPE: the F1 the model should reach on this book, before any label arrives

    def top(self, count: int = 100) -> pd.DataFrame:
        return self.frame.iloc[:count]

    def summary_json(self) -> dict[str, Any]:
        """Everything but the rows, JSON-ready (for the API's ``GET /risk`` and the records store)."""
        return {
            "model_version": self.model_version,
            "book_sha256": self.book_sha256,
            "scored_at": self.scored_at,
            "rows": self.rows,
            "estimate": self.estimate.as_json(),
        }


class Entrant(NamedTuple):
    """A client who entered the top of the risk list since the previous one."""

    rank: int
    corporation: str
    probability: float
    band: int
    reason: str
    previous_rank: int | None  # None: not on the previous list given (a new client; or outside it, when only
    # the previous top was kept, as the store keeps it)


class LinearTerms(NamedTuple):
    """What the reasons need from the model: log-odds per unit of each feature, and the exit column."""

    coefficients: np.ndarray
    exit_column: int  # predict_proba's column for exited=1


# --- progress --------------------------------------------------------------------------------------------------

STAGES = ("reading", "checking", "scoring", "explaining", "ranking", "writing")


@dataclass
class _Progress:
    """A one-line progress bar on ``stream`` (None: silent), stage by stage; redrawn at most 10 times a second."""

    label: str
    stream: TextIO | None
    width: int = 24
    _shown: tuple[str, int] = field(default=("", -1), repr=False)
    _drawn_at: float = field(default=0.0, repr=False)
    _started: float = field(default_factory=time.monotonic, repr=False)

    def stage(self, name: str, fraction: float = 0.0) -> None:
        if self.stream is None:
            return
        percent = int(100 * (STAGES.index(name) + min(max(fraction, 0.0), 1.0)) / len(STAGES))
        now = time.monotonic()
        if (name, percent) == self._shown or (name == self._shown[0] and now - self._drawn_at < 0.1):
            return
        self._shown, self._drawn_at = (name, percent), now
        filled = self.width * percent // 100
        self.stream.write(f"\r{self.label} [{'#' * filled}{'.' * (self.width - filled)}] {percent:3d}% {name:<10}")
        self.stream.flush()

    def finish(self, message: str) -> None:
        """End the bar's line with ``message`` (e.g. done, or failed)."""
        if self.stream is None or self._shown[1] < 0:
            return
        self.stream.write(
            f"\r{self.label} {message} in {time.monotonic() - self._started:.1f} s".ljust(
                len(self.label) + self.width + 20
            )
            + "\n"
        )
        self.stream.flush()


def _silent() -> _Progress:
    return _Progress("", None)


class _CountingFile(io.FileIO):
    """A file whose reads report the share of it read so far (for the progress bar while pandas parses)."""

    def __init__(self, path: Path, report: Callable[[float], None]) -> None:
        super().__init__(path, "rb")
        self._size = max(os.fstat(self.fileno()).st_size, 1)
        self._report = report

    def readinto(self, buffer: Any) -> int | None:
        count = super().readinto(buffer)
        self._report(self.tell() / self._size)
        return count

    def read(self, size: int = -1) -> bytes:
        data = super().read(size)
        self._report(self.tell() / self._size)
        return data


# --- the pure parts: check, explain, order ---------------------------------------------------------------------


def _line(position: int) -> str:
    """Line in the file of a 0-based data row (line 1 is the header), as risk.schema names rows."""
    return f"line {position + 2}"


def check_book(frame: pd.DataFrame) -> pd.DataFrame:
    """A client book checked: the schema (corporation and the features; an ``exited`` column is checked and
    ignored), every client with an id, each id once. DataFileError names the row and the fix."""
    checked = check_schema(frame, require_target=False)
    ids = checked[ID_COLUMN]
    missing = (ids.fillna("") == "").to_numpy()
    if missing.any():
        raise DataFileError(
            f"has no {ID_COLUMN} at {_line(int(np.flatnonzero(missing)[0]))}; every client needs its id in "
            f"column {ID_COLUMN!r} (fill it in or remove the row)"
        )
    if _has_repeated_id(ids):
        second = int(np.flatnonzero(ids.duplicated().to_numpy())[0])
        first = int(np.flatnonzero((ids == ids.iloc[second]).to_numpy())[0])
        raise DataFileError(
            f"has {ID_COLUMN} {ids.iloc[second]!r} twice ({_line(first)} and {_line(second)}); each client must "
            "appear once: remove the repeated row or give it its own id"
        )
    return checked


def _packed_ids(ids: pd.Series) -> np.ndarray | None:
    """Each id's UTF-8 bytes and length packed into one integer (equal integers: equal ids), or None when an id is
    longer than :data:`PACKED_ID_BYTES` bytes."""
    arrow = pa.chunked_array(ids.array.__arrow_array__()).combine_chunks()
    offset_type = np.int64 if pa.types.is_large_string(arrow.type) else np.int32
    offsets = np.frombuffer(arrow.buffers()[1], dtype=offset_type)[arrow.offset : arrow.offset + len(arrow) + 1]
    widths = np.diff(offsets).astype(np.int64)
    if widths.max(initial=0) > PACKED_ID_BYTES:
        return None
    data = np.frombuffer(arrow.buffers()[2], dtype=np.uint8)[offsets[0] : offsets[-1]]
    packed = np.zeros((len(arrow), 8), dtype=np.uint8)
    if (widths == widths[0]).all():  # the usual book: every id as long (a reshape, no scatter)
        packed[:, : widths[0]] = data.reshape(len(arrow), -1)
    else:
        row = np.repeat(np.arange(len(arrow)), widths)
        packed[row, np.arange(data.size) - np.repeat(offsets[:-1] - offsets[0], widths)] = data
    packed[:, 7] = widths  # the length makes "ab" and "ab\0" differ
    return packed.view(np.uint64).ravel()


def _has_repeated_id(ids: pd.Series) -> bool:
    packed = _packed_ids(ids)
    if packed is None:
        return bool(ids.duplicated().any())
    packed.sort()  # faster than hashing a million integers
    return bool((packed[1:] == packed[:-1]).any())


def linear_terms(model: Any) -> LinearTerms:
    """The coefficients of the course Pipeline (imputer -> LogisticRegression), or of a bare linear classifier.

    TypeError when the model cannot give reasons: steps that rescale the features before the classifier would
    make its coefficients meaningless against raw values.
    """
    steps = model.steps if is_sklearn(model, "pipeline", "Pipeline") else [("model", model)]
    *before, (_, classifier) = steps
    rescaling = [name for name, step in before if not is_sklearn(step, "impute", "SimpleImputer")]
    if rescaling:
        raise TypeError(
            f"the model's step(s) {', '.join(rescaling)} transform the features before the classifier; reasons "
            "need the course Pipeline (SimpleImputer then LogisticRegression)"
        )
    coefficients = np.asarray(getattr(classifier, "coef_", np.empty(0)), dtype="float64")
    if coefficients.shape != (1, len(FEATURES)):
        raise TypeError(
            f"the model has no fitted coefficients for the {len(FEATURES)} features; reasons need a fitted "
            "LogisticRegression (train it first)"
        )
    if [int(c) for c in getattr(model, "classes_", ())] != [0, 1]:
        raise TypeError(f"the model must be trained on {TARGET} = 0 and 1")
    return LinearTerms(coefficients=coefficients[0], exit_column=1)  # coef_ is toward classes_[1], exited=1


def _number(value: float) -> str:
    """A feature value as a manager reads it: at most one decimal, none when whole, no thousands separator."""
    return f"{value:.1f}".removesuffix(".0")


def explain(values: np.ndarray, coefficients: np.ndarray, typical: TypicalClient) -> tuple[np.ndarray, list[str]]:
    """Each client's main reason, dictionary encoded: (an index per client into the reasons, the reasons).

    ``values`` is (clients, features) in FEATURES order, NaN where missing. See the module docstring.
    """
    median, lower, upper = (
        np.array([getattr(q, part) for q in typical.quartiles]) for part in ("median", "lower", "upper")
    )
    contributions = np.nan_to_num(coefficients * (values - median), nan=0.0)  # missing: imputed as the median
    feature = contributions.argmax(axis=1)
    rows = np.arange(len(values))
    has_reason = contributions[rows, feature] > 0
    value = values[rows, feature]
    below = value < median[feature]
    far = np.where(below, value < lower[feature], value > upper[feature])
    wording = np.where(has_reason, feature * 4 + below * 2 + far, -1)  # 4 wordings per feature, -1: none
    shown = np.round(value, 1)
    codes = np.zeros(len(values), dtype="int32")
    reasons = [NO_REASON]
    for key in np.unique(wording[has_reason]).tolist():  # at most 12 wordings: a loop over wordings, not clients
        members = np.flatnonzero(wording == key)
        inverse, distinct = pd.factorize(shown[members])
        codes[members] = len(reasons) + inverse
        index, is_below, is_far = key // 4, bool(key % 4 // 2), bool(key % 2)
        words = f"{FEATURE_WORDS[FEATURES[index]]} {'far ' if is_far else ''}{'below' if is_below else 'above'} typical"
        typical_value = _number(median[index])
        reasons.extend(f"{words} ({_number(v)} vs typical {typical_value})" for v in distinct.tolist())
    return codes, reasons


def risk_order(probabilities: np.ndarray, ids: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Positions of the clients riskiest first (equal probabilities by id), and for each ranked client how many
    clients are strictly riskier (what its band is computed from)."""
    order = np.argsort(-probabilities)  # not stable, and need not be: every tie is re-sorted by id below
    ranked = probabilities[order]
    starts_run = np.ones(len(order), dtype=bool)
    starts_run[1:] = ranked[1:] != ranked[:-1]
    run = np.cumsum(starts_run) - 1
    run_starts = np.flatnonzero(starts_run)
    if run_starts.size < len(order):  # ties: only the tied clients are re-sorted, by id
        in_tie = ~starts_run
        in_tie[:-1] |= ~starts_run[1:]
        tied = np.flatnonzero(in_tie)
        keys = pd.DataFrame({"run": run[tied], "id": ids.iloc[order[tied]].to_numpy(dtype=object)})
        order[tied] = order[tied][keys.sort_values(["run", "id"], kind="stable").index.to_numpy()]
    return order, run_starts[run]


def _utc_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _string_column(values: pa.Array | pd.Series) -> pd.Series:
    return pd.Series(values, dtype="str")


def _rank(
    model: Any,
    clients: pd.DataFrame,
    typical: TypicalClient,
    model_version: str,
    book_sha256: str,
    scored_at: str | None,
    bar: _Progress,
) -> RiskList:
    if not model_version.strip():
        raise ValueError("model_version is empty; pass the deployed version (e.g. v0003)")
    bar.stage("checking")
    checked = check_book(clients)
    terms = linear_terms(model)
    bar.stage("scoring")
    features = checked[list(FEATURES)]
    probabilities = np.ascontiguousarray(model.predict_proba(features)[:, terms.exit_column], dtype="float64")
    bar.stage("explaining")
    codes, reasons = explain(features.to_numpy(dtype="float64", na_value=np.nan), terms.coefficients, typical)
    bar.stage("ranking")
    order, riskier = risk_order(probabilities, checked[ID_COLUMN])
    count = len(order)
    frame = pd.DataFrame(
        {
            "rank": np.arange(1, count + 1, dtype="int64"),
            "corporation": _string_column(checked[ID_COLUMN].array.take(order)),
            "probability": probabilities[order],
            "band": (riskier * BANDS // count + 1).astype("int64"),
            "reason": _string_column(pa.array(reasons, pa.string()).take(pa.array(codes[order]))),
            "model_version": _string_column(pa.repeat(pa.scalar(model_version, pa.string()), count)),
        }
    )
    return RiskList(
        frame=frame,
        model_version=model_version,
        book_sha256=book_sha256,
        scored_at=scored_at or _utc_now(),
        rows=count,
        estimate=estimate_f1(probabilities),
    )


def rank_clients(
    model: Any,
    clients: pd.DataFrame,
    typical: TypicalClient,
    model_version: str,
    book_sha256: str,
    *,
    scored_at: str | None = None,
) -> RiskList:
    """Rank a client book (raw or schema-checked frame: corporation and the features) riskiest first.

    ``model`` is the course Pipeline; ``typical`` the :class:`TypicalClient` of its training data;
    ``scored_at`` defaults to now. DataFileError (no file name: the caller adds it) for a bad book.
    """
    return _rank(model, clients, typical, model_version, book_sha256, scored_at, _silent())


# --- files -----------------------------------------------------------------------------------------------------


def _write_rows(handle: BinaryIO, table: pa.Table, quoting: str, bar: _Progress) -> None:
    """The header, then the rows in batches (so the progress bar moves)."""
    handle.seek(0)
    handle.truncate()
    handle.write((",".join(COLUMNS) + "\n").encode("ascii"))
    writer = pacsv.CSVWriter(
        handle, table.schema, write_options=pacsv.WriteOptions(include_header=False, quoting_style=quoting)
    )
    try:
        for start in range(0, table.num_rows, WRITE_BATCH_ROWS):
            writer.write_table(table.slice(start, WRITE_BATCH_ROWS))
            bar.stage("writing", (start + WRITE_BATCH_ROWS) / max(table.num_rows, 1))
    finally:
        writer.close()


def _write_csv(handle: BinaryIO, frame: pd.DataFrame, bar: _Progress) -> None:
    """The risk list CSV (header, then rows) into an open binary file."""
    table = pa.Table.from_pandas(frame[list(COLUMNS)], preserve_index=False)
    try:  # unquoted, as pandas writes it: arrow refuses a cell that would need quotes...
        _write_rows(handle, table, "none", bar)
    except pa.ArrowInvalid:  # ... an id with a comma, say: then every text cell is quoted
        _write_rows(handle, table, "needed", bar)


def _write_frame(path: Path, frame: pd.DataFrame, bar: _Progress) -> None:
    """Write the risk list CSV through risk.files.atomic_write (a temp file beside it, then one rename)."""

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as handle:
            _write_csv(handle, frame, bar)

    atomic_write(path, write)


def risklist_csv(frame: pd.DataFrame) -> bytes:
    """Rows of a risk list (all of them or a slice) as the CSV text :func:`write_risklist` writes, in memory."""
    buffer = io.BytesIO()
    _write_csv(buffer, frame, _silent())
    return buffer.getvalue()


def write_risklist(path: Path, risk_list: RiskList) -> Path:
    """Write the risk list as CSV with a header, atomically: readers see the old list or the new, never half."""
    _write_frame(path, risk_list.frame, _silent())
    return path


class LoadedRiskList(NamedTuple):
    """A risk list read from its file, with the sha256 of the bytes it was parsed from."""

    frame: pd.DataFrame
    sha256: str


def _parse_risklist(source: Path | BinaryIO, name: Path) -> pd.DataFrame:
    try:  # pandas 3 parses each probability to the very float written, so a slice is written as the same text
        frame = pd.read_csv(source, dtype=COLUMN_TYPES, keep_default_na=False)
    except (ValueError, pd.errors.ParserError) as err:
        raise DataFileError(f"{name} is not a readable risk list ({err}); rank the clients again") from None
    if tuple(frame.columns) != COLUMNS:
        raise DataFileError(
            f"{name} is not a risk list (columns {', '.join(map(str, frame.columns))}); expected "
            f"{', '.join(COLUMNS)}: write it with risk.risklist.write_risklist"
        )
    return frame


def read_risklist(path: Path) -> pd.DataFrame:
    """A risk list CSV written by :func:`write_risklist`, with its column types; DataFileError if it is not one."""
    return _parse_risklist(path, path)


def load_risklist(path: Path) -> LoadedRiskList:
    """:func:`read_risklist` and the sha256 of the very bytes parsed (to match them with the store's record)."""
    data = path.read_bytes()
    return LoadedRiskList(_parse_risklist(io.BytesIO(data), path), sha256_bytes(data))


def read_book(path: Path, bar: _Progress | None = None) -> pd.DataFrame:
    """A client book file (.csv, or .json records) as a raw frame; DataFileError worded as risk.schema words it."""
    bar = bar or _silent()
    suffix = path.suffix.lower()
    if suffix == ".json":
        return parse_json_records(decode_text(path.read_bytes()))
    if suffix != ".csv":
        raise DataFileError(
            f"has an unsupported type {suffix or '(no extension)'!r}; save the clients as .csv (comma-separated) "
            "or .json (records)"
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", pd.errors.ParserWarning)  # more fields than the header: not data
            if bar.stream is None:
                frame = pd.read_csv(path, **BOOK_CSV_OPTIONS)
            else:
                with _CountingFile(path, lambda share: bar.stage("reading", share)) as source:
                    frame = pd.read_csv(source, **BOOK_CSV_OPTIONS)
            if ID_COLUMN in frame.columns and not pd.api.types.is_string_dtype(frame[ID_COLUMN]):
                # ids that look like numbers: read them again as text, so "00123" is not 123 (rare, and
                # cheaper than asking for text up front, which slows every read down)
                frame[ID_COLUMN] = pd.read_csv(path, usecols=[ID_COLUMN], dtype="str", **BOOK_CSV_OPTIONS)[ID_COLUMN]
            return frame
    except (ValueError, pd.errors.ParserWarning):
        # something is wrong: read it again as every other reader does, so the message is the schema's own
        return parse_csv_text(decode_text(path.read_bytes()))


def rank_file(
    model: Any,
    typical: TypicalClient,
    model_version: str,
    clients_path: Path,
    out_path: Path,
    *,
    progress: bool,
) -> RiskList:
    """Rank the clients of a book file and write the risk list to ``out_path`` (atomically).

    DataFileError naming the file, the row and the fix for a bad book; FileNotFoundError if there is none.
    With ``progress`` (pass ``sys.stderr.isatty()``), a book of at least :data:`PROGRESS_MIN_BYTES` gets a
    progress bar on stderr.
    """
    if not clients_path.is_file():
        raise FileNotFoundError(f"{clients_path} does not exist; pass a client book (e.g. clientbook/clients.csv)")
    large = clients_path.stat().st_size >= PROGRESS_MIN_BYTES
    bar = _Progress(f"ranking {clients_path.name}", sys.stderr if progress and large else None)
    bar.stage("reading")
    try:
        clients = read_book(clients_path, bar)
        risk_list = _rank(model, clients, typical, model_version, sha256_file(clients_path), None, bar)
        _write_frame(out_path, risk_list.frame, bar)
    except DataFileError as err:
        bar.finish("failed")
        raise DataFileError(f"{clients_path} {err}") from None
    except BaseException:
        bar.finish("failed")  # end the bar's line before the traceback
        raise
    bar.finish(f"{risk_list.rows:,} clients ranked")
    log.info(
        "ranked %d clients of %s with model %s into %s (estimated F1 %.3f, %.3f to %.3f)",
        risk_list.rows,
        clients_path,
        model_version,
        out_path,
        risk_list.estimate.f1,
        risk_list.estimate.low,
        risk_list.estimate.high,
    )
    return risk_list


def changes(previous: pd.DataFrame | None, current: pd.DataFrame, top: int = 100) -> list[Entrant]:
    """The clients in the current top ``top`` who were not in the previous one, in current rank order.

    With no previous list there is nothing to compare with: the answer is empty (not "everyone is new").
    """
    if previous is None:
        return []
    now = current.loc[current["rank"] <= top].sort_values("rank")
    before = previous.loc[previous["corporation"].isin(now["corporation"]), ["corporation", "rank"]]
    previous_rank = dict(zip(before["corporation"].tolist(), before["rank"].tolist()))  # at most ``top`` entries
    return [
        Entrant(
            int(row.rank),
            str(row.corporation),
            float(row.probability),
            int(row.band),
            str(row.reason),
            previous_rank.get(row.corporation),
        )
        for row in now.itertuples(index=False)  # the top rows only
        if previous_rank.get(row.corporation, top + 1) > top
    ]


# --- the list the pipeline keeps: rank, write, record ---------------------------------------------------------


class CalibrationCheck(NamedTuple):
    """How well the deployed model's probabilities match outcomes, on the labelled rows it can be checked on."""

    reliability: Reliability
    data_path: Path
    training_rows: int | None  # how many of those rows the model was trained on (recorded in its metadata)

    def as_json(self) -> dict[str, Any]:
        return {
            **self.reliability.as_json(),
            "data_path": str(self.data_path),
            "training_rows": self.training_rows,
        }


def deployed_typical_client(settings: Settings, deployed: DeployedModel) -> TypicalClient:
    """The deployed model's typical client: recorded in its metadata at training, else (a model trained before it
    was recorded) computed now from the ingested data."""
    recorded = deployed.metadata.get("typical_client")
    if recorded:
        return TypicalClient.from_json(recorded)
    log.info(
        "%s records no typical client (trained before it was kept): computed from the ingested data", deployed.version
    )
    return typical_client(read_final_data(settings))


def calibration_on_ingested_data(settings: Settings, deployed: DeployedModel) -> CalibrationCheck | None:
    """The deployed model's reliability (risk.cbpe.reliability) on the labelled ingested rows; None, logged, when
    there are none. Most of these rows are the model's own training rows, so the check is in-sample: a
    miscalibrated verdict is certain news, a consistent one is at best optimistic."""
    try:
        frame = read_final_data(settings)
    except UserFacingError as err:
        log.warning("no calibration check for the risk list: %s", err)
        return None
    if frame.empty:
        log.warning("no calibration check for the risk list: %s has no rows", FINAL_DATA_NAME)
        return None
    probabilities = predict_frame(frame, deployed.model)["probability"].to_numpy()
    training_rows = deployed.metadata.get("training_rows")
    return CalibrationCheck(
        reliability=reliability(probabilities, labels(frame), bins=RELIABILITY_BINS),
        data_path=settings.output_folder_path / FINAL_DATA_NAME,
        training_rows=int(training_rows) if training_rows is not None else None,
    )


def refresh_risk_list(settings: Settings, store: RecordsStore, deployed: DeployedModel, book_path: Path) -> RiskList:
    """Rank the client book with the deployed model, write ``risklist.csv`` to ``output_model_path`` (atomically)
    and record it in the store: the one function that produces the list the API, dashboard and report show.

    The recorded summary is :meth:`RiskList.summary_json` (with the CBPE estimate) plus ``top_100`` (the
    corporations of the top :data:`TRACKED_TOP`, in rank order: the next list's "what changed" compares with
    them, since the file itself is overwritten) and ``calibration`` (:func:`calibration_on_ingested_data`, or
    None). FileNotFoundError or DataFileError naming the book for a missing or bad book.
    """
    if not book_path.is_file():
        raise FileNotFoundError(f"{book_path} does not exist; pass a client book (e.g. clientbook/clients.csv)")
    book = book_path.stat()  # before reading: a book changed while it is ranked looks changed to the next tick
    out_path = settings.output_model_path / RISK_LIST_NAME
    typical = deployed_typical_client(settings, deployed)
    risk_list = rank_file(deployed.model, typical, deployed.version, book_path, out_path, progress=sys.stderr.isatty())
    calibration = calibration_on_ingested_data(settings, deployed)
    summary = {
        **risk_list.summary_json(),
        "top_100": risk_list.top(TRACKED_TOP)["corporation"].tolist(),
        "calibration": calibration.as_json() if calibration else None,
    }
    store.record_risk_list(
        RiskListRow(
            model_version=deployed.version,
            model_sha256=deployed.sha256,
            book_path=str(book_path),
            book_sha256=risk_list.book_sha256,
            book_size_bytes=book.st_size,
            book_mtime_ns=book.st_mtime_ns,
            rows=risk_list.rows,
            list_path=str(out_path),
            list_sha256=sha256_file(out_path),
            summary=summary,
        )
    )
    return risk_list
