"""Simulate the product's drift decision and challenger gate tick by tick, and print how often each rule redeploys.

    .venv/bin/python benchmarks/drift_sim.py [--quick] [--out benchmarks/results/drift_sim.json]

Every decision goes through the product's functions: ``risk.drift.decide``, ``risk.evaluation.out_of_fold_counts``,
``risk.gate.candidate_slices`` / ``challenger_predictions`` (which calls ``risk.evaluation.cross_fitted_predictions``)
and ``risk.gate.judge``, with the model ``risk.model.build_model(ModelParams())``. Data: ``risk.synthetic.client_rows``.

The simulated product (one "world" per run):
- A first model is trained on ``train`` rows (36, course-sized, or 1,000) and deployed. Its test score (the course's
  ``latestscore.txt``, what ``raw`` compares with) is its F1 on a labelled test file of 5 or 1,000 rows drawn once
  per run (F1 0 when undefined there, as the course's f1_score does). Its reference for ``significant`` is its
  out-of-fold counts on its training rows.
- Each tick a batch of 5 / 26 / 100 / 1,000 / 10,000 labelled rows arrives and is ingested. The deployed model's
  counts on it (plus rows carried over) go to ``decide``. Carried over: the rows wait for the next tick. Decided
  and the model stays: the batch's counts join the reference (``DriftDecision.next_reference``). No drift:
  the batch's F1 joins the history (course rules: scores of the current model only, the last 20, reset on
  redeploy; a drifting batch's own score is left out). Drift: the gate judges the candidates ``all`` (all rows),
  ``window`` (rows since the last deployment) and ``new`` (the rows the drift was found on), cross-fitted on the
  new rows, against the deployed model's predictions there; a chosen candidate is trained on its rows and deployed.
- A redeploy is drift AND the gate deploying. On unchanged data every redeploy is a false redeploy.
- Detection: at every second tick of the unchanged runs, a probe batch from a changed world goes to ``decide`` in the
  current state (not committed): labels flipped (20%, 50%), the decision boundary reversed (``drift=True``), or
  lastmonth_activity reported x3 (a unit change upstream: the labels still follow the true activity). For the
  significant rule at batches below 100 rows the probe also follows the change over as many ticks as the carried-
  over rows need to reach the evidence minimum ("within k ticks").
- Gate: at 1,000 new rows, after one quiet 1,000-row tick, for each change; "truly" from a 20,000-row sample of the
  world after the change: a candidate is truly worse when its F1 there is below the champion's, truly better when
  it is at least MARGIN above.
- Recovery: after 0 or 3 quiet ticks, the boundary reverses in a 1,000-row batch; the deployed model's F1 on the new
  concept after that one tick, as a share of its F1 on the old concept before the change.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from risk.config import ModelParams
from risk.drift import DEFAULT_MIN_ROWS, ConfusionCounts, DriftDecision, DriftRule, decide
from risk.evaluation import out_of_fold_counts
from risk.gate import candidate_slices, challenger_predictions, judge
from risk.model import build_model
from risk.synthetic import client_rows

log = logging.getLogger("drift_sim")

RULES = tuple(rule.value for rule in DriftRule)  # significant, raw, parametric, nonparametric
CHANGES = ("flip20", "flip50", "reversed", "scaled")
TRAIN_SIZES = (36, 1000)
TEST_SIZES = (5, 1000)
BATCH_SIZES = (5, 26, 100, 1000, 10_000)
HISTORY_KEPT = 20  # the config's drift_history_size default
TRUTH_ROWS = 20_000
SIZE_BATCHES = (100, 1000, 10_000)
SIZE_CHUNK = 50
PROBE_EVERY = 2  # ticks between detection probes
MARGIN = 0.02  # "truly better": at least this much F1 above the champion on the large sample
DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "drift_sim.json"


def make_model() -> Any:
    return build_model(ModelParams())


def draw(rng: np.random.Generator, rows: int, change: str = "unchanged") -> tuple[np.ndarray, np.ndarray]:
    """``rows`` labelled rows (features, exited) from the world after ``change``."""
    data = client_rows(rng, rows, change == "reversed")
    X, y = data[:, 1:4].astype(float), data[:, 4].copy()
    if change.startswith("flip"):
        flipped = rng.random(rows) < int(change[4:]) / 100
        y[flipped] = 1 - y[flipped]
    elif change == "scaled":
        X[:, 0] *= 3
    return X, y


def f1_or_zero(y: np.ndarray, predicted: np.ndarray) -> float:
    """F1 as the course's scoring computes it (0 when undefined)."""
    return ConfusionCounts.from_labels(y, predicted).f1 or 0.0


# --- one simulated product ---


@dataclass
class World:
    """The product's state in one run: its data in arrival order, the deployed model and what the rules keep."""

    rule: str
    X: np.ndarray
    y: np.ndarray
    test_X: np.ndarray
    test_y: np.ndarray
    n: int = 0
    model: Any = None
    test_score: float = 0.0
    reference: ConfusionCounts | None = None
    history: list[float] = field(default_factory=list)
    pending: int = 0  # the last ``pending`` rows are carried over
    since_deploy: int = 0

    def append(self, X: np.ndarray, y: np.ndarray) -> None:
        if self.n + len(y) > len(self.y):  # grow the preallocated arrays
            extra = max(len(self.y), len(y))
            self.X = np.concatenate([self.X, np.empty((extra, 3))])
            self.y = np.concatenate([self.y, np.empty(extra, dtype=np.int64)])
        self.X[self.n : self.n + len(y)], self.y[self.n : self.n + len(y)] = X, y
        self.n += len(y)
        self.since_deploy += len(y)

    def deploy(self, rows: slice) -> None:
        X, y = self.X[rows], self.y[rows]
        self.model = make_model().fit(X, y)
        self.test_score = f1_or_zero(self.test_y, self.model.predict(self.test_X))
        self.reference = out_of_fold_counts(make_model, X, y) if self.rule == DriftRule.SIGNIFICANT.value else None
        self.history = []
        self.since_deploy = 0

    def decide_on(self, X_new: np.ndarray, y_new: np.ndarray) -> DriftDecision:
        """The decision on the carried-over rows plus (X_new, y_new), without changing the state."""
        start = self.n - self.pending
        X = np.concatenate([self.X[start : self.n], X_new])
        y = np.concatenate([self.y[start : self.n], y_new])
        counts = ConfusionCounts.from_labels(y, self.model.predict(X))
        return decide(self.rule, counts, self.test_score, self.reference, self.history[-HISTORY_KEPT:])


def new_world(rng: np.random.Generator, rule: str, train: int, test: int, capacity: int) -> World:
    while True:  # a first training set needs both classes (the course data has both)
        X, y = draw(rng, train)
        if np.bincount(y, minlength=2).min() >= 2:
            break
    test_X, test_y = draw(rng, test)
    world = World(rule, np.empty((capacity, 3)), np.empty(capacity, dtype=np.int64), test_X, test_y)
    world.append(X, y)
    world.deploy(slice(0, train))
    return world


@dataclass(frozen=True)
class Tick:
    decision: DriftDecision
    gate_ran: bool
    redeployed: bool
    chosen: str | None


def tick(world: World, X: np.ndarray, y: np.ndarray) -> Tick:
    """One cron tick of the product with a new labelled batch."""
    decision = world.decide_on(X, y)
    world.append(X, y)
    if decision.carried_over:
        world.pending += len(y)
        return Tick(decision, False, False, None)
    new_rows, world.pending = world.pending + len(y), 0
    if not decision.drift:
        world.history.append(decision.new_f1)
        world.reference = decision.next_reference
        return Tick(decision, False, False, None)
    evidence = slice(world.n - new_rows, world.n)
    champion = world.model.predict(world.X[evidence])
    slices = candidate_slices(world.n, world.since_deploy, new_rows)
    predictions = challenger_predictions(make_model, world.X[: world.n], world.y[: world.n], new_rows, slices)
    result = judge(world.y[evidence], champion, predictions)
    if result.chosen is not None:
        world.deploy(slices[result.chosen])
    else:
        world.reference = decision.next_reference
    return Tick(decision, True, result.chosen is not None, result.chosen)


def probe_within(world: World, rng: np.random.Generator, change: str, batch: int, limit: int) -> bool:
    """Whether the rule fires within ``limit`` ticks of changed batches, rows carried over as the product does."""
    X_new, y_new = np.empty((0, 3)), np.empty(0, dtype=np.int64)
    for _ in range(limit):
        X, y = draw(rng, batch, change)
        X_new, y_new = np.concatenate([X_new, X]), np.concatenate([y_new, y])
        decision = world.decide_on(X_new, y_new)
        if not decision.carried_over:
            return decision.drift
    return False


# --- experiments (each a picklable task for the process pool) ---


def null_task(rule: str, train: int, test: int, batch: int, runs: int, ticks: int, seed: int) -> dict[str, Any]:
    """Unchanged data: how often the rule fires and redeploys, lock-in, and probes of each change."""
    rng = np.random.default_rng(seed)
    truth_X, truth_y = draw(rng, TRUTH_ROWS)
    k = math.ceil(DEFAULT_MIN_ROWS / batch)
    stats: dict[str, Any] = {
        "rule": rule,
        "train": train,
        "test": test,
        "batch": batch,
        "runs": runs,
        "ticks": 0,
        "decided": 0,
        "fired": 0,
        "redeployed": 0,
        "carried": 0,
        "raw_fired_beside": 0,
        "worse_redeploys": 0,
        "worst_true_change": 0.0,
        "after": {"deploy": [0, 0, 0], "no drift": [0, 0, 0], "rejected": [0, 0, 0]},  # decisions, fired, redeployed
        "probe": {c: [0, 0] for c in CHANGES},
        "probe_within": {c: [0, 0] for c in CHANGES},
        "within_ticks": k,
    }
    for _ in range(runs):
        world = new_world(rng, rule, train, test, train + ticks * batch)
        last = "deploy"
        for index in range(ticks):
            for change in CHANGES if index % PROBE_EVERY == 0 else ():
                stats["probe"][change][0] += 1
                stats["probe"][change][1] += world.decide_on(*draw(rng, batch, change)).drift
                if rule == DriftRule.SIGNIFICANT.value and k > 1 and index % (2 * PROBE_EVERY) == 0:
                    stats["probe_within"][change][0] += 1
                    stats["probe_within"][change][1] += probe_within(world, rng, change, batch, 3 * k)
            before = world.model
            result = tick(world, *draw(rng, batch))
            stats["ticks"] += 1
            stats["carried"] += result.decision.carried_over
            stats["raw_fired_beside"] += bool(result.decision.raw and result.decision.raw.drift)
            if result.decision.carried_over:
                continue
            stats["decided"] += 1
            stats["fired"] += result.decision.drift
            stats["redeployed"] += result.redeployed
            counters = stats["after"][last]
            counters[0] += 1
            counters[1] += result.decision.drift
            counters[2] += result.redeployed
            if result.redeployed:
                change = f1_or_zero(truth_y, world.model.predict(truth_X)) - f1_or_zero(
                    truth_y, before.predict(truth_X)
                )
                stats["worse_redeploys"] += change < 0
                stats["worst_true_change"] = min(stats["worst_true_change"], change)
            last = "deploy" if result.redeployed else "rejected" if result.decision.drift else "no drift"
    return stats


def gate_task(train: int, change: str, reps: int, seed: int) -> dict[str, Any]:
    """The gate at 1,000 new rows after one quiet tick: each candidate's choice against its true difference."""
    rng = np.random.default_rng(seed)
    truth_X, truth_y = draw(rng, TRUTH_ROWS, change)
    records = []
    for run in range(reps):
        world = new_world(rng, DriftRule.RAW.value, train, 5, train + 2000)  # the gate does not use the rule
        world.append(*draw(rng, 1000))  # a quiet tick: the rows since the last deployment grow
        world.append(*draw(rng, 1000, change))
        new = slice(world.n - 1000, world.n)
        slices = candidate_slices(world.n, world.since_deploy, 1000)
        predictions = challenger_predictions(make_model, world.X[: world.n], world.y[: world.n], 1000, slices)
        result = judge(world.y[new], world.model.predict(world.X[new]), predictions)
        champion_true = f1_or_zero(truth_y, world.model.predict(truth_X))
        for name, rows in slices.items():
            final = make_model().fit(world.X[rows], world.y[rows])
            records.append(
                {
                    "candidate": name,
                    "true_difference": f1_or_zero(truth_y, final.predict(truth_X)) - champion_true,
                    "chosen": result.chosen == name,
                    "run": run,
                }
            )
    return {"train": train, "change": change, "reps": reps, "records": records}


def recovery_task(rule: str, train: int, quiet: int, reps: int, seed: int) -> dict[str, Any]:
    """After ``quiet`` quiet 1,000-row ticks the boundary reverses: the deployed F1 after one tick, as a share."""
    rng = np.random.default_rng(seed)
    old_X, old_y = draw(rng, TRUTH_ROWS)
    new_X, new_y = draw(rng, TRUTH_ROWS, "reversed")
    shares, fired = [], 0
    for _ in range(reps):
        world = new_world(rng, rule, train, 1000, train + (quiet + 1) * 1000)
        for _ in range(quiet):
            tick(world, *draw(rng, 1000))
        level = f1_or_zero(old_y, world.model.predict(old_X))
        result = tick(world, *draw(rng, 1000, "reversed"))
        fired += result.decision.drift
        shares.append(f1_or_zero(new_y, world.model.predict(new_X)) / level)
    return {"rule": rule, "train": train, "quiet": quiet, "reps": reps, "fired": fired, "shares": shares}


def size_task(train: int, trials: int, seed: int) -> dict[str, Any]:
    """The significant rule's false-alarm rate on independent trials: a fresh training set, its out-of-fold
    reference and deployed model, then two unchanged batches of each size."""
    rng = np.random.default_rng(seed)
    fired = {batch: [0, 0] for batch in SIZE_BATCHES}
    for _ in range(trials):
        world = new_world(rng, DriftRule.SIGNIFICANT.value, train, 5, train)
        for batch in SIZE_BATCHES:
            for _ in range(2):
                decision = world.decide_on(*draw(rng, batch))
                fired[batch][0] += not decision.carried_over
                fired[batch][1] += decision.drift
    return {
        "train": train,
        "trials": trials,
        "decisions": {b: n for b, (n, _) in fired.items()},
        "fired": {b: h for b, (_, h) in fired.items()},
    }


def oracle_task(train: int, batch: int, change: str, draws: int, seed: int) -> dict[str, Any]:
    """The most any 5%-level test on a batch's F1 can detect: the model's true null distribution of batch F1."""
    rng = np.random.default_rng(seed)
    world = new_world(rng, DriftRule.RAW.value, train, 5, train)
    null = [f1_or_zero(y, world.model.predict(X)) for X, y in (draw(rng, batch) for _ in range(draws))]
    changed = [f1_or_zero(y, world.model.predict(X)) for X, y in (draw(rng, batch, change) for _ in range(draws))]
    cut = float(np.quantile(null, 0.05))
    return {"train": train, "batch": batch, "change": change, "power": float(np.mean(np.array(changed) < cut))}


# --- the plan and the report ---


def plan(quick: bool) -> list[tuple[Any, tuple[Any, ...]]]:
    """Tasks as (function, arguments), the expensive first so the two workers finish together."""
    tasks: list[tuple[Any, tuple[Any, ...]]] = []
    seed = 1000
    for train in TRAIN_SIZES:
        for test in TEST_SIZES:
            for batch in BATCH_SIZES:
                for rule in RULES:
                    runs, ticks = null_size(rule, batch, quick)
                    seed += 1
                    tasks.append((null_task, (rule, train, test, batch, runs, ticks, seed)))
        for change in ("unchanged", *CHANGES):
            seed += 1
            tasks.append((gate_task, (train, change, 3 if quick else 20, seed)))
        trials = 20 if quick else (400 if train < 1000 else 300)
        for _ in range(0, trials, SIZE_CHUNK):  # in chunks, so the two workers share them
            seed += 1
            tasks.append((size_task, (train, min(SIZE_CHUNK, trials), seed)))
        for quiet in (0, 3):
            for rule in (DriftRule.SIGNIFICANT.value, DriftRule.RAW.value):
                seed += 1
                tasks.append((recovery_task, (rule, train, quiet, 2 if quick else 12, seed)))
    seed += 1
    tasks.append((oracle_task, (1000, 100, "flip20", 300 if quick else 2000, seed)))
    return sorted(tasks, key=lambda task: -task_cost(task))


def null_size(rule: str, batch: int, quick: bool) -> tuple[int, int]:
    """(runs, ticks) per null task: the course rules fire often and each firing retrains, so they get fewer."""
    significant = rule == DriftRule.SIGNIFICANT.value
    if quick:
        return (2, 4) if batch >= 1000 else (2, 10)
    # significant: many short runs, since ticks of one run share a reference and so are not independent
    if batch >= 10_000:
        return (20, 6) if significant else (2, 5)
    if batch >= 1000:
        return (16, 15) if significant else (3, 12)
    return (12, 30) if significant else (4, 25)


def task_cost(task: tuple[Any, tuple[Any, ...]]) -> float:
    """A rough cost, so the pool starts the long tasks first."""
    function, args = task
    if function is null_task:
        rule, _, _, batch, runs, ticks, _ = args
        per_tick = 20 if rule == DriftRule.SIGNIFICANT.value else 5 + 0.002 * batch * ticks
        return runs * ticks * per_tick
    return {gate_task: 3000, recovery_task: 2000, size_task: 2500, oracle_task: 1500}[function]


def timed(function: Any, args: tuple[Any, ...]) -> dict[str, Any]:
    started = time.perf_counter()
    result = function(*args)
    return {**result, "seconds": round(time.perf_counter() - started, 2)}


def run_all(quick: bool, workers: int) -> dict[str, Any]:
    tasks = plan(quick)
    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(timed, function, args) for function, args in tasks]
        results = [future.result() for future in futures]
    slowest = sorted(zip(results, tasks), key=lambda pair: -pair[0]["seconds"])[:5]
    for result, (function, args) in slowest:
        log.info("slow task: %s%s %.1f s", function.__name__, args[:5], result["seconds"])
    return {
        "null": [r for (f, _), r in zip(tasks, results) if f is null_task],
        "gate": [r for (f, _), r in zip(tasks, results) if f is gate_task],
        "recovery": [r for (f, _), r in zip(tasks, results) if f is recovery_task],
        "oracle": [r for (f, _), r in zip(tasks, results) if f is oracle_task],
        "size": [r for (f, _), r in zip(tasks, results) if f is size_task],
    }


def rate(hits: int, total: int) -> float | None:
    return hits / total if total else None


def shown(value: float | None, total: int | None = None) -> str:
    text = "   -  " if value is None else f"{100 * value:5.1f}%"
    return text if total is None else f"{text} (n={total})"


def null_rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Per null task: the rates the tables print."""
    rows = []
    for s in results["null"]:
        row = {key: s[key] for key in ("rule", "train", "test", "batch", "ticks", "within_ticks")}
        row["fire_per_tick"] = rate(s["fired"], s["ticks"])
        row["redeploy_per_tick"] = rate(s["redeployed"], s["ticks"])
        row["raw_fire_beside_per_tick"] = rate(s["raw_fired_beside"], s["ticks"])
        row["carried_per_tick"] = rate(s["carried"], s["ticks"])
        row["worse_share_of_redeploys"] = rate(s["worse_redeploys"], s["redeployed"])
        row["worst_true_change"] = s["worst_true_change"]
        row["detect"] = {c: rate(h, n) for c, (n, h) in s["probe"].items()}
        row["detect_within"] = {c: rate(h, n) for c, (n, h) in s["probe_within"].items() if n}
        for event, (n, fired, redeployed) in s["after"].items():
            row[f"after_{event}"] = {"decisions": n, "fire": rate(fired, n), "redeploy": rate(redeployed, n)}
        rows.append(row)
    return rows


def gate_summary(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Per training size and change: truly worse candidates deployed, runs with a truly better one that deployed one."""
    summary = []
    for task in results["gate"]:
        counts = gate_counts([task])
        summary.append({"train": task["train"], "change": task["change"], "runs": task["reps"], **counts})
    return summary


def gate_counts(tasks: list[dict[str, Any]]) -> dict[str, Any]:
    candidates = worse = deployed_worse = better_runs = better_ok = deploying = runs_total = 0
    for task in tasks:
        runs: dict[int, list[dict[str, Any]]] = {}
        for record in task["records"]:
            runs.setdefault(record["run"], []).append(record)
            candidates += 1
            if record["true_difference"] < 0:
                worse += 1
                deployed_worse += record["chosen"]
        for group in runs.values():
            runs_total += 1
            deploying += any(r["chosen"] for r in group)
            if any(r["true_difference"] >= MARGIN for r in group):
                better_runs += 1
                better_ok += any(r["chosen"] and r["true_difference"] >= MARGIN for r in group)
    return {
        "candidates": candidates,
        "worse": worse,
        "worse_deployed": rate(deployed_worse, worse),
        "better_runs": better_runs,
        "better_deployed": rate(better_ok, better_runs),
        "any_deployed": rate(deploying, runs_total),
    }


def gate_invocations(results: dict[str, Any], train: int) -> dict[str, Any]:
    """The gate's figures over every change for one training size."""
    return gate_counts([task for task in results["gate"] if task["train"] == train])


def recovery_summary(results: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {
            "rule": task["rule"],
            "train": task["train"],
            "quiet": task["quiet"],
            "reps": task["reps"],
            "fired": rate(task["fired"], task["reps"]),
            "mean_share": float(np.mean(task["shares"])),
            "reached_90": rate(sum(share >= 0.9 for share in task["shares"]), task["reps"]),
        }
        for task in results["recovery"]
    ]


def find(rows: list[dict[str, Any]], **keys: Any) -> dict[str, Any]:
    return next(row for row in rows if all(row[k] == v for k, v in keys.items()))


def print_tables(
    rows: list[dict[str, Any]],
    gates: list[dict[str, Any]],
    recoveries: list[dict[str, Any]],
    oracle: list[dict[str, Any]],
) -> None:
    batches = "".join(f"{b:>17,}" for b in BATCH_SIZES)
    print(
        "\nFALSE REDEPLOYS on unchanged data, per tick: redeploy% (drift-fire%); fire% = the course's redeploy rate"
        " without a gate"
    )
    print(f"{'train':>5} {'test':>5} {'rule':<14}{batches}")
    for train in TRAIN_SIZES:
        for test in TEST_SIZES:
            for rule in RULES:
                cells = []
                for batch in BATCH_SIZES:
                    row = find(rows, rule=rule, train=train, test=test, batch=batch)
                    cells.append(f"{shown(row['redeploy_per_tick'])} ({shown(row['fire_per_tick']).strip()})")
                print(f"{train:>5} {test:>5} {rule:<14}" + "".join(f"{c:>17}" for c in cells))
    for change in CHANGES:
        print(
            f"\nDETECTION of {change}: share of ticks the first changed batch makes the rule fire"
            " [significant below 100 rows: within the ticks needed to reach 100 rows]"
        )
        print(f"{'train':>5} {'test':>5} {'rule':<14}{batches}")
        for train in TRAIN_SIZES:
            for test in TEST_SIZES:
                for rule in RULES:
                    cells = []
                    for batch in BATCH_SIZES:
                        row = find(rows, rule=rule, train=train, test=test, batch=batch)
                        cell = shown(row["detect"][change])
                        if change in row["detect_within"]:
                            cell = f"{cell} [{shown(row['detect_within'][change]).strip()}]"
                        cells.append(cell)
                    print(f"{train:>5} {test:>5} {rule:<14}" + "".join(f"{c:>17}" for c in cells))
    print(
        "\nLOCK-IN on unchanged data (all batch sizes pooled): the next decision after a deployment (the first one"
        " included) vs after a no-drift decision"
    )
    print(
        f"{'train':>5} {'test':>5} {'rule':<14}{'after deploy: n, fire, redeploy':>38}{'after no drift: n, fire, redeploy':>38}"
    )
    for train in TRAIN_SIZES:
        for test in TEST_SIZES:
            for rule in RULES:
                cells = []
                for event in ("deploy", "no drift"):
                    n, fired, redeployed = lockin_counts(rows, rule, train, test, event)
                    cells.append(f"{n:>7} {shown(rate(fired, n))} {shown(rate(redeployed, n))}")
                print(f"{train:>5} {test:>5} {rule:<14}" + "".join(f"{c:>38}" for c in cells))
    print("\nREDEPLOYS on unchanged data that made the model truly worse (20,000-row sample), all batch sizes pooled")
    for train in TRAIN_SIZES:
        for rule in RULES:
            picked = [r for r in rows if r["rule"] == rule and r["train"] == train]
            total = sum(round(r["redeploy_per_tick"] * r["ticks"]) for r in picked)
            worse = sum(
                round((r["worse_share_of_redeploys"] or 0) * round(r["redeploy_per_tick"] * r["ticks"])) for r in picked
            )
            worst = min(r["worst_true_change"] for r in picked)
            print(
                f"  train {train:>5} {rule:<14} {total:>5} redeploys, truly worse: {shown(rate(worse, total))}"
                f", the worst by {-worst:.4f} F1"
            )
    print(
        f"\nGATE at 1,000 new rows after one quiet tick (candidates all / window / new; truly better = "
        f"+{MARGIN} F1 or more on a 20,000-row sample)"
    )
    print(
        f"{'train':>5} {'change':<10}{'runs':>5}{'candidates':>11}{'truly worse: n, deployed':>28}"
        f"{'runs with a truly better: n, one deployed':>44}{'runs deploying':>16}"
    )
    for gate in gates:
        print(
            f"{gate['train']:>5} {gate['change']:<10}{gate['runs']:>5}{gate['candidates']:>11}"
            f"{gate['worse']:>12} {shown(gate['worse_deployed']):>14}"
            f"{gate['better_runs']:>28} {shown(gate['better_deployed']):>14}{shown(gate['any_deployed']):>16}"
        )
    print(
        "\nRECOVERY after the boundary reverses in a 1,000-row batch: deployed F1 on the new concept after that one"
        " tick / its F1 before the change"
    )
    for rec in recoveries:
        print(
            f"  {rec['rule']:<12} train {rec['train']:>5}, {rec['quiet']} quiet ticks before: fired "
            f"{shown(rec['fired']).strip()}, mean share {rec['mean_share']:.3f}, runs reaching 90% "
            f"{shown(rec['reached_90']).strip()} (n={rec['reps']})"
        )
    for item in oracle:
        print(
            f"\nORACLE bound: a 5%-level test knowing the deployed model's exact null distribution of batch F1 "
            f"detects {item['change']} at {item['batch']} rows (train {item['train']}) {shown(item['power']).strip()}"
        )


def lockin_counts(rows: list[dict[str, Any]], rule: str, train: int, test: int, event: str) -> tuple[int, int, int]:
    picked = [r[f"after_{event}"] for r in rows if r["rule"] == rule and r["train"] == train and r["test"] == test]
    n = sum(p["decisions"] for p in picked)
    fired = sum(round((p["fire"] or 0) * p["decisions"]) for p in picked)
    redeployed = sum(round((p["redeploy"] or 0) * p["decisions"]) for p in picked)
    return n, fired, redeployed


def wilson(hits: int, n: int) -> tuple[float, float]:
    """95% Wilson interval of a rate."""
    if n == 0:
        return 0.0, 1.0
    z, share = 1.96, hits / n
    centre = (share + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(share * (1 - share) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def worst_rate(rows: list[dict[str, Any]], rule: str, train: int, key: str) -> float:
    """The highest rate over the batch and test-file sizes."""
    return max(r[key] for r in rows if r["rule"] == rule and r["train"] == train)


def after_deploy_rate(rows: list[dict[str, Any]], rule: str, train: int) -> float | None:
    """False redeploys at the next decision after a deployment, both test-file sizes pooled."""
    counts = [lockin_counts(rows, rule, train, test, "deploy") for test in TEST_SIZES]
    return rate(sum(c[2] for c in counts), sum(c[0] for c in counts))


def detection(rows: list[dict[str, Any]], rule: str, train: int, change: str, batch: int) -> float:
    """The lower of the two test-file sizes' detection rates."""
    return min(r["detect"][change] for r in rows if r["rule"] == rule and r["train"] == train and r["batch"] == batch)


def size_goals(sizes: list[dict[str, Any]], train: int) -> list[dict[str, Any]]:
    chunks = [task for task in sizes if task["train"] == train]
    out = []
    for batch in SIZE_BATCHES:
        n = sum(chunk["decisions"][batch] for chunk in chunks)
        hits = sum(chunk["fired"][batch] for chunk in chunks)
        low, high = wilson(hits, n)
        out.append(
            goal(
                f"significant fires <= 5% per decision on unchanged data at {batch:,} rows (independent "
                "trials; PASS: the 95% interval reaches 5%)",
                train,
                rate(hits, n),
                low <= 0.05,
                f"n={n}, 95% interval {shown(low).strip()}-{shown(high).strip()}",
            )
        )
    return out


def goal(text: str, train: int, value: float | None, passed: bool, beside: str) -> dict[str, Any]:
    return {"goal": text, "train": train, "value": value, "pass": passed, "course_rules": beside}


DETECTION_GOALS = (
    ("flip20", 100, 0.70),
    ("flip20", 1000, 0.99),
    ("reversed", 100, 0.99),
    ("reversed", 1000, 0.99),
    ("reversed", 10_000, 0.99),
)


def goals(
    rows: list[dict[str, Any]],
    gates: dict[int, dict[str, Any]],
    recoveries: list[dict[str, Any]],
    sizes: list[dict[str, Any]],
) -> list[dict[str, Any]]:
    """Each goal per training size: the default rule's figure and the course rules' beside."""
    default = DriftRule.SIGNIFICANT.value
    course = [r for r in RULES if r != default]
    out = []
    for train in TRAIN_SIZES:
        out += size_goals(sizes, train)
        value = worst_rate(rows, default, train, "redeploy_per_tick")
        beside = ", ".join(f"{r} {shown(worst_rate(rows, r, train, 'redeploy_per_tick')).strip()}" for r in course)
        out.append(
            goal(
                "false redeploys <= 5% per tick, every batch and test-file size (worst cell)",
                train,
                value,
                value <= 0.05,
                beside,
            )
        )
        value = after_deploy_rate(rows, default, train)
        beside = ", ".join(f"{r} {shown(after_deploy_rate(rows, r, train)).strip()}" for r in course)
        out.append(
            goal(
                "no lock-in: false redeploys at the decision after a deployment <= 5%",
                train,
                value,
                value is not None and value <= 0.05,
                beside,
            )
        )
        for change, batch, target in DETECTION_GOALS:
            value = detection(rows, default, train, change, batch)
            beside = ", ".join(f"{r} {shown(detection(rows, r, train, change, batch)).strip()}" for r in course)
            out.append(
                goal(
                    f"{change} detected >= {100 * target:.0f}% at {batch:,} rows (worse test-file case)",
                    train,
                    value,
                    value >= target,
                    beside,
                )
            )
        gate = gates[train]
        out.append(
            goal(
                "truly worse challengers deployed <= 5% (gate, 1,000 rows)",
                train,
                gate["worse_deployed"],
                (gate["worse_deployed"] or 0) <= 0.05,
                f"n={gate['worse']} candidates (one gate for all rules)",
            )
        )
        out.append(
            goal(
                f"truly better (+{MARGIN}) challengers deployed >= 80% (gate, 1,000 rows)",
                train,
                gate["better_deployed"],
                (gate["better_deployed"] or 0) >= 0.8,
                f"n={gate['better_runs']} runs with a truly better candidate",
            )
        )
        value = min(r["mean_share"] for r in recoveries if r["train"] == train and r["rule"] == default)
        beside = ", ".join(
            f"raw {r['mean_share']:.3f} ({r['quiet']} quiet)"
            for r in recoveries
            if r["train"] == train and r["rule"] == DriftRule.RAW.value
        )
        out.append(
            goal(
                "recovery >= 90% within one tick at 1,000 rows (mean share, worse of 0 / 3 quiet ticks)",
                train,
                value,
                value >= 0.9,
                beside,
            )
        )
    return out


def print_goals(table: list[dict[str, Any]]) -> None:
    print("\nGOALS (default rule: significant; the course rules beside)")
    for goal in table:
        value = goal["value"]
        figure = "-" if value is None else f"{100 * value:.1f}%" if value <= 1 else f"{value:.3f}"
        if "recovery" in goal["goal"]:
            figure = f"{value:.3f}"
        print(
            f"  {'PASS' if goal['pass'] else 'MISS'}  train {goal['train']:>5}  {goal['goal']}: {figure}"
            f"   | {goal['course_rules']}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: few runs per cell (figures are rough)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    started = time.perf_counter()
    results = run_all(args.quick, args.workers)
    rows = null_rows(results)
    gates = gate_summary(results)
    gate_totals = {train: gate_invocations(results, train) for train in TRAIN_SIZES}
    recoveries = recovery_summary(results)
    print_tables(rows, gates, recoveries, results["oracle"])
    table = goals(rows, gate_totals, recoveries, results["size"])
    print_goals(table)
    seconds = time.perf_counter() - started
    print(f"\n{'quick' if args.quick else 'full'} run, {args.workers} workers: {seconds:.0f} s")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "quick": args.quick,
                "seconds": seconds,
                "margin": MARGIN,
                "null": rows,
                "gate": gates,
                "gate_totals": gate_totals,
                "recovery": recoveries,
                "oracle": results["oracle"],
                "size": results["size"],
                "goals": table,
                "raw": {"gate": results["gate"], "recovery": results["recovery"]},
            },
            indent=1,
        ),
        encoding="utf-8",
    )
    log.info("wrote %s", args.out)


if __name__ == "__main__":
    main()
