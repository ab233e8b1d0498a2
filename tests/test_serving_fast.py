"""Serving fast (issue 14): the quick paths give exactly the general path's answers and messages.

- JSON records: whatever the body (plain, odd or wrong), ``serving.predict`` on the records gives the bytes, or the
  status and message, that the frame path gives (check_schema on ``pd.DataFrame.from_records``), and plain bodies
  really skip the frame; over HTTP, bad cells get the general path's messages (a lone surrogate is a 400 now);
- the project's model computed from its fitted numbers: the same bits as ``predict_proba`` on the same batch
  (NaN filled by the imputer; a row alone within 1e-12 of it in a batch); any other model (a tree, a third
  step, an imputer with an indicator, a subclass, three classes) goes through its own ``predict_proba``;
- the answer's JSON text, short (json's encoders) and long (pyarrow) writers, against ``json.dumps`` of the row
  dicts, and pyarrow's float spelling against repr on a few hundred thousand values;
- over HTTP (the app in-process): whole answers byte for byte what Flask's ``jsonify`` of the row dicts wrote.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import requests
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier

from risk.api import create_app
from risk.api.answer import ARROW_ROWS_MIN, Predictions, arrow_float_tokens, json_float
from risk.api.errors import ApiError
from risk.api.inputs import PredictionInput
from risk.api.serving import predict
from risk.config import ModelParams
from risk.deployed import load_deployed_model
from risk.model import build_model
from risk.predict import linear_parts, linear_predictions, predict_frame
from risk.schema import (
    FEATURES,
    ID_COLUMN,
    TARGET,
    check_schema,
    parse_csv_text,
    plain_records,
    records_frame,
)
from tests.support import REPO, Project, in_process

FUZZ = hypothesis_settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
SUBJECT = "the request body"
JSON_TYPE = {"Content-Type": "application/json"}
ONE_ROW = {"lastmonth_activity": 234, "lastyear_activity": 3, "number_of_employees": 10}


# --- models ---


def training_rows() -> pd.DataFrame:
    """The course's practice data, as the project trains on it."""
    return pd.concat([pd.read_csv(path) for path in sorted((REPO / "practicedata").glob("*.csv"))], ignore_index=True)


def fitted(model: Any, rows: pd.DataFrame | None = None) -> Any:
    rows = training_rows() if rows is None else rows
    return model.fit(rows[list(FEATURES)], rows[TARGET])


@pytest.fixture(scope="module")
def model() -> Pipeline:
    """The project's own model (risk/model.py), fitted on the practice data."""
    return fitted(build_model(ModelParams()))


def answer_of(data: PredictionInput, model: Any) -> tuple[Any, ...]:
    """What ``/prediction`` makes of the input: ("rows", the answer's JSON text) or ("error", status, message)."""
    try:
        return ("rows", predict(data, model).rows_json())
    except ApiError as err:
        return ("error", err.status, err.message)


def general_answer(records: list[dict[str, Any]], model: Any) -> tuple[Any, ...]:
    """The answer of the general path: the records made a frame as the server makes one, then checked."""
    try:
        frame = PredictionInput(None, SUBJECT, records=records).raw_frame()
    except ApiError as err:  # pandas cannot make a frame of them (a lone surrogate in a column of text)
        return ("error", err.status, err.message)
    return answer_of(PredictionInput(frame, SUBJECT), model)


def fast_answer(records: list[dict[str, Any]], model: Any) -> tuple[Any, ...]:
    return answer_of(PredictionInput(None, SUBJECT, records=records), model)


# --- JSON records: the fast path against the frame path ---

plain_numbers = st.one_of(
    st.integers(-(10**6), 10**6),
    st.integers(-(2**70), 2**70),  # past int64: pandas makes uint64 or object columns of these
    st.floats(allow_infinity=False, allow_nan=True),  # NaN counts as empty
    st.none(),
)
odd_values = st.one_of(
    st.booleans(),
    st.sampled_from([float("inf"), float("-inf")]),
    st.just(10**400),
    st.sampled_from(["12", " 7 ", "1_000", "nan", "inf", "", "many", "0x1F"]),
    st.text(max_size=4),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=1),
)
plain_ids = st.one_of(st.none(), st.text(max_size=8), st.sampled_from([" padded ", "é", 'a"b', "NA", "\u3000x\u2028"]))
odd_ids = st.one_of(st.integers(0, 99), st.floats(0, 9), st.booleans(), st.just("\ud800"), st.lists(st.integers()))
targets = st.one_of(st.sampled_from([0, 1, 0.0, 1.0]), st.none(), st.booleans(), st.integers(-1, 2), st.just("1"))


def record_strategy(values: st.SearchStrategy[Any], ids: st.SearchStrategy[Any], extra: bool) -> Any:
    """One record: each column present or not, with values from the given strategies."""
    optional: dict[str, st.SearchStrategy[Any]] = {name: values for name in FEATURES}
    optional |= {ID_COLUMN: ids, TARGET: targets}
    if extra:
        optional |= {"colour": st.integers(), " number_of_employees": plain_numbers}
    return st.fixed_dictionaries({}, optional=optional)


any_records = st.lists(
    st.one_of(
        record_strategy(plain_numbers, plain_ids, extra=False),
        record_strategy(st.one_of(plain_numbers, odd_values), st.one_of(plain_ids, odd_ids), extra=True),
    ),
    min_size=1,
    max_size=25,
)


@st.composite
def plain_bodies(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Records check_schema takes as they are: the fast path's own ground."""
    count = draw(st.integers(1, 40))
    with_ids, with_target = draw(st.booleans()), draw(st.booleans())
    records = []
    for _ in range(count):
        record = {name: draw(plain_numbers) for name in FEATURES}
        if with_ids:
            record[ID_COLUMN] = draw(plain_ids)
        if with_target:
            record[TARGET] = draw(st.sampled_from([0, 1, 0.0, 1.0]))
        records.append(dict(draw(st.permutations(list(record.items())))))
    return records


@FUZZ
@given(records=any_records)
def test_any_json_records_get_the_frame_path_s_answer_or_message(
    model: Pipeline, records: list[dict[str, Any]]
) -> None:
    assert fast_answer(records, model) == general_answer(records, model)


@FUZZ
@given(records=plain_bodies())
def test_plain_records_skip_the_frame_and_get_predict_proba_s_numbers(
    model: Pipeline, records: list[dict[str, Any]]
) -> None:
    plain = plain_records(records)
    assert plain is not None  # the fast path takes them
    fast = predict(PredictionInput(None, SUBJECT, records=records), model)
    assert ("rows", fast.rows_json()) == general_answer(records, model)
    clean = check_schema(records_frame(records), require_target=False, require_id=False)
    expected = predict_frame(clean, model)  # sklearn's own predict_proba on the checked frame
    assert np.array_equal(fast.probabilities, expected["probability"].to_numpy())
    assert np.array_equal(fast.classes, expected["prediction"].to_numpy())
    assert np.array_equal(fast.missing, clean[list(FEATURES)].isna().to_numpy())


BAD_CELLS = [
    [{**ONE_ROW, "lastyear_activity": True}],  # a column of booleans: "true/false values"
    [{**ONE_ROW, "lastyear_activity": True}, {**ONE_ROW, "lastyear_activity": None}],  # a boolean among others
    [{**ONE_ROW, "lastyear_activity": "many"}],
    [{**ONE_ROW, "number_of_employees": [1, 2]}],
    [ONE_ROW, {**ONE_ROW, "lastmonth_activity": 10**400}],
    [{**ONE_ROW, "lastmonth_activity": float("inf")}],
    [{**ONE_ROW, "exited": 1}, ONE_ROW],  # exited in one record only: an empty cell in the other
    [{**ONE_ROW, "exited": 2}],
    [{**ONE_ROW, "colour": "red"}],
    [{"lastmonth_activity": 1, "corporation": "abcd"}],
    [{**ONE_ROW, "corporation": "\ud800abc"}],  # a lone surrogate: pandas cannot make the frame
    [{**ONE_ROW, "corporation": 5}, {**ONE_ROW, "corporation": "\ud800"}],  # ... or cannot make it text: was a 500
]


@pytest.fixture(scope="module")
def api_project(deployed_template: Project, tmp_path_factory: pytest.TempPathFactory) -> Project:
    return deployed_template.copy_to(tmp_path_factory.mktemp("serving-fast") / "project")


@pytest.fixture(scope="module")
def url(api_project: Project) -> Iterator[str]:
    with in_process(create_app(api_project.settings(api_project.practice_config))) as base:
        yield base


@pytest.fixture(scope="module")
def deployed_model(api_project: Project) -> Any:
    return load_deployed_model(api_project.settings(api_project.practice_config)).model


@pytest.mark.parametrize("records", BAD_CELLS, ids=range(len(BAD_CELLS)))
def test_bad_cells_get_the_general_path_s_message(url: str, deployed_model: Any, records: list[dict[str, Any]]) -> None:
    kind, status, expected = general_answer(records, deployed_model)
    assert (kind, status) == ("error", 400)
    assert fast_answer(records, deployed_model) == ("error", 400, expected)
    for body in [records] + ([records[0]] if len(records) == 1 else []):  # a list, and a single object
        response = requests.post(
            f"{url}/prediction", data=json.dumps(body), headers={"Content-Type": "application/json"}, timeout=30
        )
        assert (response.status_code, response.json()["error"]) == (400, expected)


def test_a_lone_surrogate_among_names_and_numbers_is_named(url: str) -> None:
    """A JSON escape such as \\ud800 cannot become UTF-8 text: check_schema says where (it was a 500)."""
    records = [{**ONE_ROW, "corporation": "ok"}, {**ONE_ROW, "corporation": 5}, {**ONE_ROW, "corporation": "\ud800a"}]
    response = requests.post(f"{url}/prediction", data=json.dumps(records), timeout=30)
    assert response.status_code == 400
    assert response.json()["error"] == (
        "the request body has text that is not valid Unicode '\\ud800a' in column 'corporation' at line 4; "
        "send the name as plain UTF-8 text"
    )


def test_text_pandas_cannot_frame_is_refused_first_as_before(url: str) -> None:
    """A surrogate escape makes the frame at once, as before the fast path: pandas' refusal comes before the other
    checks of the request (here: a file named too), and a single object gets it too (it was a 500)."""
    body = json.dumps([{**ONE_ROW, "corporation": "\ud800"}])
    response = requests.post(
        f"{url}/prediction", data=body, params={"fname": "testdata.csv"}, timeout=30, headers=JSON_TYPE
    )
    assert response.status_code == 400
    assert response.json()["error"].startswith("the request body is not valid JSON ('utf-8' codec can't encode")
    response = requests.post(f"{url}/prediction", data=body[1:-1], timeout=30, headers=JSON_TYPE)
    assert response.status_code == 400
    assert response.json()["error"].startswith("the request body is not valid JSON ('utf-8' codec can't encode")


# --- the model's numbers ---


@st.composite
def training_sets(draw: st.DrawFn) -> pd.DataFrame:
    """Random training rows (some features empty) with both classes."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    count = draw(st.integers(10, 80))
    scale = draw(st.sampled_from([1.0, 1e3, 1e6]))
    frame = pd.DataFrame(rng.normal(0, scale, (count, len(FEATURES))), columns=list(FEATURES))
    frame = frame.mask(rng.uniform(size=frame.shape) < 0.1)
    frame[TARGET] = (np.arange(count) % 2) ^ (rng.uniform(size=count) < 0.2)
    return frame


@FUZZ
@given(
    train=training_sets(),
    seed=st.integers(0, 2**32 - 1),
    rows=st.integers(1, 300),
    integers=st.booleans(),
    c=st.floats(1e-3, 1e3),
)
def test_linear_parts_give_predict_proba_s_numbers(
    train: pd.DataFrame, seed: int, rows: int, integers: bool, c: float
) -> None:
    model = fitted(build_model(ModelParams(C=c)), train)
    parts = linear_parts(model)
    assert parts is not None
    rng = np.random.default_rng(seed)
    values = rng.normal(0, 3 * train[list(FEATURES)].abs().max().max(), (rows, len(FEATURES)))
    raw = pd.DataFrame(values.round() if integers else values, columns=list(FEATURES))
    gaps = rng.uniform(size=raw.shape) < 0.2
    raw = raw.astype("int64") if integers else raw.mask(gaps)  # int64: as read_csv makes whole numbers
    clean = check_schema(raw, require_target=False, require_id=False)  # the frames the API predicts on
    features = raw.to_numpy(dtype="float64", na_value=np.nan)
    classes, probabilities = linear_predictions(features, parts)
    expected = predict_frame(clean, model)
    assert np.array_equal(probabilities, expected["probability"].to_numpy())  # the same bits on the same batch
    assert np.array_equal(classes, expected["prediction"].to_numpy())
    # sklearn's own rounding moves in the last bit with the batch's shape and memory order: a row alone, or a
    # row-major frame, within 1e-12
    row_major = model.predict_proba(raw)[:, 1]
    assert probabilities == pytest.approx(row_major, rel=1e-12, abs=1e-300)
    for row in range(min(rows, 5)):
        _, alone = linear_predictions(features[row : row + 1], parts)
        assert alone[0] == pytest.approx(probabilities[row], rel=1e-12, abs=1e-300)


class MyRegression(LogisticRegression):
    """A subclass may compute otherwise: never taken apart."""


OTHER_MODELS = {
    "tree": lambda: Pipeline([("impute", SimpleImputer()), ("tree", DecisionTreeClassifier(random_state=0))]),
    "three steps": lambda: Pipeline(
        [("impute", SimpleImputer()), ("scale", StandardScaler()), ("classify", LogisticRegression())]
    ),
    "indicator": lambda: Pipeline([("impute", SimpleImputer(add_indicator=True)), ("classify", LogisticRegression())]),
    "subclass": lambda: Pipeline([("impute", SimpleImputer()), ("classify", MyRegression())]),
}


@pytest.mark.parametrize("name", [*OTHER_MODELS, "three classes"])
def test_any_other_model_goes_through_its_own_predict_proba(name: str) -> None:
    rows = training_rows()
    if name == "three classes":
        rows = rows.assign(exited=np.arange(len(rows)) % 3)
        model = fitted(build_model(ModelParams(solver="lbfgs", max_iter=5000)), rows)
    else:
        model = fitted(OTHER_MODELS[name](), rows)
    assert linear_parts(model) is None
    records = [ONE_ROW, {**ONE_ROW, "lastyear_activity": None, "corporation": " x "}, {"lastmonth_activity": 9.5}]
    records[2] |= {"lastyear_activity": 2, "number_of_employees": 7}
    answer = predict(PredictionInput(None, SUBJECT, records=records), model)
    clean = check_schema(records_frame(records), require_target=False, require_id=False)
    expected = predict_frame(clean, model)
    assert np.array_equal(answer.probabilities, expected["probability"].to_numpy())
    assert np.array_equal(answer.classes, expected["prediction"].to_numpy())
    assert answer.ids is not None and answer.ids.to_pylist() == [None, "x", None]


def test_the_deployed_model_is_taken_apart(deployed_model: Any) -> None:
    assert linear_parts(deployed_model) is not None


# --- the answer's text ---

probabilities = st.one_of(
    st.floats(0, 1),
    st.floats(0, 1e-4),
    st.floats(0, 1e-8),
    st.floats(0.9999, 1),
    st.sampled_from([0.0, -0.0, 1.0, 1e-4, 1e-5, 1e-6, 1e-9, 5e-324, 0.1]),
    st.floats(allow_nan=True, allow_infinity=True),  # never a probability, still spelt as json.dumps does
)
texts = st.one_of(
    st.none(),
    st.text(max_size=6),
    st.sampled_from(['a"b', "back\\slash", "\x7f", "\x00\n\t", "😀", "é", "c00001", ""]),
)


def reference_rows(ids: list[str | None] | None, classes: list[int], values: list[float], missing: Any) -> list[Any]:
    """The row dicts, as the answer was built before it was written a column at a time."""
    rows = []
    for row, (label, value) in enumerate(zip(classes, values)):
        answer: dict[str, Any] = {} if ids is None else {ID_COLUMN: ids[row]}
        answer |= {"prediction": label, "probability": value}
        lacked = [name for name, empty in zip(FEATURES, missing[row]) if empty]
        if lacked:
            answer["imputed"] = lacked
        rows.append(answer)
    return rows


@FUZZ
@given(
    count=st.integers(1, 40) | st.integers(ARROW_ROWS_MIN - 2, ARROW_ROWS_MIN + 60),  # both writers
    seed=st.integers(0, 2**32 - 1),
    id_pool=st.none() | st.lists(texts, min_size=1, max_size=8),
    value_pool=st.lists(probabilities, min_size=1, max_size=8),
    spread_classes=st.booleans(),
    ensure_ascii=st.booleans(),
    text_type=st.sampled_from([pa.string(), pa.large_string()]),
    bounds=st.tuples(st.floats(0, 1), st.floats(0, 1)),
)
def test_both_writers_write_what_json_dumps_writes(
    count: int,
    seed: int,
    id_pool: list[str | None] | None,
    value_pool: list[float],
    spread_classes: bool,
    ensure_ascii: bool,
    text_type: pa.DataType,
    bounds: tuple[float, float],
) -> None:
    """Columns drawn from small pools of odd values (and plain random probabilities), a slice of their rows."""
    rng = np.random.default_rng(seed)
    ids = None if id_pool is None else [id_pool[i] for i in rng.integers(0, len(id_pool), count)]
    labels = rng.integers(-3, 40, count) if spread_classes else rng.integers(0, 2, count)
    values = np.where(rng.uniform(size=count) < 0.5, rng.uniform(size=count), rng.choice(value_pool, count))
    missing = rng.uniform(size=(count, len(FEATURES))) < 0.2
    start = int(min(bounds) * (count - 1))
    stop = start + 1 + int(max(bounds) * count)  # may run past the end, as the streamed blocks' last one does
    predictions = Predictions(None if ids is None else pa.array(ids, type=text_type), labels, values, missing)
    rows = reference_rows(ids, labels.tolist(), values.tolist(), missing)[start:stop]
    expected = json.dumps(rows, separators=(",", ":"), ensure_ascii=ensure_ascii)[1:-1].encode()
    assert predictions.rows_json(start, stop, ensure_ascii) == expected


def test_pyarrow_spells_floats_as_repr_once_respelt() -> None:
    rng = np.random.default_rng(0)
    values = np.concatenate(
        [
            rng.uniform(0, 1, 100_000),
            10 ** rng.uniform(-12, 0, 100_000),  # every respelt range, and the borders between them
            10 ** rng.uniform(-330, 0, 50_000),
            1 - 10 ** rng.uniform(-17, -1, 20_000),
            [np.nextafter(border, side) for border in (1e-4, 1e-5, 1e-6, 1e-9, 1.0) for side in (0.0, 2.0)],
            [0.0, -0.0, 1.0, 1e-4, 1e-5, 1e-6, 1e-9, 5e-324, np.nan, np.inf, -np.inf, -1e-7, 2.5, 1e17],
        ]
    )
    assert arrow_float_tokens(values).to_pylist() == [json_float(value) for value in values.tolist()]


# --- whole answers over HTTP ---


def reference_answer(api_project: Project, model: Any, frame: pd.DataFrame, source: str) -> bytes:
    """What the answer was before: Flask's jsonify of the head and the row dicts (compact, then a newline)."""
    clean = check_schema(frame, require_target=False, require_id=False)
    result = predict_frame(clean, model)
    ids = None
    if ID_COLUMN in clean.columns:
        column = clean[ID_COLUMN]
        ids = column.astype(object).where(column.notna(), None).tolist()
    rows = reference_rows(
        ids,
        result["prediction"].tolist(),
        result["probability"].tolist(),
        clean[list(FEATURES)].isna().to_numpy(),
    )
    version = load_deployed_model(api_project.settings(api_project.practice_config)).version
    head = {"model_version": version, "source": source, "rows": len(rows), "predictions": rows}
    return (json.dumps(head, separators=(",", ":")) + "\n").encode()


JSON_BODIES = [
    [ONE_ROW],
    ONE_ROW,
    [{**ONE_ROW, "corporation": ' Zürich "AG" '}, {"corporation": None, **ONE_ROW, "lastyear_activity": None}],
    [{"number_of_employees": 3, "lastmonth_activity": 1.5}, {"lastyear_activity": 2**64 + 1}],
]


@pytest.mark.parametrize("body", JSON_BODIES, ids=range(len(JSON_BODIES)))
def test_json_answers_are_what_jsonify_wrote(url: str, api_project: Project, deployed_model: Any, body: Any) -> None:
    response = requests.post(
        f"{url}/prediction", data=json.dumps(body), headers={"Content-Type": "application/json"}, timeout=30
    )
    assert response.status_code == 200 and response.headers["Content-Type"] == "application/json"
    frame = records_frame(body if isinstance(body, list) else [body])
    assert response.content == reference_answer(api_project, deployed_model, frame, SUBJECT)


@pytest.mark.parametrize("odd_names", [False, True], ids=["plain names", "quotes and accents"])
def test_a_long_csv_answer_is_what_jsonify_wrote(
    url: str, api_project: Project, deployed_model: Any, odd_names: bool
) -> None:
    """Long enough for the pyarrow writer; names json.dumps writes as they are, or not (then escaped by json)."""
    count = 5 * ARROW_ROWS_MIN + 3
    accent = "é" if odd_names else ""
    lines = [f"c{i}{accent},{i * 37 % 900},{i % 7 or ''},{i % 50}" for i in range(count)]
    if odd_names:
        lines[9::9] = [f'"q""{i}",,{i},' for i in range(9, count, 9)]
    text = "corporation,lastmonth_activity,lastyear_activity,number_of_employees\n" + "\n".join(lines) + "\n"
    response = requests.post(f"{url}/prediction", data=text.encode(), headers={"Content-Type": "text/csv"}, timeout=30)
    assert response.status_code == 200
    expected = reference_answer(api_project, deployed_model, parse_csv_text(text), "the CSV body")
    assert response.content == expected


def test_a_file_named_by_path_is_answered_as_jsonify_wrote(url: str, api_project: Project, deployed_model: Any) -> None:
    path = "testdata/testdata.csv"
    response = requests.post(f"{url}/prediction", json={"filepath": path}, timeout=30)
    frame = parse_csv_text((api_project.root / path).read_text())
    assert response.content == reference_answer(api_project, deployed_model, frame, path)
