"""Ingestion at scale gives what the one-file reference gives: the batch path (fast CSV parsing, column
buffers, hash-narrowed de-duplication, bulk store look-ups) is checked against ``read_data_file`` on every
file, one ``pd.concat`` and ``DataFrame.duplicated()``, on files chosen to take each of its branches."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ingestion import IngestionResult, merge_multiple_dataframe
from risk.fastread import ColumnBuffer, merge_frames
from risk.files import sha256_file
from risk.inputscan import scan_folder
from risk.schema import DataFileError, read_data_file
from risk.store import IngestionRecord, RecordsStore
from tests.support import COLUMNS, Project

HEADER = COLUMNS.encode()

# name -> bytes; good files of every shape the fast path must treat like the reference, and bad ones
FILES = {
    "a_plain.csv": HEADER + b"\nabc,1,2,3,0\ndef,4,5,6,1\nghi,7,8,9,0\n",
    "b_repeats.csv": HEADER + b"\nabc,1,2,3,0\nxyz,1,2,3,0\nxyz,1,2,3,0\nabc,1,2,3,1\n",
    "c_reordered.csv": b"exited,number_of_employees,lastyear_activity,lastmonth_activity,corporation\n0,3,2,1,abc\n"
    b"1,30,20,10,new\n",
    "d_blanks_crlf.csv": HEADER + b'\r\n  abc ,1,2,3,0\r\n" quoted ",1,2,3,0\r\nquoted,1,2,3,0\r\n',
    "e_floats.csv": HEADER + b"\nflt,1.5,,3,1.0\nflt,1.5,,3,1.0\nneg,-0.0,2,3,0\nneg,0.0,2,3,0.0\n",
    "f_numeric_ids.csv": HEADER + b"\n1234,1,2,3,0\n1234.0,1,2,3,0\n",
    "g_missing_ids.csv": HEADER + b"\n,11,2,3,0\n,11,2,3,0\n,12,2,3,1\n",
    "h_records.json": json.dumps(
        [
            {
                "corporation": "abc",
                "lastmonth_activity": 1,
                "lastyear_activity": 2,
                "number_of_employees": 3,
                "exited": 0,
            },
            {
                "corporation": "jsn",
                "lastmonth_activity": 5,
                "lastyear_activity": 6,
                "number_of_employees": 7,
                "exited": 1,
            },
        ]
    ).encode(),
    "i_bom_utf8.csv": b"\xef\xbb\xbf" + HEADER + "\nsoci\u00e9t\u00e9,1,2,3,0\nabc,1,2,3,0\n".encode(),
    "j_padded_header.csv": b" corporation , lastmonth_activity,lastyear_activity,number_of_employees,exited\n"
    b"pad,1,2,3,0\n",
    "bad_short_rows.csv": HEADER + b"\nshort,1,2\nfull,1,2,3,0\n",
    "l_numbers_with_blanks.csv": HEADER + b'\nbl,"1 ",2,3,0\n',
    "m_utf8_no_bom.csv": HEADER + "\n\u00e5ngstr\u00f6m,1,2,3,1\n".encode(),
    "n_mixed_ids.csv": HEADER + b"\nabc,1,2,3,0\n0012,1,2,3,0\n1e5,1,2,3,0\nNA,1,2,3,0\n",
    "o_blank_lines.csv": HEADER + b"\n\nblank,1,2,3,0\n\n\nblank2,1,2,3,1\n",
    "p_crlf.csv": HEADER + b"\r\ncrlf,1,2,3,0\r\n\r\ncrlf2,4,5,6,1\r\n",
    "q_no_newline.csv": HEADER + b"\nabc,1,2,3,0\nlast,1,2,3,1",
    "r_numeric_first_id.csv": HEADER + b"\n0042,1,2,3,0\nabc,7,8,9,1\n",
    "s_na_first_id.csv": HEADER + b"\nNA,1,2,3,0\n12,1,2,3,0\n",
    "t_after.csv": HEADER + b"\nafter,1,2,3,0\n",  # parsed with s_ if s_ were batched: its ids would stay text
    "bad_text.csv": HEADER + b"\nabc,1,lots,3,0\n",
    "bad_target.csv": HEADER + b"\nabc,1,2,3,2\n",
    "bad_missing_target.csv": HEADER + b"\nabc,1,2,3,\n",
    "bad_inf.csv": HEADER + b"\nabc,inf,2,3,0\n",
    "bad_bool.csv": HEADER + b"\nabc,True,2,3,0\ndef,False,2,3,0\n",
    "bad_wide.csv": HEADER + b"\nabc,1,2,3,0,9\n",
    "bad_later_wide.csv": HEADER + b"\nabc,1,2,3,0\ndef,1,2,3,0,9,9\n",
    "bad_header_only.csv": HEADER + b"\n",
    "bad_empty.csv": b"  \n",
    "bad_binary.csv": b"\x89PNG\r\n\x1a\n\x00\x00",
    "bad_latin1.csv": HEADER + "\nsoci\u00e9t\u00e9,1,2,3,0\n".encode("latin-1"),
    "bad_semicolons.csv": COLUMNS.replace(",", ";").encode() + b"\nabc;1;2;3;0\n",
    "bad_missing_column.csv": b"corporation,lastmonth_activity,exited\nabc,1,0\n",
    "bad_extra_column.csv": HEADER + b",notes\nabc,1,2,3,0,x\n",
    "bad_type.txt": HEADER + b"\nabc,1,2,3,0\n",
}


def reference(folder: Path) -> tuple[pd.DataFrame, list[str], dict[str, tuple[int, int, int]], dict[str, str]]:
    """What ingesting ``folder`` must give, from the one-file reader: the merged frame, each row's file, per
    accepted file (rows read, kept, duplicates dropped), and per rejected file its reason."""
    frames, names, rejected = [], [], {}
    for path in sorted(p for p in folder.iterdir() if not p.name.startswith(".")):
        try:
            frames.append(read_data_file(path))
            names.append(path.name)
        except DataFileError as err:
            rejected[path.name] = f"{path.name} {err}"
    combined = pd.concat(frames, ignore_index=True)
    source = np.repeat(names, [len(frame) for frame in frames])
    duplicated = combined.duplicated().to_numpy()
    counts = {}
    for name, frame in zip(names, frames):
        dropped = int(duplicated[source == name].sum())
        counts[name] = (len(frame), len(frame) - dropped, dropped)
    return combined[~duplicated].reset_index(drop=True), list(source[~duplicated]), counts, rejected


def ingest(project: Project) -> IngestionResult:
    with project.store() as store:
        return merge_multiple_dataframe(project.settings(), store)


def fill_source(project: Project, files: dict[str, bytes]) -> Path:
    source = project.root / "sourcedata"
    for path in source.iterdir():
        path.unlink()
    for name, content in files.items():
        (source / name).write_bytes(content)
    return source


def assert_same_as_reference(project: Project, result: IngestionResult) -> None:
    data, source, counts, rejected = reference(project.root / "sourcedata")
    pd.testing.assert_frame_equal(result.data, data)
    assert list(result.source) == source
    accepted = {
        r.file_name: (r.rows_read, r.rows_kept, r.duplicates_dropped) for r in result.records if r.status == "accepted"
    }
    assert accepted == counts
    assert {r.file_name: r.reason for r in result.rejected} == rejected
    written = pd.read_csv(project.settings().output_folder_path / "finaldata.csv")
    pd.testing.assert_frame_equal(written, pd.read_csv(pd.io.common.StringIO(data.to_csv(index=False))))


@pytest.mark.parametrize("reader", ["fast", "plain"])
def test_every_kind_of_file_gives_what_the_one_file_reader_gives(project: Project, reader: str) -> None:
    project.edit_config(ingestion_reader=reader)
    fill_source(project, FILES)
    result = ingest(project)
    assert_same_as_reference(project, result)
    assert sorted(r.file_name for r in result.rejected) == sorted(name for name in FILES if name.startswith("bad_"))
    kept = dict(zip(result.data["corporation"], result.data["lastmonth_activity"]))
    assert {
        "abc",
        "quoted",
        "jsn",
        "soci\u00e9t\u00e9",
        "pad",
        "1234.0",
        "\u00e5ngstr\u00f6m",
        "0012",
        "1e5",
        "blank2",
        "crlf2",
        "last",
        "0042",
    } <= set(kept)


def test_files_parsed_together_in_small_batches_give_the_same(project: Project, monkeypatch) -> None:
    from risk import fastread

    monkeypatch.setattr(fastread, "BATCH_BYTES", 60)  # a batch closes after every file or two
    fill_source(project, FILES)
    assert_same_as_reference(project, ingest(project))


def test_rows_equal_once_ids_are_trimmed_and_missing_values_match_are_duplicates(project: Project) -> None:
    fill_source(
        project,
        {name: FILES[name] for name in ("a_plain.csv", "d_blanks_crlf.csv", "e_floats.csv", "g_missing_ids.csv")},
    )
    result = ingest(project)
    counts = {r.file_name: r.duplicates_dropped for r in result.records}
    # "  abc " is abc of a_plain.csv; " quoted " and quoted are one; the NaN row and 0.0 vs -0.0 repeat
    assert counts == {"a_plain.csv": 0, "d_blanks_crlf.csv": 2, "e_floats.csv": 2, "g_missing_ids.csv": 1}
    assert_same_as_reference(project, result)


def many_files(rng: np.random.Generator, count: int, rows: int) -> dict[str, bytes]:
    """Files whose rows repeat a lot: few distinct numbers (so rows of other ids share them), repeated ids."""
    files = {}
    for index in range(count):
        ids = rng.choice(["aa", "bb", "cc", " aa", "dd "], size=rows)
        numbers = rng.integers(0, 3, size=(rows, 3))
        exited = rng.integers(0, 2, size=rows)
        lines = [f"{i},{a},{b},{c},{e}" for i, (a, b, c), e in zip(ids, numbers, exited)]
        files[f"part{index:03d}.csv"] = ("\n".join([COLUMNS, *lines]) + "\n").encode()
    return files


@pytest.mark.parametrize("seed", [0, 1])
def test_many_files_full_of_repeats_match_the_reference(project: Project, seed: int) -> None:
    fill_source(project, many_files(np.random.default_rng(seed), count=40, rows=60))
    result = ingest(project)
    assert_same_as_reference(project, result)
    assert len(result.data) < 40 * 60 / 4  # most rows were repeats


def test_merge_frames_matches_pandas_duplicated_on_frames_with_missing_values() -> None:
    rng = np.random.default_rng(3)
    frames = []
    for _ in range(5):
        features = rng.choice([0.0, -0.0, 1.5, np.nan], size=(80, 3))
        frames.append(
            pd.DataFrame(
                {
                    "corporation": pd.array(rng.choice(["x", "y", None], size=80), dtype="string"),
                    "lastmonth_activity": features[:, 0],
                    "lastyear_activity": features[:, 1],
                    "number_of_employees": features[:, 2],
                    "exited": rng.integers(0, 2, size=80),
                }
            )
        )
    data, source, dropped = merge_frames(frames, [f"f{i}" for i in range(5)])
    combined = pd.concat(frames, ignore_index=True)
    duplicated = combined.duplicated().to_numpy()
    pd.testing.assert_frame_equal(data, combined[~duplicated].reset_index(drop=True))
    assert list(dropped) == [int(duplicated[i * 80 : (i + 1) * 80].sum()) for i in range(5)]
    assert list(source) == list(np.repeat([f"f{i}" for i in range(5)], 80)[~duplicated])


def test_unchanged_files_keep_their_recorded_hash_and_changed_ones_are_hashed_again(project: Project) -> None:
    source = fill_source(project, {"a.csv": FILES["a_plain.csv"], "b.csv": FILES["c_reordered.csv"]})
    ingest(project)
    target = source / "a.csv"
    stat = target.stat()
    target.write_bytes(FILES["a_plain.csv"].replace(b"abc", b"ABC"))  # same size
    os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    with project.store() as store:
        recorded = {f.name: f.sha256 for f in scan_folder(source, store)}
        assert recorded["a.csv"] != sha256_file(target)  # same name, size and mtime: the recorded hash stands
        os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
        assert {f.name: f.sha256 for f in scan_folder(source, store)}["a.csv"] == sha256_file(target)
        assert recorded["b.csv"] == sha256_file(source / "b.csv")


def test_a_symlinked_file_is_recorded_at_its_real_location(project: Project, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere.csv"
    outside.write_bytes(FILES["a_plain.csv"])
    source = fill_source(project, {"b.csv": FILES["c_reordered.csv"]})
    (source / "a.csv").symlink_to(outside)
    ingest(project)
    with project.store() as store:
        locations = {row["file_name"]: row["location"] for row in store.ingestions()}
    assert locations == {"a.csv": str(outside.resolve()), "b.csv": str((source / "b.csv").resolve())}


def test_bulk_lookups_answer_as_the_single_ones(tmp_path: Path) -> None:
    with RecordsStore(tmp_path / "records.sqlite") as store:
        records = [
            IngestionRecord(
                f"f{i}.csv",
                f"/data/f{i}.csv",
                f"sha{i % 7}",
                100 + i,
                5 + i,
                "rejected" if i % 3 == 0 else "accepted",
                reason=f"reason {i}" if i % 3 == 0 else None,
            )
            for i in range(700)
        ]
        store.record_ingestions(records)
        store.record_ingestions([records[3]._replace(reason="newer reason")])
        stats = [(r.location, r.size_bytes, r.mtime_ns) for r in records] + [("/data/none.csv", 1, 1)]
        keys = [(r.file_name, r.sha256) for r in records] + [("none.csv", "sha0")]
        assert store.cached_sha256s(stats) == {
            stat: store.cached_sha256(*stat) for stat in stats if store.cached_sha256(*stat) is not None
        }
        reasons = store.rejection_reasons(keys)
        assert reasons == {key: store.rejection_reason(*key) for key in keys if store.rejection_reason(*key)}
        assert reasons[("f3.csv", "sha3")] == "newer reason" and len(reasons) == 234
        assert store.cached_sha256s([]) == {} and store.rejection_reasons([]) == {}


def test_merged_frames_grow_past_the_rows_expected_and_promote_numbers_as_concat_does() -> None:
    from risk.schema import check_schema, parse_csv_text

    texts = [
        f"{COLUMNS}\n" + "".join(f"id{i % 7},{i},{i % 3},{value},{i % 2}\n" for i in range(50))
        for value in ("1", "2.5", "3")
    ]
    frames = [check_schema(parse_csv_text(text)) for text in texts]
    merged = ColumnBuffer(expected_rows=1)
    for frame in frames:
        merged.add(frame["corporation"], {name: frame[name].to_numpy() for name in frames[0].columns[1:]})
    data, source, dropped = merged.merge(["a", "b", "c"])
    combined = pd.concat(frames, ignore_index=True)
    duplicated = combined.duplicated().to_numpy()
    pd.testing.assert_frame_equal(data, combined[~duplicated].reset_index(drop=True))
    assert data["number_of_employees"].dtype == "float64" and merged.rows == 150
    assert list(dropped) == [int(duplicated[i * 50 : (i + 1) * 50].sum()) for i in range(3)]
