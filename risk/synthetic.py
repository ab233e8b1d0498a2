"""Deterministic synthetic clients in the course schema: for benchmarks, tests and the bundled client book.

Each row is ``corporation`` (a five-letter id), ``lastmonth_activity``, ``lastyear_activity``,
``number_of_employees`` and ``exited`` (0/1). Clients with little recent activity tend to exit; with
``drift`` the relationship is reversed (busy clients leave), so a model trained on undrifted data scores
poorly on drifted data. The same arguments always give byte-identical files.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

HEADER = "corporation,lastmonth_activity,lastyear_activity,number_of_employees,exited"
ID_LENGTH = 5
ID_SPACE = 26**ID_LENGTH


def client_rows(rng: np.random.Generator, count: int, drift: bool) -> np.ndarray:
    """``count`` new rows as an int64 array (id code, three features, exited)."""
    ids = rng.integers(0, ID_SPACE, size=count)
    lastmonth = np.floor(rng.lognormal(mean=4.5, sigma=1.2, size=count)).astype(np.int64)
    lastyear = np.floor(rng.lognormal(mean=5.5, sigma=1.3, size=count)).astype(np.int64)
    employees = np.floor(rng.lognormal(mean=3.5, sigma=1.5, size=count)).astype(np.int64) + 1
    activity = (np.log1p(lastmonth) - 4.5) + 0.5 * (np.log1p(lastyear) - 5.5)
    logit = (1.8 if drift else -1.8) * activity - 0.3
    exited = (rng.random(count) < 1 / (1 + np.exp(-logit))).astype(np.int64)
    return np.stack([ids, lastmonth, lastyear, employees, exited], axis=1)


def id_text(codes: np.ndarray) -> list[str]:
    """Five-letter ids (``aaaaa`` .. ``zzzzz``) for integer codes."""
    digits = (codes[:, None] // 26 ** np.arange(ID_LENGTH - 1, -1, -1)) % 26
    letters = (digits + ord("a")).astype(np.uint8)
    return letters.view(f"S{ID_LENGTH}").ravel().astype(str).tolist()


def csv_text(rows: np.ndarray) -> str:
    ids = id_text(np.ascontiguousarray(rows[:, 0]))
    numbers = rows[:, 1:].astype(str).tolist()
    lines = [f"{name},{','.join(values)}" for name, values in zip(ids, numbers)]
    return HEADER + "\n" + "\n".join(lines) + "\n"


def make_data(
    folder: Path,
    files: int,
    rows: int,
    duplicate_rate: float = 0.05,
    drift: bool = False,
    seed: int = 0,
    prefix: str = "data",
) -> list[Path]:
    """Write ``files`` CSVs of ``rows`` rows each into ``folder``; return their paths (in name order).

    ``duplicate_rate`` (0 to <1) of each file's rows, from the second file on, are copies of rows written
    before; ``drift`` reverses the activity/exit relationship; ``seed`` makes the output reproducible.
    """
    if files < 1 or rows < 1:
        raise ValueError("files and rows must be at least 1")
    if not 0 <= duplicate_rate < 1:
        raise ValueError("duplicate_rate must be at least 0 and below 1")
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    width = max(4, len(str(files - 1)))
    written = np.empty((files * rows, 5), dtype=np.int64)
    count = 0
    paths = []
    for index in range(files):
        repeats = int(round(rows * duplicate_rate)) if count else 0
        batch = client_rows(rng, rows - repeats, drift)
        if repeats:
            batch = np.concatenate([batch, written[rng.integers(0, count, size=repeats)]])
            batch = batch[rng.permutation(len(batch))]
        written[count : count + rows] = batch
        count += rows
        path = folder / f"{prefix}{index:0{width}d}.csv"
        path.write_text(csv_text(batch), encoding="utf-8")
        paths.append(path)
    return paths


def make_test_file(path: Path, rows: int = 1000, drift: bool = False, seed: int = 1) -> Path:
    """Write a labelled test CSV drawn from the same process as :func:`make_data`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(csv_text(client_rows(np.random.default_rng(seed), rows, drift)), encoding="utf-8")
    return path


BOOK_HEADER = "corporation,lastmonth_activity,lastyear_activity,number_of_employees"
CLIENT_BOOK_SEED = 10_000


def exit_probability(features: np.ndarray, drift: bool) -> np.ndarray:
    """The true P(exited | features) that :func:`client_rows` draws its labels from.

    ``features`` has one row per client: lastmonth_activity, lastyear_activity, number_of_employees. It repeats
    client_rows' formula (a test replays client_rows' draws against it, so the two cannot drift apart).
    """
    values = np.asarray(features, dtype="float64")
    activity = (np.log1p(values[:, 0]) - 4.5) + 0.5 * (np.log1p(values[:, 1]) - 5.5)
    logit = (1.8 if drift else -1.8) * activity - 0.3
    return 1 / (1 + np.exp(-logit))


def book_text(rows: np.ndarray) -> str:
    """A client book's CSV text for rows of (id code, three features): the course schema without ``exited``."""
    ids = id_text(np.ascontiguousarray(rows[:, 0]))
    numbers = rows[:, 1:4].astype(str).tolist()
    lines = [f"{name},{','.join(values)}" for name, values in zip(ids, numbers)]
    return BOOK_HEADER + "\n" + "\n".join(lines) + "\n"


def make_client_book(path: Path, rows: int = 10_000, seed: int = CLIENT_BOOK_SEED) -> Path:
    """Write a client book of ``rows`` clients with unique ids, drawn as :func:`client_rows` draws (undrifted).

    The same arguments always give byte-identical files (the bundled ``clientbook/clients.csv`` is the default).
    """
    if not 1 <= rows <= ID_SPACE:
        raise ValueError(f"rows must be between 1 and {ID_SPACE:,} (the five-letter ids), not {rows}")
    rng = np.random.default_rng(seed)
    drawn = client_rows(rng, rows, drift=False)
    drawn[:, 0] = rng.choice(ID_SPACE, size=rows, replace=False)  # client_rows may repeat an id; a book may not
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(book_text(drawn).encode("utf-8"))  # bytes: the same "\n" line ends on every platform
    return path
