"""Feature-level data drift: the statistics on generated data of known shape, the reference kept with each model
and version, ``diagnostics.data_drift`` against the deployed version, and the config keys."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import diagnostics
from risk import datadrift
from risk.artifacts import METADATA_NAME, REFERENCE_NAME
from risk.config import ConfigError, load_config
from risk.datadrift import DRIFT, INSUFFICIENT, NO_DRIFT, NO_REFERENCE, WATCH, DriftConfig
from risk.deployed import load_deployed_model
from risk.files import sha256_file
from risk.modelfiles import ModelIntegrityError, read_metadata
from risk.schema import FEATURES, read_data_file
from risk.versions import read_record
from tests.support import Project

FEATURE_NAMES = ("a", "b", "c")
SMALL_REFERENCE, LARGE_REFERENCE = 200, 5000


def generate(
    rng: np.random.Generator,
    rows: int,
    mean_shift: dict[str, float] | None = None,
    scale: dict[str, float] | None = None,
) -> dict[str, np.ndarray]:
    """Three normal features of known shape: feature i has mean 10 i and sd i; shifts are in units of its sd."""
    mean_shift, scale = mean_shift or {}, scale or {}
    return {
        name: rng.normal(10 * i + mean_shift.get(name, 0.0) * i, i * scale.get(name, 1.0), rows)
        for i, name in enumerate(FEATURE_NAMES, start=1)
    }


DEFAULT_CONFIG = DriftConfig()


def reference_of(rng: np.random.Generator, rows: int, config: DriftConfig = DEFAULT_CONFIG) -> dict:
    target = rng.integers(0, 2, rows)
    return datadrift.build_reference(generate(rng, rows), target, target, config)


def drifted_features(result: dict) -> set[str]:
    return {name for name, feature in result["features"].items() if feature["status"] == DRIFT}


# --- PSI against a hand computation ---


def test_quantile_edges_are_the_reference_deciles() -> None:
    edges = datadrift.quantile_edges(np.arange(1, 101, dtype=float), 10)
    # numpy's linear interpolation: the k-th decile of 1..100 sits at position 99k/10, i.e. 10k + 1 - 0.1k
    assert edges == pytest.approx([10.9, 20.8, 30.7, 40.6, 50.5, 60.4, 70.3, 80.2, 90.1])
    assert datadrift.bin_shares(np.arange(1, 101, dtype=float), edges) == pytest.approx([0.1] * 10)


def test_psi_matches_a_hand_computation() -> None:
    config = DriftConfig(ks_max_reference_rows=0)  # keep no values: the reference is a histogram, tested by PSI
    reference = datadrift.feature_reference(np.arange(1, 101, dtype=float), config)
    assert reference["values"] is None and reference["bin_shares"] == pytest.approx([0.1] * 10)
    # 100 batch values: 20 in the first decile bin, 5 in each of the last two, 10 in each other bin
    counts = [20, 10, 10, 10, 10, 10, 10, 10, 5, 5]
    batch = np.repeat([5.0, 15, 25, 35, 45, 55, 65, 75, 85, 95], counts)
    # by hand: (0.2 - 0.1) ln(0.2/0.1) + 2 x (0.05 - 0.1) ln(0.05/0.1) = 0.1 ln 2 + 0.1 ln 2 = 0.2 ln 2
    hand = 0.2 * math.log(2)
    assert hand == pytest.approx(0.1386294361)
    result = datadrift.compare_feature(reference, batch, config)
    assert result["method"] == "psi"
    assert result["statistic"] == pytest.approx(hand, abs=1e-12)
    assert result["status"] == WATCH  # 0.1 <= 0.139 < 0.2


def test_psi_counts_an_empty_bin_as_epsilon() -> None:
    # every batch value in the first bin: (1 - 0.1) ln(1/0.1) + 9 x (0.0001 - 0.1) ln(0.0001/0.1)
    hand = 0.9 * math.log(10) + 9 * (0.0001 - 0.1) * math.log(0.0001 / 0.1)
    assert hand == pytest.approx(8.2830894, abs=1e-6)
    assert datadrift.psi([0.1] * 10, [1.0] + [0.0] * 9) == pytest.approx(hand, abs=1e-12)
    assert datadrift.psi([0.1] * 10, [0.1] * 10) == 0.0


def test_psi_levels_decide_watch_and_drift() -> None:
    reference = datadrift.feature_reference(np.arange(1, 101, dtype=float), DriftConfig(ks_max_reference_rows=0))
    batch = np.repeat([5.0, 15, 25, 35, 45, 55, 65, 75, 85, 95], [20, 10, 10, 10, 10, 10, 10, 10, 5, 5])
    strict = DriftConfig(ks_max_reference_rows=0, psi_watch=0.05, psi_drift=0.13)
    lenient = DriftConfig(ks_max_reference_rows=0, psi_watch=0.15, psi_drift=0.3)
    assert datadrift.compare_feature(reference, batch, strict)["status"] == DRIFT
    assert datadrift.compare_feature(reference, batch, lenient)["status"] == NO_DRIFT


# --- same distribution: false alarms near alpha ---


def test_ks_false_alarm_rate_stays_near_alpha_over_many_seeds() -> None:
    """400 seeds x 3 features, batch from the reference's distribution: about alpha = 5% of tests flag.

    The exact two-sample KS test is slightly conservative (its p-values are discrete): about 4.5% for these
    sizes. The band [2.5%, 7.5%] is about 3 standard errors wide; a test that never flags, flags on p >= alpha,
    or uses another alpha (1% or 10%) falls outside it.
    """
    config = DriftConfig()
    feature_alarms = dataset_alarms = 0
    seeds = 400
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        result = datadrift.compare_with_reference(reference_of(rng, SMALL_REFERENCE), generate(rng, 100), config)
        assert {f["method"] for f in result["features"].values()} == {"ks"}
        feature_alarms += len(drifted_features(result))
        dataset_alarms += result["verdict"] == DRIFT
    assert 0.025 <= feature_alarms / (3 * seeds) <= 0.075
    # the dataset needs 2 of 3 features to drift: about 3 alpha^2 = 0.75% of batches
    assert dataset_alarms / seeds <= 0.02


def test_psi_does_not_flag_a_batch_from_the_same_distribution() -> None:
    config = DriftConfig()
    statuses = []
    for seed in range(100):
        rng = np.random.default_rng(seed)
        result = datadrift.compare_with_reference(reference_of(rng, LARGE_REFERENCE), generate(rng, 500), config)
        assert result["verdict"] == NO_DRIFT
        statuses += [(f["method"], f["status"]) for f in result["features"].values()]
    assert set(statuses) == {("psi", NO_DRIFT)}


# --- a shift on one feature is flagged on that feature only ---


@pytest.mark.parametrize(
    "reference_rows, batch_rows", [(SMALL_REFERENCE, 100), (LARGE_REFERENCE, 500)], ids=["ks", "psi"]
)
@pytest.mark.parametrize("shift", [{"mean_shift": {"b": 1.0}}, {"scale": {"b": 2.5}}], ids=["mean", "scale"])
def test_a_shift_on_one_feature_is_flagged_on_that_feature_only(
    reference_rows: int, batch_rows: int, shift: dict
) -> None:
    config = DriftConfig()
    seeds = 20
    flagged = {name: 0 for name in FEATURE_NAMES}
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        batch = generate(rng, batch_rows, **shift)
        result = datadrift.compare_with_reference(reference_of(rng, reference_rows), batch, config)
        drifted = drifted_features(result)
        for name in drifted:
            flagged[name] += 1
        # one drifted feature of three is below the 50% vote; a false alarm on a second one tips it
        assert result["verdict"] == (DRIFT if len(drifted) >= 2 else NO_DRIFT)
    assert flagged["b"] == seeds
    assert flagged["a"] + flagged["c"] <= 3  # KS false alarms at alpha 5% over 40 tests; PSI has none


def test_the_shifted_feature_reports_its_statistic_and_means() -> None:
    rng = np.random.default_rng(7)
    result = datadrift.compare_with_reference(
        reference_of(rng, SMALL_REFERENCE), generate(rng, 100, mean_shift={"b": 1.0}), DriftConfig()
    )
    shifted = result["features"]["b"]
    assert shifted["p_value"] < 0.05 and shifted["statistic"] > 0.3
    assert shifted["batch_mean"] - shifted["reference_mean"] == pytest.approx(2.0, abs=0.5)  # 1 sd of feature b
    assert result["drifted_features"] == ["b"] and result["drift_share"] == pytest.approx(1 / 3)


def test_most_features_drifting_make_the_dataset_verdict_drift() -> None:
    rng = np.random.default_rng(3)
    reference = reference_of(rng, SMALL_REFERENCE)
    batch = generate(rng, 100, mean_shift={"a": 1.0, "c": 1.0})
    assert datadrift.compare_with_reference(reference, batch, DriftConfig())["verdict"] == DRIFT
    assert datadrift.compare_with_reference(reference, batch, DriftConfig(feature_share=1.0))["verdict"] == NO_DRIFT


# --- tiny batches ---


@pytest.mark.parametrize(
    "reference_rows, batch_rows",
    [(SMALL_REFERENCE, 19), (LARGE_REFERENCE, 99)],
    ids=["ks-below-min-rows", "psi-below-10-rows-per-bin"],
)
def test_a_tiny_batch_says_insufficient_data_even_when_far_off(reference_rows: int, batch_rows: int) -> None:
    rng = np.random.default_rng(0)
    reference = reference_of(rng, reference_rows)
    far_off = generate(rng, batch_rows, mean_shift={"a": 10.0, "b": 10.0, "c": 10.0})
    result = datadrift.compare_with_reference(reference, far_off, DriftConfig())
    assert result["verdict"] == INSUFFICIENT
    assert {f["status"] for f in result["features"].values()} == {INSUFFICIENT}
    assert f"{batch_rows} batch values" in result["reason"]
    one_more = generate(rng, batch_rows + 1, mean_shift={"a": 10.0, "b": 10.0, "c": 10.0})
    assert datadrift.compare_with_reference(reference, one_more, DriftConfig())["verdict"] == DRIFT


def test_missing_values_do_not_count_as_rows() -> None:
    rng = np.random.default_rng(0)
    reference = reference_of(rng, SMALL_REFERENCE)
    batch = generate(rng, 40)
    batch["a"][5:] = np.nan  # 5 usable values of a
    result = datadrift.compare_with_reference(reference, batch, DriftConfig())
    assert result["features"]["a"]["status"] == INSUFFICIENT and result["features"]["a"]["batch_rows"] == 5
    assert result["features"]["b"]["status"] in (NO_DRIFT, DRIFT)


def test_untested_features_that_could_flip_the_vote_make_it_insufficient() -> None:
    tested = {"status": DRIFT, "detail": "KS"}
    untested = {"status": INSUFFICIENT, "detail": "3 batch values, 20 needed"}
    calm = {"status": NO_DRIFT, "detail": "KS"}
    assert datadrift.dataset_verdict({"a": tested, "b": untested, "c": calm}, 0.5)[0] == INSUFFICIENT
    assert datadrift.dataset_verdict({"a": calm, "b": untested, "c": calm}, 0.5)[0] == NO_DRIFT
    assert datadrift.dataset_verdict({"a": tested, "b": tested, "c": untested}, 0.5)[0] == DRIFT
    assert datadrift.dataset_verdict({}, 0.5)[0] == INSUFFICIENT


# --- target and predicted-positive rates ---


def test_rate_shift_flags_a_changed_rate_only() -> None:
    config = DriftConfig()
    reference = datadrift.rate_reference(np.array([1] * 40 + [0] * 160))  # 20%
    same = datadrift.rate_shift(reference, np.array([1] * 20 + [0] * 80), config)
    assert same["status"] == NO_DRIFT and same["shift"] == pytest.approx(0.0) and same["p_value"] == pytest.approx(1)
    moved = datadrift.rate_shift(reference, np.array([1] * 60 + [0] * 40), config)
    assert moved["status"] == DRIFT and moved["shift"] == pytest.approx(0.4) and moved["p_value"] < 1e-6
    assert datadrift.rate_shift(reference, np.array([1, 1, 1]), config)["status"] == INSUFFICIENT


# --- the reference ---


def test_small_reference_keeps_values_and_large_one_only_the_histogram() -> None:
    rng = np.random.default_rng(0)
    small = reference_of(rng, SMALL_REFERENCE)
    large = reference_of(rng, LARGE_REFERENCE)
    assert len(small["features"]["a"]["values"]) == SMALL_REFERENCE
    assert large["features"]["a"]["values"] is None
    assert len(large["features"]["a"]["bin_shares"]) == 10
    assert sum(large["features"]["a"]["bin_shares"]) == pytest.approx(1.0)
    assert large["target"]["rows"] == LARGE_REFERENCE
    json.dumps(large, allow_nan=False)  # JSON-able as written with each model


def test_reference_counts_missing_values() -> None:
    entry = datadrift.feature_reference(np.array([1.0, np.nan, 3.0, np.nan]), DriftConfig())
    assert entry["rows"] == 2 and entry["missing"] == 2 and entry["values"] == [1.0, 3.0]


def test_a_result_without_reference_has_the_shape_of_a_comparison() -> None:
    rng = np.random.default_rng(0)
    compared = datadrift.compare_with_reference(reference_of(rng, SMALL_REFERENCE), generate(rng, 50), DriftConfig())
    missing = datadrift.without_reference(50, DriftConfig(), "deployed before references were kept")
    assert set(missing) == set(compared) and missing["verdict"] == NO_REFERENCE
    assert "no reference (deployed before" in datadrift.summary_line(missing)


# --- against the deployed model ---


def _practice_rows(project: Project) -> pd.DataFrame:
    return pd.concat(
        [read_data_file(p) for p in sorted((project.root / "practicedata").glob("*.csv"))], ignore_index=True
    ).drop_duplicates()


@pytest.mark.slow
def test_training_reference_is_deployed_with_its_sha256(deployed_project: Project) -> None:
    settings = deployed_project.settings(deployed_project.practice_config)
    deployed = load_deployed_model(settings)
    metadata = read_metadata(deployed.path)
    reference_file = deployed.path / REFERENCE_NAME
    assert metadata["reference_sha256"] == sha256_file(reference_file)
    assert read_record(settings, deployed.version).files[REFERENCE_NAME] == metadata["reference_sha256"]
    reference = json.loads(reference_file.read_text())
    assert reference["rows"] == len(_practice_rows(deployed_project))
    assert set(reference["features"]) == set(FEATURES)


@pytest.mark.slow
def test_data_drift_of_the_training_data_is_no_drift(deployed_project: Project) -> None:
    settings = deployed_project.settings(deployed_project.practice_config)
    rows = _practice_rows(deployed_project)
    rows.index = range(100, 100 + len(rows))  # a slice of a larger frame, as fullprocess's new batch is
    result = diagnostics.data_drift(settings, rows, files=["practice"])
    assert result["verdict"] == NO_DRIFT and result["model_version"] == "v0001"
    assert {f["method"] for f in result["features"].values()} == {"ks"}
    assert all(f["p_value"] == pytest.approx(1.0) for f in result["features"].values())
    assert result["target_rate"]["shift"] == pytest.approx(0.0)
    assert result["predicted_positive_rate"]["shift"] == pytest.approx(0.0)
    json.dumps(result, allow_nan=False)


@pytest.mark.slow
def test_data_drift_of_a_tiny_or_empty_batch_is_insufficient_data(deployed_project: Project) -> None:
    settings = deployed_project.settings(deployed_project.practice_config)
    rows = _practice_rows(deployed_project)
    assert diagnostics.data_drift(settings, rows.head(5))["verdict"] == INSUFFICIENT
    assert diagnostics.data_drift(settings, rows.head(0))["verdict"] == INSUFFICIENT


@pytest.mark.slow
def test_a_version_deployed_before_references_says_no_reference(deployed_project: Project, tmp_path: Path) -> None:
    project = deployed_project
    settings = project.settings(project.practice_config)
    version = load_deployed_model(settings).path
    metadata = json.loads((version / METADATA_NAME).read_text())
    for key in ("reference_file", "reference_sha256"):
        metadata.pop(key)
    (version / METADATA_NAME).write_text(json.dumps(metadata))
    (version / REFERENCE_NAME).unlink()
    result = diagnostics.data_drift(settings, _practice_rows(project))
    assert result["verdict"] == NO_REFERENCE and "v0001 was deployed before" in result["reason"]
    assert "data drift of" in diagnostics.describe_data_drift(result)


@pytest.mark.slow
def test_a_tampered_reference_is_refused(deployed_project: Project, tmp_path: Path) -> None:
    project = deployed_project
    settings = project.settings(project.practice_config)
    reference = load_deployed_model(settings).path / REFERENCE_NAME
    reference.write_text(reference.read_text().replace('"rows":', '"rows": 1, "x":', 1))
    with pytest.raises(ModelIntegrityError, match="does not match the sha256"):
        diagnostics.data_drift(settings, _practice_rows(project))


@pytest.mark.slow
def test_diagnostics_cli_prints_the_data_drift_of_a_file(deployed_project: Project, tmp_path: Path) -> None:
    """The course's sourcedata is far from the practice data the deployed model was trained on."""
    source = deployed_project.root / "sourcedata"
    both = tmp_path / "sourcedata.csv"
    pd.concat([pd.read_csv(path) for path in sorted(source.glob("*.csv"))]).to_csv(both, index=False)
    result = deployed_project.run("diagnostics.py", "--data-drift", str(both), config=deployed_project.practice_config)
    printed = json.loads(result.stdout)
    assert printed["model_version"] == "v0001" and printed["files"] == ["sourcedata.csv"]
    assert printed["verdict"] == DRIFT and printed["batch_rows"] == 26
    assert printed["drifted_features"] == list(FEATURES)
    assert "data drift of 26 new rows vs v0001 training reference" in result.stderr
    one = deployed_project.run_in_process(
        "diagnostics.py", "--data-drift", str(source / "dataset4.csv"), config=deployed_project.practice_config
    )
    assert json.loads(one.stdout)["verdict"] == INSUFFICIENT  # 15 rows, fewer than data_drift_min_rows (20)
    missing = deployed_project.run_in_process(
        "diagnostics.py", "--data-drift", "nope.csv", config=deployed_project.config, check=False
    )
    assert missing.returncode == 2 and "nope.csv does not exist" in missing.stderr


# --- config ---


def test_data_drift_defaults(project: Project) -> None:
    settings = project.settings()
    assert DriftConfig.from_settings(settings) == DriftConfig()
    assert settings.data_drift_triggers_retrain is False


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("data_drift_ks_alpha", 1.5, "between 0 and 1"),
        ("data_drift_psi_drift", 0, "greater than 0"),
        ("data_drift_psi_bins", 1, "at least 2"),
        ("data_drift_min_rows", "20", "whole number"),
        ("data_drift_feature_share", 0, "at most 1"),
        ("data_drift_triggers_retrain", "yes", "true or false"),
        ("data_drift_psi_watch", 0.3, "must be below 'data_drift_psi_drift'"),
    ],
)
def test_bad_data_drift_keys_are_named(project: Project, key: str, value: object, message: str) -> None:
    project.edit_config(**{key: value})
    with pytest.raises(ConfigError, match=key) as error:
        load_config(project.config)
    assert message in str(error.value)


def test_data_drift_keys_reach_the_check(project: Project) -> None:
    project.edit_config(
        data_drift_ks_alpha=0.01,
        data_drift_min_rows=50,
        data_drift_psi_bins=5,
        data_drift_feature_share=1.0,
        data_drift_triggers_retrain=True,
    )
    config = DriftConfig.from_settings(project.settings())
    assert (config.ks_alpha, config.min_rows, config.psi_bins, config.feature_share) == (0.01, 50, 5, 1.0)
    assert config.rows_needed("psi", 5) == 50 and config.rows_needed("ks", 5) == 50
