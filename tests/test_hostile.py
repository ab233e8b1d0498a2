"""Hostile input, kept as a suite: whatever arrives, the API answers with a 4xx or a prediction (never a 5xx or a
traceback) and ingestion rejects the bad file by name (never losing the good file beside it).

- hypothesis fuzzing of ``/prediction`` bodies shaped like CSV and JSON records (in-process) and of input files
  (ingestion in-process, both readers);
- the header field counter against pandas: it never counts fewer fields than pandas would parse;
- on the real servers (gunicorn and ``python app.py``): a chunked body over the limit is 413 and one under it is
  read whole; a wide header is refused cheaply, as a body, a chunked body, an upload or a file named by path;
- ``ingestion.py`` under a memory cap (``RLIMIT_AS`` in the subprocess): the oversized file is rejected by name
  and the good files beside it are ingested.
"""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
import textwrap
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import requests
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from deployment import store_model_into_pickle
from ingestion import merge_multiple_dataframe
from risk.api import create_app
from risk.config import Settings
from risk.schema import MAX_FIELDS, header_field_count
from risk.store import RecordsStore
from scoring import score_model
from tests.support import AMBIENT_VARIABLES, COLUMNS, REPO, Project, in_process, make_project, serve
from training import train_model

FUZZ = hypothesis_settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
LIMIT = 200_000  # api_max_upload_bytes on the real servers here: small, so the over-limit bodies stay small
NAMES = COLUMNS.split(",")
GOOD_ROWS = ["good1,10,20,30,0", "good2,40,50,60,1"]


# --- what hostile data looks like ---

cells = st.one_of(
    st.integers(-(10**20), 10**20).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["", " ", "NA", "nan", "inf", "-inf", "True", "1e400", "0x1F", '""', '"a,b"', '"', "1,5", "é"]),
    st.text(max_size=8),
)
header_names = st.one_of(
    st.sampled_from([*NAMES, "", " corporation ", "colour", '"exited"', "a,b"]), st.text(max_size=6)
)
line_ends = st.sampled_from(["\n", "\r\n", "\r"])


@st.composite
def csv_texts(draw: st.DrawFn) -> str:
    """CSV-like text: the schema's header or a mangled one (sometimes around MAX_FIELDS wide), rows of odd cells."""
    if draw(st.booleans()):
        header = draw(st.permutations(NAMES))
    else:
        header = draw(st.lists(header_names, min_size=0, max_size=8))
    if draw(st.integers(0, 9)) == 0:  # now and then a header around the limit
        header = [*header, *(["a"] * draw(st.integers(MAX_FIELDS - 8, MAX_FIELDS + 8)))]
    width = len(header) + draw(st.integers(-2, 2))
    rows = draw(st.lists(st.lists(cells, min_size=max(width, 0), max_size=max(width, 0)), max_size=5))
    end = draw(line_ends)
    text = end.join(",".join(row) for row in [header, *rows])
    return draw(st.sampled_from(["", "\ufeff", "\n\n", "  \n"])) + text + draw(st.sampled_from(["", end]))


json_cells = (
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8) | st.lists(st.integers(), max_size=2)
)
record_lists = st.lists(
    st.dictionaries(st.sampled_from([*NAMES, "colour", "filepath", ""]) | st.text(max_size=4), json_cells, max_size=7),
    max_size=6,
)


def assert_answered(response: requests.Response) -> None:
    """A 4xx with the JSON error shape, or predictions: never a 5xx, HTML or a traceback."""
    assert response.status_code < 500, response.text[:500]
    assert response.headers["Content-Type"].startswith("application/json"), response.text[:200]
    assert "Traceback" not in response.text
    body = response.json()
    if response.status_code >= 400:
        assert isinstance(body["error"], str) and body["error"] and len(body["error"]) < 2_000
    else:
        assert body["rows"] == len(body["predictions"]) > 0


# --- the API, in-process ---


@pytest.fixture(scope="module")
def hostile_project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    """A project with the practice model deployed by the steps in-process (no reports: cheaper than a full run),
    a small api_max_upload_bytes (the over-limit bodies stay small) and a file with a wide header."""
    project = make_project(tmp_path_factory.mktemp("hostile") / "project")
    settings = project.settings(project.practice_config)
    with project.store() as store:
        merge_multiple_dataframe(settings, store)
        train_model(settings)
        score_model(settings, store)
        store_model_into_pickle(settings, store)
    project.edit_config(api_max_upload_bytes=LIMIT)
    (project.root / "testdata" / "wide.csv").write_text(wide_header() + "\n")
    return project


@pytest.fixture(scope="module")
def api_url(hostile_project: Project) -> Iterator[str]:
    with in_process(create_app(hostile_project.settings())) as base:
        yield base


@FUZZ
@given(text=csv_texts(), content_type=st.sampled_from(["text/csv", "text/plain", "", "multipart"]))
def test_fuzzed_csv_bodies_are_answered(api_url: str, text: str, content_type: str) -> None:
    if content_type == "multipart":
        response = requests.post(f"{api_url}/prediction", files={"file": ("data.csv", text.encode())}, timeout=30)
    else:
        headers = {"Content-Type": content_type} if content_type else {}
        response = requests.post(f"{api_url}/prediction", data=text.encode(), headers=headers, timeout=30)
    assert_answered(response)


@FUZZ
@given(payload=record_lists | st.dictionaries(st.sampled_from([*NAMES, "x"]), json_cells, max_size=6))
def test_fuzzed_json_records_are_answered(api_url: str, payload: Any) -> None:
    body = json.dumps(payload)  # Python's JSON: NaN and Infinity included
    response = requests.post(
        f"{api_url}/prediction", data=body, headers={"Content-Type": "application/json"}, timeout=30
    )
    assert_answered(response)


@hypothesis_settings(max_examples=300, deadline=None)
@given(text=st.text(alphabet='a,"\n\r \t', max_size=30))
def test_the_header_count_is_never_below_what_pandas_parses(text: str) -> None:
    """The field count that guards pandas' quadratic header handling can over-count, never under-count."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            parsed = pd.read_csv(io.StringIO(text), skipinitialspace=True, index_col=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError):
        return
    assert header_field_count(text, limit=1_000) >= len(parsed.columns)
    assert header_field_count(text.encode(), limit=1_000) == header_field_count(text, limit=1_000)


# --- ingestion, in-process ---

file_names = st.one_of(
    st.from_regex(r"[a-z]{1,6}\.(csv|json|txt|CSV)", fullmatch=True),
    st.sampled_from(["two\nlines.csv", "tab\there.csv", "cr\rname.csv", "sp ace.csv", "ünï.csv", "noext"]),
)
valid_rows = st.lists(
    st.tuples(st.from_regex(r"[a-z]{1,8}", fullmatch=True), *[st.integers(0, 999)] * 3, st.integers(0, 1)),
    min_size=1,
    max_size=4,
)
file_bodies = st.one_of(
    valid_rows.map(lambda rows: "\n".join([COLUMNS, *(",".join(map(str, row)) for row in rows)]).encode()),
    csv_texts().map(lambda text: text.encode("utf-8")),
    record_lists.map(lambda records: json.dumps(records).encode()),
    st.binary(max_size=120),
    csv_texts().map(lambda text: text.encode("latin-1", errors="replace")),
)


class Tracebacks(logging.Handler):
    """Collects the log records that carry a traceback at INFO or above (a hostile file must never cause one)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.found: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info:
            self.found.append(self.format(record))


@pytest.fixture
def tracebacks() -> Iterator[Tracebacks]:
    handler = Tracebacks()
    logging.getLogger().addHandler(handler)
    try:
        yield handler
    finally:
        logging.getLogger().removeHandler(handler)


def ingestion_settings(project: Project, folder: Path, reader: str) -> Settings:
    """Settings for one fuzzed run: its own input and output folders (the store is shared: a hostile file seen
    before is skipped, as in production, and creating a store per run would cost most of the test's time)."""
    return project.settings()._replace(
        input_folder_path=folder / "in",
        output_folder_path=folder / "out",
        records_db_path=project.root / "runs" / "records.sqlite",
        ingestion_reader=reader,
    )


@FUZZ
@given(name=file_names, body=file_bodies, reader=st.sampled_from(["fast", "plain"]), first=st.booleans())
def test_fuzzed_input_files_never_stop_the_good_file_beside_them(
    project: Project, tracebacks: Tracebacks, name: str, body: bytes, reader: str, first: bool
) -> None:
    runs = project.root / "runs"
    runs.mkdir(exist_ok=True)
    folder = runs / f"run{len(list(runs.glob('run*')))}"
    (folder / "in").mkdir(parents=True)
    good = "0good.csv" if first else "zgood.csv"  # read before or after the hostile file
    (folder / "in" / good).write_text("\n".join([COLUMNS, *GOOD_ROWS]) + "\n")
    if name != good:
        (folder / "in" / name).write_bytes(body)
    settings = ingestion_settings(project, folder, reader)
    with RecordsStore(settings.records_db_path) as store:
        result = merge_multiple_dataframe(settings, store)
    assert good in result.accepted
    assert {"good1", "good2"} <= set(result.rows_from({good})["corporation"])
    for record in result.rejected:
        assert record.reason.startswith(record.file_name) or record.reason.startswith(repr(record.file_name))
    listed = (folder / "out" / "ingestedfiles.txt").read_text().splitlines()
    assert listed == result.accepted
    assert not tracebacks.found, tracebacks.found[0]


# --- the real servers: chunked bodies and wide headers ---


def wide_header(fields: int = 20_000) -> str:
    """A header of repeated names: pandas renames each repeat, in quadratic time (a 200 kB one took 94 s)."""
    return ",".join(["a"] * fields)


def csv_rows(count: int) -> Iterator[bytes]:
    """A CSV body in pieces (a generator: requests sends it chunked, without Content-Length)."""
    yield b"corporation,lastmonth_activity,lastyear_activity,number_of_employees\n"
    for start in range(0, count, 1_000):
        yield b"".join(b"c%d,%d,2,3\n" % (i, i % 500) for i in range(start, min(count, start + 1_000)))


def post_csv(url: str, data: Any) -> requests.Response:
    return requests.post(f"{url}/prediction", data=data, headers={"Content-Type": "text/csv"}, timeout=60)


def check_chunked_bodies(url: str) -> None:
    """Over the limit: 413, as for a body that declares its length; under it: every row read."""
    over = post_csv(url, csv_rows(30_000))  # about 400 kB: twice the limit
    assert over.status_code == 413, over.text[:300]
    assert f"over the limit of {LIMIT} bytes (api_max_upload_bytes in config)" in over.json()["error"]
    rows = 10_000
    assert sum(len(piece) for piece in csv_rows(rows)) < LIMIT
    under = post_csv(url, csv_rows(rows))
    assert under.status_code == 200, under.text[:300]
    assert under.json()["rows"] == rows and under.json()["predictions"][-1]["corporation"] == f"c{rows - 1}"
    uploaded = requests.post(f"{url}/prediction", files={"file": ("rows.csv", b"".join(csv_rows(rows)))}, timeout=60)
    assert uploaded.json()["predictions"] == under.json()["predictions"]


def check_wide_headers(url: str) -> None:
    """A wide header is refused before pandas sees it, as a body, a chunked body, an upload or a named file."""
    header = wide_header().encode()
    refusals = [
        post_csv(url, header + b"\n"),
        post_csv(url, iter([header, b"\n"])),
        requests.post(f"{url}/prediction", files={"file": ("wide.csv", header)}, timeout=60),
        requests.get(f"{url}/prediction", params={"filepath": "testdata/wide.csv"}, timeout=60),
    ]
    for response in refusals:
        assert response.status_code == 400, response.text[:300]
        assert f"has more than {MAX_FIELDS} fields on its header line (20,000 counted" in response.json()["error"]


@pytest.mark.slow
@pytest.mark.parametrize("server", ["gunicorn", "flask"])
def test_the_real_servers_bound_chunked_bodies_and_refuse_wide_headers(hostile_project: Project, server: str) -> None:
    with serve(hostile_project, server) as url:
        check_chunked_bodies(url)
        check_wide_headers(url)
        assert requests.get(f"{url}/health", timeout=30).json()["status"] == "ok"


# --- ingestion under a memory cap ---

CAPPED = """
    import resource, sys
    sys.path.insert(0, {repo!r})
    import ingestion  # pandas, numpy and the rest are imported before the cap: the cap is for the run itself
    size = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmSize:")) * 1024
    cap = size + {headroom}
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    sys.argv = ["ingestion.py", "--config", {config!r}]
    ingestion.main()
"""
HEADROOM = 256 * 1024 * 1024  # the run may use this much more than the imports took
HUGE = 400 * 1024 * 1024  # bigger than the headroom: reading it (or reserving for its rows) cannot fit


@pytest.mark.slow
def test_under_a_memory_cap_the_oversized_file_is_rejected_by_name_and_the_good_ones_are_ingested(
    project: Project, tmp_path: Path
) -> None:
    inputs = project.root / "sourcedata"
    for path in inputs.iterdir():
        path.unlink()
    project.write_data("sourcedata", "a_good.csv", GOOD_ROWS[:1])
    with open(inputs / "b_huge.csv", "wb") as huge:
        huge.truncate(HUGE)  # sparse: no disk used, but 400 MB to read
    project.write_data("sourcedata", "c_good.csv", GOOD_ROWS[1:])
    script = tmp_path / "capped.py"
    script.write_text(textwrap.dedent(CAPPED.format(repo=str(REPO), headroom=HEADROOM, config=str(project.config))))
    env = {k: v for k, v in os.environ.items() if k not in AMBIENT_VARIABLES}
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert "b_huge.csv is too large to read in the memory this run may use" in result.stderr
    listed = (project.root / "ingesteddata" / "ingestedfiles.txt").read_text().splitlines()
    assert listed == ["a_good.csv", "c_good.csv"]
    with project.store() as store:
        [huge] = [row for row in store.ingestions() if row["file_name"] == "b_huge.csv"]
    assert huge["status"] == "rejected" and "split it into smaller files" in huge["reason"]
