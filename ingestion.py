"""Step 1, ingestion: merge every data file in the input folder into ``finaldata.csv``.

Each file (CSV, or JSON records) is checked against the schema (risk/schema.py); a bad file is rejected with a
message naming the file and the problem while every good file is still ingested. Whole duplicate rows are
dropped, ``finaldata.csv`` and the course's ``ingestedfiles.txt`` are written to the output folder, and a record
per file (name, location, sha256, rows read/kept, duplicates dropped, accepted/rejected and why) goes to the
records store. Source files are only ever read. A file rejected before is skipped until its content changes
(one rejected for lack of memory is tried again). One file's failure, whatever it is, rejects that file only; a
name with a line break or another control character is refused by name (it would split ingestedfiles.txt).
The files are read by risk/fastread.py (``ingestion_reader`` in config: ``fast`` or ``plain``, same result),
each read once: what is recorded (sha256, size, rows) is the bytes parsed.
"""

from __future__ import annotations

import logging
import unicodedata
from dataclasses import dataclass

import pandas as pd

from risk.artifacts import FINAL_DATA_NAME, INGESTED_FILES_NAME
from risk.cli import make_parser, run_script
from risk.config import Settings
from risk.errors import UserFacingError
from risk.fastread import MEMORY_REASON, ReadResult, read_files
from risk.files import atomic_write, atomic_write_text
from risk.inputscan import DataFile, scan_folder
from risk.schema import COLUMNS
from risk.store import IngestionRecord, RecordsStore, with_store

log = logging.getLogger("ingestion")


@dataclass(frozen=True)
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
        """The kept rows that came from the given files."""
        return self.data[self.source.isin(file_names).to_numpy()]


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


def files_to_read(files: list[DataFile], store: RecordsStore) -> list[DataFile]:
    """The files to read: all but those rejected before with the same name and content (they stay rejected),
    except a file rejected for lack of memory: memory may have freed up, so it is tried again."""
    earlier = {
        key: reason
        for key, reason in store.rejection_reasons([file.key for file in files]).items()
        if MEMORY_REASON not in reason
    }
    for file in files:
        if file.key in earlier:
            log.info("skipped %s: rejected before and unchanged (%s)", file.path, earlier[file.key])
    return [file for file in files if file.key not in earlier]


def name_problem(name: str) -> str | None:
    """Why a file name cannot be ingested, or None: a line break (or another control character) would split
    the course's ``ingestedfiles.txt``, one name per line, and the log lines naming it."""
    if any(unicodedata.category(char) == "Cc" for char in name):
        return (
            f"{name!r} has a line break or another control character in its name, which would split "
            "ingestedfiles.txt (one name per line); rename the file"
        )
    return None


def refuse_bad_names(files: list[DataFile]) -> tuple[list[DataFile], list[IngestionRecord]]:
    """The files whose names can be recorded, and a rejection record for each of the others (never read)."""
    named, refused = [], []
    for file in files:
        problem = name_problem(file.name)
        if problem is None:
            named.append(file)
        else:
            log.warning("rejected %r: %s", str(file.path), problem)
            refused.append(_record(file, "rejected", reason=problem))
    return named, refused


def ingestion_records(result: ReadResult) -> list[IngestionRecord]:
    """One record per file read, accepted or rejected, by file name."""
    accepted = [
        _record(file, "accepted", rows_read=read, rows_kept=read - dropped, duplicates_dropped=dropped)
        for file, read, dropped in zip(result.accepted, result.rows_read, result.duplicates)
    ]
    rejected = [_record(r.file, "rejected", reason=r.reason) for r in result.rejected]
    return sorted(accepted + rejected, key=lambda record: record.file_name)


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
    readable, refused = refuse_bad_names(files_to_read(files, store))
    result = read_files(readable, settings.ingestion_reader)
    records = sorted(ingestion_records(result) + refused, key=lambda record: record.file_name)
    if not result.accepted:
        store.record_ingestions(records, run_id)
        rejected = len(result.rejected) + len(refused)
        raise UserFacingError(
            f"no valid data files in {folder} ({len(files)} file(s) there, {rejected} rejected now); "
            "add CSV files with columns " + ", ".join(COLUMNS)
        )
    write_outputs(settings, result.data, [file.name for file in result.accepted])
    store.record_ingestions(records, run_id)
    log.info(
        "ingested %d file(s) from %s: %d rows kept, %d duplicate(s) dropped, %d file(s) rejected",
        len(result.accepted),
        folder,
        len(result.data),
        sum(result.duplicates),
        len(result.rejected) + len(refused),
    )
    return IngestionResult(data=result.data, source=result.source, records=records)


def main() -> None:
    parser = make_parser("Merge the data files of the input folder into finaldata.csv and record each file.")
    args = parser.parse_args()
    raise SystemExit(run_script(args, with_store(merge_multiple_dataframe)))


if __name__ == "__main__":
    main()
