"""The risk list: order, ranks, bands, ties and reasons on hand-made clients; the bundled book; bad books."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from risk.config import ModelParams
from risk.model import build_model
from risk.risklist import (
    COLUMNS,
    NO_REASON,
    Entrant,
    Quartiles,
    TypicalClient,
    changes,
    linear_terms,
    rank_clients,
    rank_file,
    read_risklist,
    typical_client,
    write_risklist,
)
from risk.schema import FEATURES, DataFileError
from risk.synthetic import BOOK_HEADER, client_rows, make_client_book

REPO = Path(__file__).resolve().parents[1]
BUNDLED_BOOK = REPO / "clientbook" / "clients.csv"
# the hand-fit model: lower last-month activity and more employees raise the risk; last year's does nothing
COEFFICIENTS = np.array([-0.05, 0.0, 0.02])
INTERCEPT = -1.0
TYPICAL = TypicalClient(quartiles=(Quartiles(40, 100, 200), Quartiles(100, 250, 600), Quartiles(10, 30, 90)), rows=100)


def hand_fit_model() -> Pipeline:
    """The course Pipeline with coefficients set by hand (the imputer fills the TYPICAL medians)."""
    model = build_model(ModelParams())
    medians = pd.DataFrame([[100, 250, 30], [100, 250, 30]], columns=list(FEATURES))
    model.fit(medians.assign(lastmonth_activity=[99, 101]), [0, 1])  # fit only to set the shapes and names
    model[-1].coef_ = COEFFICIENTS.reshape(1, -1)
    model[-1].intercept_ = np.array([INTERCEPT])
    return model


def expected_probability(lastmonth: float, lastyear: float, employees: float) -> float:
    values = np.array([lastmonth, lastyear, employees], dtype=float)
    values = np.where(np.isnan(values), [100, 250, 30], values)  # the imputer's medians
    return float(1 / (1 + np.exp(-(INTERCEPT + COEFFICIENTS @ values))))


def book(rows: list[tuple[str, float, float, float]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["corporation", *FEATURES])


HAND_MADE = [
    ("far_low", 10, 250, 30),  # last month 10: contribution 4.5, below the lower quartile (40)
    ("low", 80, 250, 30),  # last month 80: contribution 1.0, inside the middle half
    ("big", 100, 250, 500),  # employees 500: contribution 9.4, above the upper quartile (90)
    ("biggish", 150, 250, 60),  # busy (-2.5) but 60 employees (+0.6): employees is the reason
    ("calm", 300, 900, 10),  # nothing above typical
    ("unknown", None, 250, 30),  # missing last month: imputed as typical, never the reason
]
HAND_REASONS = {
    "far_low": "last month's activity far below typical (10 vs typical 100)",
    "low": "last month's activity below typical (80 vs typical 100)",
    "big": "number of employees far above typical (500 vs typical 30)",
    "biggish": "number of employees above typical (60 vs typical 30)",
    "calm": NO_REASON,
    "unknown": NO_REASON,
}


@pytest.fixture(scope="module")
def model() -> Pipeline:
    return hand_fit_model()


@pytest.fixture(scope="module")
def trained() -> tuple[Pipeline, TypicalClient]:
    """The course model trained on the synthetic process, with its typical client."""
    rows = client_rows(np.random.default_rng(0), 10_000, drift=False)
    frame = pd.DataFrame(rows[:, 1:], columns=[*FEATURES, "exited"])
    return build_model(ModelParams()).fit(frame[list(FEATURES)], frame["exited"]), typical_client(frame)


def rank(model: Pipeline, clients: pd.DataFrame) -> pd.DataFrame:
    return rank_clients(model, clients, TYPICAL, "v0007", "0" * 64, scored_at="2026-01-02T03:04:05Z").frame


def test_clients_are_ranked_by_the_models_probability_highest_first(model: Pipeline) -> None:
    frame = rank(model, book(HAND_MADE))
    expected = sorted(((expected_probability(*row[1:]), row[0]) for row in HAND_MADE), reverse=True)
    assert frame["corporation"].tolist() == [name for _, name in expected]
    assert frame["probability"].to_numpy() == pytest.approx([p for p, _ in expected], rel=1e-12)
    assert frame["rank"].tolist() == list(range(1, len(HAND_MADE) + 1))
    assert tuple(frame.columns) == COLUMNS
    assert set(frame["model_version"]) == {"v0007"}


def test_the_reason_names_the_feature_that_pushes_the_risk_up_most_and_its_direction(model: Pipeline) -> None:
    frame = rank(model, book(HAND_MADE))
    assert dict(zip(frame["corporation"], frame["reason"])) == HAND_REASONS


def test_a_feature_that_raises_risk_when_high_is_worded_above_and_one_when_low_below(model: Pipeline) -> None:
    flipped = hand_fit_model()
    flipped[-1].coef_ = -COEFFICIENTS.reshape(1, -1)  # now busy clients and small ones are the risky ones
    frame = rank(flipped, book([("busy", 450, 250, 30), ("small", 100, 250, 12), ("tiny", 100, 250, 3)]))
    reasons = dict(zip(frame["corporation"], frame["reason"]))
    assert reasons == {
        "busy": "last month's activity far above typical (450 vs typical 100)",
        "small": "number of employees below typical (12 vs typical 30)",
        "tiny": "number of employees far below typical (3 vs typical 30)",
    }


def test_equal_probabilities_are_ordered_by_corporation_and_share_a_band(model: Pipeline) -> None:
    # 17 clients of distinct risk; "m", "b" and "x" tie between the riskiest two (last month 12: 10 < 12 < 15)
    rows = [(f"c{i:02d}", 10 + 5 * i, 250, 30) for i in range(17)]
    rows += [("m", 12, 250, 30), ("b", 12, 250, 30), ("x", 12, 250, 30)]
    frame = rank(model, book(rows))
    assert frame["corporation"].tolist()[:5] == ["c00", "b", "m", "x", "c01"]
    assert frame["rank"].tolist() == list(range(1, 21))
    # 20 clients: 2 per decile; the tie at ranks 2-4 takes the band of its first member (rank 2: band 1)
    assert frame["band"].tolist()[:7] == [1, 1, 1, 1, 3, 3, 4]
    shuffled = rank(model, book(rows[::-1]))
    pd.testing.assert_frame_equal(shuffled, frame)  # the same list whatever the book's order


def test_bands_are_deciles_of_the_book(trained: tuple[Pipeline, TypicalClient]) -> None:
    model, typical = trained
    frame = rank_clients(model, pd.read_csv(BUNDLED_BOOK), typical, "v1", "x").frame
    assert frame["band"].value_counts().sort_index().tolist() == [1000] * 10
    assert frame["band"].is_monotonic_increasing and frame["probability"].is_monotonic_decreasing
    assert frame["rank"].tolist() == list(range(1, 10_001))


def test_every_reason_on_the_bundled_book_is_worded_from_the_vocabulary(
    trained: tuple[Pipeline, TypicalClient],
) -> None:
    model, typical = trained
    frame = rank_clients(model, pd.read_csv(BUNDLED_BOOK), typical, "v1", "x").frame
    wording = frame["reason"].str.replace(r" \(\d+(\.\d)? vs typical \d+(\.\d)?\)$", "", regex=True)
    allowed = {NO_REASON} | {
        f"{words} {strength}{direction} typical"
        for words in ("last month's activity", "last year's activity", "number of employees")
        for strength in ("", "far ")
        for direction in ("below", "above")
    }
    assert set(wording) <= allowed
    # the model says low activity drives exits: the riskiest tenth is explained by low activity
    assert frame.loc[frame["band"] == 1, "reason"].str.contains("activity far below typical").mean() > 0.9


def test_typical_client_is_the_training_quartiles_and_round_trips_through_json() -> None:
    frame = pd.DataFrame(
        {
            "lastmonth_activity": [1, 2, 3, 4, np.nan],
            "lastyear_activity": [10, 20, 30, 40, 50],
            "number_of_employees": [5, 5, 5, 5, 5],
            "exited": [0, 1, 0, 1, 0],
        }
    )
    typical = typical_client(frame)
    assert typical.of("lastmonth_activity") == Quartiles(1.75, 2.5, 3.25)  # the missing value is skipped
    assert typical.of("lastyear_activity") == Quartiles(20, 30, 40)
    assert TypicalClient.from_json(json.loads(json.dumps(typical.as_json()))) == typical
    broken = typical.as_json()
    del broken["features"]["number_of_employees"]
    with pytest.raises(ValueError, match="number_of_employees"):
        TypicalClient.from_json(broken)


def test_a_book_with_a_repeated_client_is_refused_naming_both_lines(model: Pipeline) -> None:
    with pytest.raises(DataFileError, match=r"'low' twice \(line 3 and line 6\); each client must appear once"):
        rank(model, book(HAND_MADE[:4] + [("low", 1, 2, 3)]))


@pytest.mark.parametrize("ids", [("abcd", "efgh", "ijkl"), ("a", "bcd", "ef"), ("client-0001", "client-0002", "c")])
def test_a_repeated_id_is_found_whatever_the_ids_lengths(model: Pipeline, ids: tuple[str, str, str]) -> None:
    clients = book([(name, 1, 2, 3) for name in ids])
    assert len(rank(model, clients)) == 3
    with pytest.raises(DataFileError, match=f"{ids[1]!r} twice \\(line 3 and line 5\\)"):
        rank(model, book([(name, 1, 2, 3) for name in (*ids, ids[1])]))


def test_a_client_without_an_id_is_refused_naming_the_line(model: Pipeline) -> None:
    with pytest.raises(DataFileError, match="no corporation at line 3; every client needs its id"):
        rank(model, book([("a", 1, 2, 3), ("", 1, 2, 3)]))


def test_bad_rows_in_a_book_file_name_the_file_the_line_and_the_fix(tmp_path: Path, model: Pipeline) -> None:
    path = tmp_path / "clients.csv"
    path.write_text(f"{BOOK_HEADER}\nabcd,12,30,5\nefgh,12,lots,5\n")
    with pytest.raises(DataFileError) as raised:
        rank_file(model, TYPICAL, "v1", path, tmp_path / "risk.csv", progress=False)
    assert str(raised.value) == (
        f"{path} has a non-numeric value 'lots' in column 'lastyear_activity' at line 3; "
        "lastyear_activity must be a number"
    )
    assert not (tmp_path / "risk.csv").exists()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("corporation;lastmonth_activity\nabcd;1\n", "is not comma-separated"),
        ("corporation,lastmonth_activity,lastyear_activity\nabcd,1,2\n", "is missing column(s) number_of_employees"),
        (f"{BOOK_HEADER}\nabcd,1,2,3,4\n", "has more fields than the header"),
        (f"{BOOK_HEADER}\n", "has a header but no data rows"),
    ],
)
def test_malformed_book_files_are_named_as_the_schema_names_them(
    tmp_path: Path, model: Pipeline, text: str, message: str
) -> None:
    path = tmp_path / "clients.csv"
    path.write_text(text)
    with pytest.raises(DataFileError, match=f"^{path} .*" + message.replace("(", r"\(").replace(")", r"\)")):
        rank_file(model, TYPICAL, "v1", path, tmp_path / "risk.csv", progress=False)


def test_ids_are_text_not_numbers_nor_missing_values(tmp_path: Path, model: Pipeline) -> None:
    path = tmp_path / "clients.csv"
    path.write_text(f"{BOOK_HEADER}\n00123,10,250,30\nNA,80,250,30\nnull,100,250,500\n")
    frame = rank_file(model, TYPICAL, "v1", path, tmp_path / "risk.csv", progress=False).frame
    assert sorted(frame["corporation"]) == ["00123", "NA", "null"]
    assert sorted(read_risklist(tmp_path / "risk.csv")["corporation"]) == ["00123", "NA", "null"]


def test_missing_feature_values_are_ranked_as_the_model_imputes_them(tmp_path: Path, model: Pipeline) -> None:
    path = tmp_path / "clients.csv"
    path.write_text(f"{BOOK_HEADER}\nabcd,,250,30\nefgh,10,250,30\n")
    frame = rank_file(model, TYPICAL, "v1", path, tmp_path / "risk.csv", progress=False).frame
    assert frame["probability"].iloc[1] == pytest.approx(expected_probability(100, 250, 30))
    assert frame["reason"].iloc[1] == NO_REASON


def test_the_written_list_reads_back_identical_and_replaces_the_old_one_atomically(
    tmp_path: Path, model: Pipeline
) -> None:
    risk_list = rank_clients(model, book(HAND_MADE), TYPICAL, "v0007", "ab" * 32)
    out = tmp_path / "risklist.csv"
    out.write_text("the previous list\n")
    write_risklist(out, risk_list)
    pd.testing.assert_frame_equal(read_risklist(out), risk_list.frame)
    assert out.read_text().splitlines()[0] == ",".join(COLUMNS)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["risklist.csv"]  # no temp file left behind
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o644


def test_an_id_with_a_comma_is_quoted_and_survives(tmp_path: Path, model: Pipeline) -> None:
    risk_list = rank_clients(
        model, book([('Smith, Jones & "Co"', 10, 250, 30), ("plain", 90, 250, 30)]), TYPICAL, "v1", "x"
    )
    write_risklist(tmp_path / "risk.csv", risk_list)
    assert read_risklist(tmp_path / "risk.csv")["corporation"].tolist() == ['Smith, Jones & "Co"', "plain"]


def test_read_risklist_refuses_a_file_that_is_not_one(tmp_path: Path) -> None:
    path = tmp_path / "book.csv"
    path.write_text(f"{BOOK_HEADER}\nabcd,1,2,3\n")
    with pytest.raises(DataFileError, match="is not a risk list"):
        read_risklist(path)


def test_the_risk_list_carries_its_provenance_and_cbpe_estimate(model: Pipeline) -> None:
    risk_list = rank_clients(model, book(HAND_MADE), TYPICAL, "v0007", "ab" * 32, scored_at="2026-01-02T03:04:05Z")
    summary = risk_list.summary_json()
    assert (summary["model_version"], summary["book_sha256"], summary["scored_at"], summary["rows"]) == (
        "v0007",
        "ab" * 32,
        "2026-01-02T03:04:05Z",
        6,
    )
    assert risk_list.estimate.rows == 6
    assert risk_list.estimate.expected_positives == pytest.approx(risk_list.frame["probability"].sum())
    json.dumps(summary)


def test_rank_file_records_the_books_sha256(tmp_path: Path, model: Pipeline) -> None:
    import hashlib

    path = tmp_path / "clients.csv"
    path.write_text(f"{BOOK_HEADER}\nabcd,10,250,30\n")
    risk_list = rank_file(model, TYPICAL, "v1", path, tmp_path / "risk.csv", progress=False)
    assert risk_list.book_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_progress_bar_for_a_large_book_at_a_terminal_and_silence_otherwise(
    tmp_path: Path, trained: tuple[Pipeline, TypicalClient], capsys: pytest.CaptureFixture[str]
) -> None:
    model, typical = trained
    large = make_client_book(tmp_path / "large.csv", rows=150_000)  # about 2.5 MB
    rank_file(model, typical, "v1", large, tmp_path / "risk.csv", progress=False)
    assert capsys.readouterr().err == ""
    rank_file(model, typical, "v1", large, tmp_path / "risk.csv", progress=True)
    err = capsys.readouterr().err
    assert "ranking large.csv [" in err and "100% writing" in err and "150,000 clients ranked" in err
    rank_file(model, typical, "v1", BUNDLED_BOOK, tmp_path / "risk.csv", progress=True)
    assert capsys.readouterr().err == ""  # 10,000 clients are ranked before a bar would be read


def test_a_model_that_rescales_its_features_cannot_give_reasons() -> None:
    frame = book([("a", 1, 2, 3), ("b", 4, 5, 6)])
    scaled = Pipeline([("impute", SimpleImputer()), ("scale", StandardScaler()), ("classify", LogisticRegression())])
    scaled.fit(frame[list(FEATURES)], [0, 1])
    with pytest.raises(TypeError, match="scale"):
        linear_terms(scaled)


def test_changes_lists_the_clients_who_entered_the_top(model: Pipeline) -> None:
    previous = pd.DataFrame(
        {
            "rank": [1, 2, 3, 4],
            "corporation": ["a", "b", "c", "d"],
            "probability": 0.5,
            "band": 1,
            "reason": NO_REASON,
            "model_version": "v1",
        }
    )
    current = pd.DataFrame(
        {
            "rank": [1, 2, 3, 4],
            "corporation": ["d", "a", "e", "b"],
            "probability": [0.9, 0.8, 0.7, 0.6],
            "band": [1, 1, 2, 2],
            "reason": ["r1", "r2", "r3", "r4"],
            "model_version": "v2",
        }
    )
    assert changes(previous, current, top=3) == [
        Entrant(rank=1, corporation="d", probability=0.9, band=1, reason="r1", previous_rank=4),
        Entrant(rank=3, corporation="e", probability=0.7, band=2, reason="r3", previous_rank=None),
    ]
    assert changes(None, current, top=3) == []
    assert changes(current, current) == []


def test_the_client_book_is_deterministic_and_the_bundled_one_is_its_default(tmp_path: Path) -> None:
    first = make_client_book(tmp_path / "a.csv")
    second = make_client_book(tmp_path / "b.csv")
    assert first.read_bytes() == second.read_bytes() == BUNDLED_BOOK.read_bytes()
    frame = pd.read_csv(first)
    assert tuple(frame.columns) == ("corporation", *FEATURES)
    assert len(frame) == 10_000 and frame["corporation"].is_unique
    assert (frame[list(FEATURES)] >= 0).all().all()
    assert make_client_book(tmp_path / "c.csv", seed=1).read_bytes() != first.read_bytes()
