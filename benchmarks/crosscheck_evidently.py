"""Cross-check: our data drift check against Evidently's data drift preset on the same generated batches.

For batches of known shape (same distribution; a shift in mean or scale on one feature; shifts on two or all
features) against a small reference (our KS path) and a large one (our PSI path), it runs
``datadrift.compare_with_reference`` and Evidently's ``DataDriftPreset`` twice: with its defaults (KS up to 1000
reference rows, normed Wasserstein distance above) and with our methods and thresholds (KS alpha 0.05 /
PSI 0.2). It prints how often the dataset verdicts and the per-feature verdicts agree, and the time each took.
A tiny batch is shown apart: ours says ``insufficient data`` there, Evidently always gives a verdict.

Evidently is not a dependency of the project (evidently 0.7.23 needs pandas 2; the project pins pandas 3), so
it gets its own virtual environment; our side needs only numpy and scipy::

    python3 -m venv .venv-evidently
    .venv-evidently/bin/pip install -r benchmarks/requirements-evidently.txt
    .venv-evidently/bin/python benchmarks/crosscheck_evidently.py [--seeds 20]

Not a test: the figures are printed for the README ("Data drift" section), never asserted.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from risk import datadrift  # noqa: E402  (numpy and scipy only)
from risk.datadrift import DRIFT, INSUFFICIENT, DriftConfig  # noqa: E402

FEATURES = ("a", "b", "c")
P_VALUE_METHODS = ("ks",)  # Evidently names a method it chose by default "K-S p_value"; one we chose, "ks"
INSTALL_HINT = (
    "Evidently cannot be imported here ({error}). It is not a project dependency (evidently 0.7.23 needs "
    "pandas 2, the project pins pandas 3); install it into its own venv:\n"
    "    python3 -m venv .venv-evidently\n"
    "    .venv-evidently/bin/pip install -r benchmarks/requirements-evidently.txt\n"
    "    .venv-evidently/bin/python benchmarks/crosscheck_evidently.py"
)
KINDS: dict[str, dict[str, dict[str, float]]] = {
    "same distribution": {},
    "mean +0.5 sd on a": {"mean_shift": {"a": 0.5}},
    "scale x1.5 on a": {"scale": {"a": 1.5}},
    "mean +0.5 sd on a, b": {"mean_shift": {"a": 0.5, "b": 0.5}},
    "mean +0.15 sd on all": {"mean_shift": {"a": 0.15, "b": 0.15, "c": 0.15}},
}
SIZES = {"KS": (500, 200), "PSI": (5000, 1000)}
TINY = ("KS: tiny batch, mean +2 sd on all", 500, 10, {"mean_shift": {"a": 2.0, "b": 2.0, "c": 2.0}})


def generate(
    rng: np.random.Generator,
    rows: int,
    mean_shift: dict[str, float] | None = None,
    scale: dict[str, float] | None = None,
) -> dict[str, np.ndarray]:
    """Feature i ~ Normal(10 i, i); shifts are in units of the feature's sd (as in tests/test_datadrift.py)."""
    mean_shift, scale = mean_shift or {}, scale or {}
    return {
        name: rng.normal(10 * i + mean_shift.get(name, 0.0) * i, i * scale.get(name, 1.0), rows)
        for i, name in enumerate(FEATURES, start=1)
    }


@dataclass
class Outcome:
    """One tool's verdicts on one comparison."""

    dataset: str  # drift, no drift or insufficient data
    features: dict[str, bool]
    seconds: float


def ours(
    reference_data: dict[str, np.ndarray], batch: dict[str, np.ndarray], config: DriftConfig
) -> tuple[Outcome, float]:
    """Our check; returns the outcome (compare time) and the time to build the reference (done once per model)."""
    started = time.perf_counter()
    target = np.zeros(len(reference_data["a"]))
    reference = datadrift.build_reference(reference_data, target, target, config)
    built = time.perf_counter()
    result = datadrift.compare_with_reference(reference, batch, config)
    done = time.perf_counter()
    features = {name: r["status"] == DRIFT for name, r in result["features"].items()}
    return Outcome(result["verdict"], features, done - built), built - started


def evidently_check(
    reference_data: dict[str, np.ndarray], batch: dict[str, np.ndarray], preset_options: dict[str, Any]
) -> Outcome:
    """Evidently's DataDriftPreset on the same data (frames built outside the timing)."""
    import pandas as pd
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    definition = DataDefinition(numerical_columns=list(FEATURES))
    reference = Dataset.from_pandas(pd.DataFrame(reference_data), data_definition=definition)
    current = Dataset.from_pandas(pd.DataFrame(batch), data_definition=definition)
    started = time.perf_counter()
    snapshot = Report([DataDriftPreset(**preset_options)]).run(current, reference)
    seconds = time.perf_counter() - started
    features: dict[str, bool] = {}
    count = share = None
    for metric in snapshot.dict()["metrics"]:
        config = metric["config"]
        if config["type"].endswith("DriftedColumnsCount"):
            count, share = metric["value"]["count"], config["drift_share"]
        elif config["type"].endswith("ValueDrift"):
            value, threshold = metric["value"], config["threshold"]
            # p-value methods drift below the threshold, distances (PSI, Wasserstein) at or above it
            p_value = "p_value" in config["method"] or config["method"] in P_VALUE_METHODS
            features[config["column"]] = value < threshold if p_value else value >= threshold
    if count is None or int(count) != sum(features.values()):
        raise RuntimeError(f"could not read Evidently's result: {snapshot.dict()['metrics']}")
    return Outcome(DRIFT if count / len(FEATURES) >= share else "no drift", features, seconds)


def matched_options(reference_rows: int, config: DriftConfig) -> dict[str, Any]:
    """Evidently configured with our method for this reference size and our thresholds and vote share."""
    small = reference_rows <= config.ks_max_reference_rows
    return {
        "num_method": "ks" if small else "psi",
        "num_threshold": config.ks_alpha if small else config.psi_drift,
        "drift_share": config.feature_share,
    }


@dataclass
class Tally:
    """Agreement counts for one scenario."""

    runs: int = 0
    ours_drift: int = 0
    ours_insufficient: int = 0
    drift: dict[str, int] = field(default_factory=dict)
    dataset_agree: dict[str, int] = field(default_factory=dict)
    feature_agree: dict[str, int] = field(default_factory=dict)
    feature_total: int = 0

    def add(self, mine: Outcome, theirs: dict[str, Outcome]) -> None:
        self.runs += 1
        self.ours_drift += mine.dataset == DRIFT
        self.ours_insufficient += mine.dataset == INSUFFICIENT
        self.feature_total += len(FEATURES)
        for name, outcome in theirs.items():
            self.drift[name] = self.drift.get(name, 0) + (outcome.dataset == DRIFT)
            self.dataset_agree[name] = self.dataset_agree.get(name, 0) + (outcome.dataset == mine.dataset)
            same = sum(outcome.features[f] == mine.features[f] for f in FEATURES)
            self.feature_agree[name] = self.feature_agree.get(name, 0) + same


def run(seeds: int) -> None:
    config = DriftConfig()
    tools = ("evidently default", "evidently matched")
    times: dict[str, list[float]] = {"ours (compare)": [], "ours (build reference)": [], **{t: [] for t in tools}}
    totals = {t: Tally() for t in ("all",)}
    print_header()
    scenarios = [
        (f"{size}: {kind}", ref_rows, batch_rows, shift)
        for size, (ref_rows, batch_rows) in SIZES.items()
        for kind, shift in KINDS.items()
    ]
    for label, ref_rows, batch_rows, shift in [*scenarios, TINY]:
        tally = Tally()
        for seed in range(seeds):
            rng = np.random.default_rng(seed)
            reference_data, batch = generate(rng, ref_rows), generate(rng, batch_rows, **shift)
            mine, build_seconds = ours(reference_data, batch, config)
            theirs = {
                "evidently default": evidently_check(reference_data, batch, {}),
                "evidently matched": evidently_check(reference_data, batch, matched_options(ref_rows, config)),
            }
            times["ours (compare)"].append(mine.seconds)
            times["ours (build reference)"].append(build_seconds)
            for name, outcome in theirs.items():
                times[name].append(outcome.seconds)
            tally.add(mine, theirs)
            if (label, ref_rows, batch_rows, shift) != TINY:
                totals["all"].add(mine, theirs)
        print_row(label, ref_rows, batch_rows, tally, tools)
    overall = totals["all"]
    print()
    for tool in tools:
        print(
            f"overall, ours vs {tool}: dataset verdicts agree in {overall.dataset_agree[tool]}/{overall.runs} "
            f"({overall.dataset_agree[tool] / overall.runs:.0%}), feature verdicts in "
            f"{overall.feature_agree[tool]}/{overall.feature_total} "
            f"({overall.feature_agree[tool] / overall.feature_total:.0%}) (tiny batches excluded)"
        )
    print()
    for name, seconds in times.items():
        print(
            f"time per comparison, {name:<24} median {statistics.median(seconds) * 1000:8.2f} ms   "
            f"total {sum(seconds):7.2f} s over {len(seconds)}"
        )
    evidently_median = statistics.median(times["evidently default"])
    compare, build = statistics.median(times["ours (compare)"]), statistics.median(times["ours (build reference)"])
    print(
        f"ratio Evidently (default preset) / ours: {evidently_median / compare:.0f}x per comparison, "
        f"{evidently_median / (compare + build):.0f}x counting the reference build"
    )


def print_header() -> None:
    print(
        f"{'scenario':<44} {'ref':>5} {'batch':>5} | {'dataset drift flagged':^31} | "
        f"{'dataset agree':^13} | {'feature agree':^13}"
    )
    print(
        f"{'':<44} {'rows':>5} {'rows':>5} | {'ours':>5} {'(insuff.)':>9} {'ev.def':>7} {'ev.ours':>7} | "
        f"{'def':>6} {'ours':>6} | {'def':>6} {'ours':>6}"
    )


def print_row(label: str, ref_rows: int, batch_rows: int, tally: Tally, tools: tuple[str, ...]) -> None:
    """One scenario: how often each flags dataset drift, and how often the verdicts agree."""
    runs = tally.runs
    dataset = " ".join(f"{tally.dataset_agree[t] / runs:>6.0%}" for t in tools)
    features = " ".join(f"{tally.feature_agree[t] / tally.feature_total:>6.0%}" for t in tools)
    flagged = " ".join(f"{tally.drift[t]:>4}/{runs:<2}" for t in tools)
    print(
        f"{label:<44} {ref_rows:>5} {batch_rows:>5} | {tally.ours_drift:>2}/{runs:<2} {tally.ours_insufficient:>9} "
        f"{flagged} | {dataset} | {features}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20, help="generated batches per scenario (default 20)")
    args = parser.parse_args()
    try:
        import evidently
    except ImportError as err:
        raise SystemExit(INSTALL_HINT.format(error=err)) from None
    warnings.filterwarnings("ignore")  # Evidently's deprecation chatter
    import scipy

    print(
        f"evidently {evidently.__version__}, scipy {scipy.__version__}, numpy {np.__version__}, "
        f"python {sys.version.split()[0]}; {args.seeds} seeds per scenario"
    )
    print(
        "ev.def = Evidently's DataDriftPreset with its defaults; ev.ours = the preset with our methods and "
        "thresholds;\n(insuff.) = batches ours called 'insufficient data'; agree = share of equal verdicts\n"
    )
    run(args.seeds)


if __name__ == "__main__":
    main()
