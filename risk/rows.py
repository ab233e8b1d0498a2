"""Rows known by content: which ingested rows are new, whatever file they came in.

A row's identity is a 64-bit hash of its five values (``pandas.util.hash_pandas_object``, with pandas' fixed key,
so the same row hashes alike in every run), taken on ``finaldata.csv`` as ingestion leaves it: ids trimmed, whole
duplicates dropped. A completed run records the hashes of the rows it decided on (or trained on) in the store's
``decided_rows``; the next check's batch is every ingested row whose hash is not there. So rows appended to an
ingested file, a renamed copy of one, or a file sent again give exactly their new rows, and rows carried over
(too few to decide on) stay undecided until a later run pools them with more.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd

from risk.schema import COLUMNS, FEATURES, ID_COLUMN, TARGET


def row_hashes(frame: pd.DataFrame) -> np.ndarray:
    """The content hash of each row of a schema-checked frame, as int64 (what SQLite stores)."""
    canonical = pd.DataFrame(
        {
            ID_COLUMN: frame[ID_COLUMN].astype("string"),
            **{name: frame[name].astype("float64") for name in FEATURES},
            TARGET: frame[TARGET].astype("float64"),
        },
        columns=list(COLUMNS),
    )
    return pd.util.hash_pandas_object(canonical, index=False).to_numpy().view(np.int64)


class Batch(NamedTuple):
    """The ingested rows split by what the store knows: those decided on before, in the order they were decided,
    and the new ones after them (the order the challenger gate's windows need: the newest rows last)."""

    old: pd.DataFrame
    new: pd.DataFrame
    new_hashes: np.ndarray
    old_since_last_deploy: int  # old rows decided after the last deployment (the default window's start)
    new_files: tuple[str, ...]  # the files the new rows came from, in order

    @property
    def in_order(self) -> pd.DataFrame:
        """Every row, oldest decision first, the new rows last."""
        return pd.concat([self.old, self.new], ignore_index=True)


def decided_runs(hashes: np.ndarray, decided: list[tuple[int, int | None]]) -> np.ndarray:
    """For each hash, the run that decided on that row (0 when the store does not say), or -1 for a new row."""
    if not decided:
        return np.full(len(hashes), -1, dtype=np.int64)
    known = np.array([h for h, _ in decided], dtype=np.int64)
    runs = np.array([r or 0 for _, r in decided], dtype=np.int64)
    order = np.argsort(known)
    known, runs = known[order], runs[order]
    slot = np.minimum(np.searchsorted(known, hashes), len(known) - 1)
    return np.where(known[slot] == hashes, runs[slot], -1)


def split_batch(
    data: pd.DataFrame, decided: list[tuple[int, int | None]], last_deploy_run: int | None, source: pd.Series
) -> Batch:
    """Split the ingested rows into decided and new ones.

    ``decided`` holds (row hash, run that decided on it) from the store; ``last_deploy_run`` is the run that
    made the current version (rows decided after it count towards the default training window); ``source`` names
    each row's file.
    """
    hashes = row_hashes(data)
    runs = decided_runs(hashes, decided)
    is_new = runs < 0
    old_order = np.argsort(runs[~is_new], kind="stable")
    old = data[~is_new].iloc[old_order].reset_index(drop=True)
    since = int(np.count_nonzero(runs[~is_new] > last_deploy_run)) if last_deploy_run is not None else 0
    files = tuple(dict.fromkeys(str(name) for name in source[is_new]))
    return Batch(old, data[is_new].reset_index(drop=True), hashes[is_new], since, files)
