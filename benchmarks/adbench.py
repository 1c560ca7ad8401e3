"""Anomaly detection on the 30 ADBench classical data sets: vaekit's detectors beside PyOD's.

The unsupervised protocol of ../shared/BENCHMARKS.md, for each data set and seed:
  1. load X (as float) and y; above 10,000 rows keep 10,000 drawn without replacement with
     numpy.random.RandomState(seed);
  2. train_test_split(test_size=0.3, shuffle=True, stratify=y, random_state=seed);
  3. MinMaxScaler fitted on the training part, applied to both parts;
  4. fit on the whole training part, anomalies included, labels unused, the same settings everywhere;
  5. score the test part: AUROC, AUPRC (average precision), fit and score seconds (perf_counter).

All detectors run in the same process, one after the other (2 torch threads), so that times are
ratios measured on the same machine at the same time. A detector that raises on a data set is
recorded as failed (NaN) and the run goes on. Raw rows (dataset, seed, detector, auroc, auprc, fit_s,
score_s, cached, error) go to a CSV under benchmarks/results/, written as they come; the markdown
report is printed and, for a full fresh run with defaults (all sets, seeds 1-3, no --params, no
--peer-cache), written to the "Anomaly detection: ADBench" section of docs/benchmarks.md.

    .venv/bin/pip install -e '.[bench]'
    .venv/bin/python benchmarks/adbench.py --detectors AnomalyDetector,IForest,ECOD,AutoEncoder,VAE

Iterating on vaekit: reuse the peers' rows of an earlier run and try settings on a few sets,
    .venv/bin/python benchmarks/adbench.py --detectors AnomalyDetector,IForest,AutoEncoder \\
        --peer-cache benchmarks/results/adbench_peers_full.csv --params 'AnomalyDetector:{"epochs":30}'
"""

from __future__ import annotations

import argparse
import csv
import datetime
import importlib
import inspect
import json
import math
import platform
import shlex
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import sklearn
import torch
from report import DOCS, machine, write_section  # benchmarks/report.py: run as a script
from sklearn.metrics import average_precision_score, roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import MinMaxScaler

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "adbench"
REFERENCE = ROOT.parent / "shared" / "results" / "pyod_adbench_dev30.csv"
RESULTS = ROOT / "benchmarks" / "results"
SECTION = "## Anomaly detection: ADBench"
MAX_ROWS = 10_000
FIELDS = ["dataset", "seed", "detector", "auroc", "auprc", "fit_s", "score_s", "cached", "error"]

VAEKIT = ("AnomalyDetector", "AutoencoderDetector", "VAEDetector", "RobustAutoencoderDetector")
PYOD = {
    "IForest": "pyod.models.iforest.IForest",
    "ECOD": "pyod.models.ecod.ECOD",
    "AutoEncoder": "pyod.models.auto_encoder.AutoEncoder",
    "VAE": "pyod.models.vae.VAE",
    # not required by the issue; in the reference file, handy for sanity checks
    "HBOS": "pyod.models.hbos.HBOS",
    "COPOD": "pyod.models.copod.COPOD",
    "KNN": "pyod.models.knn.KNN",
    "LOF": "pyod.models.lof.LOF",
    "PCA": "pyod.models.pca.PCA",
}
DEFAULT_DETECTORS = "AnomalyDetector,IForest,ECOD,AutoEncoder,VAE"
GOAL_TIME_FRACTION = 1 / 5  # the issue: total fit+score time at most a fifth of PyOD's AutoEncoder


@dataclass
class Row:
    """One (data set, seed, detector) result; NaN metrics and an error message if it failed."""

    dataset: str
    seed: int
    detector: str
    auroc: float = math.nan
    auprc: float = math.nan
    fit_s: float = math.nan
    score_s: float = math.nan
    cached: bool = False
    error: str = ""

    def as_dict(self) -> dict:
        """The CSV row: floats with 6 significant digits, the flag as 0/1."""
        out = {name: getattr(self, name) for name in FIELDS}
        for name in ("auroc", "auprc", "fit_s", "score_s"):
            out[name] = "" if math.isnan(out[name]) else f"{out[name]:.6g}"
        out["cached"] = int(self.cached)
        return out


@dataclass
class Detector:
    """A detector requested on the command line: where it comes from and how to build it."""

    name: str
    library: str  # "vaekit" or "pyod"
    cls: type
    params: dict = field(default_factory=dict)

    def build(self, seed: int):
        """A fresh instance with its defaults, the --params overrides and random_state=seed if accepted.

        PyOD's deep models print a progress bar per epoch by default; verbose=0 silences it (it
        changes nothing else).
        """
        accepted = inspect.signature(self.cls.__init__).parameters
        kwargs = dict(self.params)
        if self.library == "vaekit" or "random_state" in accepted:  # vaekit's contract: always accepted
            kwargs["random_state"] = seed
        if self.library == "pyod" and "verbose" in accepted:
            kwargs["verbose"] = 0
        return self.cls(**kwargs)


# ---------------------------------------------------------------------------------------------------
# Data and protocol


def dataset_sort_key(name: str) -> tuple[int, str]:
    """ADBench's numeric prefix first (2_annthyroid before 11_donors), then the name."""
    prefix = name.split("_", 1)[0]
    return (int(prefix) if prefix.isdigit() else 10**6, name)


def list_datasets(selection: str | None) -> list[str]:
    """The data set names in DATA, or those matching the comma-separated names or substrings.

    A token equal to a name (with or without the numeric prefix) selects that set only; otherwise
    every name containing the token (case-insensitive) is selected.
    """
    names = sorted((p.stem for p in DATA.glob("*.npz")), key=dataset_sort_key)
    if not names:
        sys.exit(f"no .npz files in {DATA}")
    if not selection:
        return names
    chosen: list[str] = []
    for token in (t.strip().lower() for t in selection.split(",") if t.strip()):
        exact = [n for n in names if token in (n.lower(), n.split("_", 1)[-1].lower())]
        found = exact or [n for n in names if token in n.lower()]
        if not found:
            sys.exit(f"--datasets: nothing matches {token!r}; known: {', '.join(names)}")
        chosen += [n for n in found if n not in chosen]
    return sorted(chosen, key=dataset_sort_key)


def load_dataset(name: str) -> tuple[np.ndarray, np.ndarray]:
    """X as float64 and y as int (1 = anomaly) from DATA/<name>.npz."""
    with np.load(DATA / f"{name}.npz", allow_pickle=False) as data:
        return np.asarray(data["X"], dtype=np.float64), np.asarray(data["y"]).astype(int).ravel()


def split(X: np.ndarray, y: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Steps 1-3 of the protocol: subsample, stratified 70/30 split, MinMaxScaler fitted on train.

    Returns the scaled training part, the scaled test part and the test labels.
    """
    if len(X) > MAX_ROWS:
        keep = np.random.RandomState(seed).choice(len(X), MAX_ROWS, replace=False)
        X, y = X[keep], y[keep]
    X_train, X_test, _, y_test = train_test_split(
        X, y, test_size=0.3, shuffle=True, stratify=y, random_state=seed
    )
    scaler = MinMaxScaler().fit(X_train)
    return scaler.transform(X_train), scaler.transform(X_test), y_test


def evaluate(detector: Detector, dataset: str, seed: int, X_train, X_test, y_test) -> Row:
    """Steps 4-5: fit on the training part, score the test part; any exception gives a failed row."""
    row = Row(dataset, seed, detector.name)
    try:
        model = detector.build(seed)
        start = time.perf_counter()
        model.fit(X_train)
        row.fit_s = time.perf_counter() - start
        start = time.perf_counter()
        scores = model.decision_function(X_test)
        row.score_s = time.perf_counter() - start
        scores = np.asarray(scores, dtype=np.float64).ravel()
        if scores.shape != (len(X_test),):
            raise ValueError(f"decision_function returned {scores.shape[0]} scores for {len(X_test)} rows")
        if not np.all(np.isfinite(scores)):
            raise ValueError(f"{int(np.sum(~np.isfinite(scores)))} non-finite scores")
        row.auroc = float(roc_auc_score(y_test, scores))
        row.auprc = float(average_precision_score(y_test, scores))
    except Exception as exc:  # a failure on one data set must not stop the run
        row.auroc = row.auprc = math.nan
        row.error = f"{type(exc).__name__}: {exc}".replace("\n", " ")[:300]
        traceback.print_exc(limit=3, file=sys.stderr)
    return row


def warm_up(detectors: list[Detector]) -> None:
    """Fit and score every detector once on a small random set, untimed.

    One-off costs (lazy imports, numba compilation, torch's first kernels) would otherwise be charged
    to whichever detector runs first on the first data set.
    """
    rng = np.random.RandomState(0)
    X = rng.rand(200, 5)
    for detector in detectors:
        try:
            detector.build(0).fit(X).decision_function(X)
        except Exception as exc:  # it will fail again, and be recorded, in the real runs
            print(f"warm-up of {detector.name} failed: {type(exc).__name__}: {exc}", file=sys.stderr)


# ---------------------------------------------------------------------------------------------------
# Detectors, overrides and the peer cache


def resolve_detectors(names: str, params: list[str]) -> list[Detector]:
    """Detector objects for the comma-separated names; ``params`` are 'Name:{json}' overrides.

    vaekit is imported only if one of its detectors is asked for, so peers alone run without it.
    """
    overrides: dict[str, dict] = {}
    for item in params:
        name, sep, text = item.partition(":")
        if not sep:
            sys.exit(f"--params {item!r}: expected Name:{{json}}")
        if name not in VAEKIT:
            sys.exit(f"--params {name}: overrides are for vaekit detectors only ({', '.join(VAEKIT)})")
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            sys.exit(f"--params {item!r}: {exc}")
        if not isinstance(value, dict):
            sys.exit(f"--params {item!r}: expected a JSON object")
        overrides.setdefault(name, {}).update(value)

    detectors: list[Detector] = []
    for name in (n.strip() for n in names.split(",") if n.strip()):
        if any(d.name == name for d in detectors):
            continue
        if name in VAEKIT:
            cls = getattr(importlib.import_module("vaekit"), name)
            detectors.append(Detector(name, "vaekit", cls, overrides.get(name, {})))
        elif name in PYOD:
            module, _, attr = PYOD[name].rpartition(".")
            detectors.append(Detector(name, "pyod", getattr(importlib.import_module(module), attr)))
        else:
            sys.exit(f"unknown detector {name!r}; vaekit: {', '.join(VAEKIT)}; PyOD: {', '.join(PYOD)}")
    unused = set(overrides) - {d.name for d in detectors}
    if unused:
        sys.exit(f"--params for detectors not in --detectors: {', '.join(sorted(unused))}")
    return detectors


def read_rows(path: Path) -> pd.DataFrame:
    """Raw rows from a CSV written by this script (or the shared reference file, 'pyod:' prefixes dropped)."""
    frame = pd.read_csv(path)
    frame["detector"] = frame["detector"].astype(str).str.removeprefix("pyod:")
    for column, default in (("cached", 0), ("error", "")):
        if column not in frame:
            frame[column] = default
    frame["error"] = frame["error"].fillna("").astype(str)
    return frame


def load_peer_cache(path: Path | None) -> dict[tuple[str, int, str], Row]:
    """Successful rows of PyOD detectors from an earlier raw CSV, keyed by (dataset, seed, detector).

    Failed rows are not reused: those runs are tried again.
    """
    if path is None:
        return {}
    cache = {}
    for rec in read_rows(path).to_dict("records"):
        if rec["detector"] in PYOD and np.isfinite(rec["auroc"]):
            row = Row(
                rec["dataset"],
                int(rec["seed"]),
                rec["detector"],
                float(rec["auroc"]),
                float(rec["auprc"]),
                float(rec["fit_s"]),
                float(rec["score_s"]),
                cached=True,
            )
            cache[(row.dataset, row.seed, row.detector)] = row
    return cache


# ---------------------------------------------------------------------------------------------------
# Report


def fmt(value: float, digits: int = 3) -> str:
    """A number for a table, or 'failed' for NaN."""
    return "failed" if value is None or not np.isfinite(value) else f"{value:.{digits}f}"


def bold(value: float, best: float) -> str:
    """``fmt(value)``, in bold if it is the best of its line or column."""
    return f"**{fmt(value)}**" if np.isfinite(value) and value == best else fmt(value)


def summarize(rows: pd.DataFrame, detectors: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per data set means over seeds (AUROC, AUPRC), and the overall table, one line per detector.

    Mean AUROC / AUPRC: over data sets of the per-data-set means over seeds, failed rows left out.
    Average rank: per data set, detectors ranked by mean AUROC (1 = best, ties share the mean rank,
    a detector that failed on every seed of a set ranks last), averaged over data sets.
    """
    per_set = rows.groupby(["dataset", "detector"])[["auroc", "auprc"]].mean()
    auroc = per_set["auroc"].unstack("detector").reindex(columns=detectors)
    auroc = auroc.reindex(sorted(auroc.index, key=dataset_sort_key))
    auprc = per_set["auprc"].unstack("detector").reindex(index=auroc.index, columns=detectors)
    ranks = auroc.rank(axis=1, ascending=False, method="average", na_option="bottom")
    by_seed = rows.groupby(["detector", "seed"])["auroc"].mean().unstack("seed")

    overall = pd.DataFrame(index=detectors)
    overall["auroc"] = auroc.mean()
    overall["auroc_sd"] = by_seed.std(axis=1, ddof=1).reindex(detectors) if by_seed.shape[1] > 1 else np.nan
    overall["auprc"] = auprc.mean()
    overall["rank"] = ranks.mean()
    grouped = rows.groupby("detector")
    overall["fit_s"] = grouped["fit_s"].sum()
    overall["score_s"] = grouped["score_s"].sum()
    overall["total_s"] = overall["fit_s"] + overall["score_s"]
    overall["failures"] = grouped["auroc"].apply(lambda s: int(s.isna().sum()))
    overall["runs"] = grouped.size()
    overall["cached"] = grouped["cached"].sum()
    return pd.concat({"auroc": auroc, "auprc": auprc}, axis=1), overall


def goals_lines(overall: pd.DataFrame, per_set_auroc: pd.DataFrame) -> list[str]:
    """The issue's goals for AnomalyDetector, measured in this run, if the detectors involved ran."""
    if "AnomalyDetector" not in overall.index:
        return []
    ours = overall.loc["AnomalyDetector"]
    lines = []
    for peer in ("IForest", "AutoEncoder", "VAE"):
        if peer in overall.index:
            diff = ours["auroc"] - overall.loc[peer, "auroc"]
            verdict = "above" if diff > 0 else "not above"
            a, b = per_set_auroc["AnomalyDetector"], per_set_auroc[peer]
            wins, losses = int((a > b).sum()), int((a < b).sum())
            lines.append(
                f"- mean AUROC vs {peer}: {ours['auroc']:.3f} vs {overall.loc[peer, 'auroc']:.3f} "
                f"({diff:+.3f}, {verdict}); higher on {wins}, lower on {losses} of {len(a)} data sets"
            )
    if "AutoEncoder" in overall.index and overall.loc["AutoEncoder", "total_s"] > 0:
        ratio = ours["total_s"] / overall.loc["AutoEncoder", "total_s"]
        verdict = "met" if ratio <= GOAL_TIME_FRACTION else "not met"
        lines.append(
            f"- fit+score time vs PyOD's AutoEncoder: {ours['total_s']:.1f} s vs "
            f"{overall.loc['AutoEncoder', 'total_s']:.1f} s = {ratio:.2f} "
            f"(goal at most {GOAL_TIME_FRACTION:.2f}: {verdict})"
        )
    return lines


def dataset_info(datasets: list[str]) -> dict[str, str]:
    """'rows x columns, % anomalies' of every data set, rows after the subsampling."""
    info = {}
    for name in datasets:
        X, y = load_dataset(name)
        info[name] = f"{min(len(X), MAX_ROWS)} × {X.shape[1]}, {100 * y.mean():.1f}%"
    return info


def render_report(
    rows: pd.DataFrame, detectors: list[Detector], datasets: list[str], seeds: list[int], meta: dict
) -> str:
    """The markdown section: setting, overall table, goals, per-data-set tables, failures."""
    names = [d.name for d in detectors]
    library = {d.name: ("vaekit" if d.library == "vaekit" else "PyOD") for d in detectors}
    per_set, overall = summarize(rows, names)
    lines = [SECTION, ""]
    lines += [
        f"Unsupervised protocol of `../shared/BENCHMARKS.md` on {len(datasets)} ADBench data sets, "
        f"seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))}: above {MAX_ROWS:,} rows a "
        f"random subsample of {MAX_ROWS:,}, "
        "stratified 70/30 split, MinMaxScaler fitted on the training part, detector fitted on the whole "
        "training part (anomalies included, labels unused), test part scored. All detectors in the same "
        "run, one after the other, with their defaults (plus `random_state=seed` where accepted; PyOD's "
        "`verbose=0`).",
        "",
        "| detector | from | mean AUROC | sd over seeds | mean AUPRC | average rank | fit+score s "
        "| fit s | score s | failures |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    best = overall["auroc"].max()
    for name in overall.sort_values("rank").index:
        r = overall.loc[name]
        source = library[name]
        if r["cached"]:
            source += f" (cached {int(r['cached'])}/{int(r['runs'])})"
        if detectors[names.index(name)].params:
            source += " (params: `" + json.dumps(detectors[names.index(name)].params) + "`)"
        sd = "" if not np.isfinite(r["auroc_sd"]) else f"{r['auroc_sd']:.3f}"
        lines.append(
            f"| {name} | {source} | {bold(r['auroc'], best)} | {sd} | {fmt(r['auprc'])} | {r['rank']:.2f} "
            f"| {r['total_s']:.1f} | {r['fit_s']:.1f} | {r['score_s']:.1f} "
            f"| {int(r['failures'])}/{int(r['runs'])} |"
        )
    lines += [
        "",
        "Mean AUROC and AUPRC: over data sets of the mean over seeds (failed runs left out). Sd over "
        "seeds: of the per-seed mean AUROC. Average rank: by mean AUROC per data set among the detectors "
        "of this run (1 = best; failed on a set = last). Seconds: totals over all data sets and seeds.",
    ]
    if overall["failures"].sum():
        ok = rows.pivot_table(index=["dataset", "seed"], columns="detector", values="auroc", aggfunc="first")
        common = ok.reindex(columns=names).dropna()
        if len(common):
            means = ", ".join(f"{name} {common[name].mean():.3f}" for name in names)
            note = f"on the {len(common)} (data set, seed) runs where every detector succeeded: {means}."
        else:
            note = "no (data set, seed) run where every detector succeeded."
        lines += ["", f"With failures the means cover different runs; mean AUROC {note}"]
    goals = goals_lines(overall, per_set["auroc"])
    if goals:
        lines += ["", "Goals of the issue for `AnomalyDetector`, in this run:", "", *goals]
    if overall["cached"].sum():
        lines += [
            "",
            f"**Cached peers**: {int(overall['cached'].sum())} PyOD rows were reused from "
            f"`{meta['peer_cache']}` rather than run again; their times come from that earlier run. "
            "Not a publishable table.",
        ]

    info = dataset_info(datasets)
    for metric, title in (("auroc", "AUROC"), ("auprc", "AUPRC")):
        lines += ["", f"Mean {title} over seeds per data set (best in bold):", ""]
        lines.append("| data set | rows × cols, anomalies | " + " | ".join(names) + " |")
        lines.append("|---|---|" + "---|" * len(names))
        table = per_set[metric]
        for dataset in table.index:
            values = table.loc[dataset]
            best = values.max()
            cells = [bold(v, best) for v in values.to_numpy()]
            lines.append(f"| {dataset} | {info[dataset]} | " + " | ".join(cells) + " |")

    failed = rows[rows["auroc"].isna()]
    lines += ["", f"Failures: {len(failed)}" + (":" if len(failed) else ".")]
    if len(failed):
        lines.append("")
        for rec in failed.sort_values(["detector", "dataset", "seed"]).itertuples():
            lines.append(f"- {rec.detector} on {rec.dataset}, seed {rec.seed}: {rec.error}")
    lines += [
        "",
        f"- machine: {meta['machine']}",
        f"- {meta['versions']}",
        f"- date: {meta['date']}; wall time of the run {meta['wall_s']:.0f} s",
        f"- command: `{meta['command']}`",
        f"- raw rows: `{meta['csv']}`",
        "",
    ]
    return "\n".join(lines)


def compare_reference(rows: pd.DataFrame, detectors: list[Detector]) -> str:
    """Mean AUROC of the PyOD detectors in the shared reference file on the same data sets and seeds.

    Besides this run's mean on the same (data set, seed) pairs, for sanity; the reference has
    AutoEncoder and VAE for seed 1 only.
    """
    ref = read_rows(REFERENCE)
    keys = rows[["dataset", "seed"]].drop_duplicates()
    ref = ref.merge(keys, on=["dataset", "seed"])
    lines = [
        f"Reference ({REFERENCE}) on the same data sets and seeds:",
        "",
        "| PyOD detector | rows in reference | reference mean AUROC | this run, same rows | max abs diff |",
        "|---|---|---|---|---|",
    ]
    ours = {d.name for d in detectors if d.library == "pyod"}
    for name, group in ref.groupby("detector"):
        mine = rows[rows["detector"] == name].merge(group, on=["dataset", "seed"], suffixes=("", "_ref"))
        same = mine["auroc"].mean() if name in ours and len(mine) else math.nan
        diff = (mine["auroc"] - mine["auroc_ref"]).abs().max() if name in ours and len(mine) else math.nan
        lines.append(
            f"| {name} | {len(group)} | {group['auroc'].mean():.4f} | "
            f"{'' if not np.isfinite(same) else f'{same:.4f}'} | "
            f"{'' if not np.isfinite(diff) else f'{diff:.4f}'} |"
        )
    return "\n".join(lines)


def versions(detectors: list[Detector]) -> str:
    """Library versions, PyOD's and vaekit's only if imported."""
    parts = [
        f"Python {platform.python_version()}",
        f"torch {torch.__version__}",
        f"scikit-learn {sklearn.__version__}",
        f"numpy {np.__version__}",
    ]
    if any(d.library == "pyod" for d in detectors):
        parts.append(f"pyod {importlib.import_module('pyod').__version__}")
    if any(d.library == "vaekit" for d in detectors):
        parts.append(f"vaekit {importlib.import_module('vaekit').__version__}")
    return ", ".join(parts)


# ---------------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--detectors",
        default=DEFAULT_DETECTORS,
        help=f"comma-separated; vaekit: {', '.join(VAEKIT)}; PyOD: {', '.join(PYOD)} "
        f"(default: {DEFAULT_DETECTORS})",
    )
    parser.add_argument(
        "--params",
        action="append",
        default=[],
        metavar="NAME:JSON",
        help="settings for a vaekit detector, e.g. 'AnomalyDetector:{\"epochs\":30}' "
        "(repeatable; experiments only: the published table uses defaults)",
    )
    parser.add_argument("--seeds", default="1,2,3", help="comma-separated (default 1,2,3)")
    parser.add_argument("--quick", action="store_true", help="seed 1 only")
    parser.add_argument(
        "--datasets",
        default=None,
        help="comma-separated names or substrings (default: all in ../shared/data/adbench)",
    )
    parser.add_argument(
        "--peer-cache",
        type=Path,
        default=None,
        metavar="CSV",
        help="reuse the PyOD rows of an earlier raw CSV (same data set, seed, detector)",
    )
    parser.add_argument(
        "--out", type=Path, default=None, help="raw CSV (default benchmarks/results/adbench_<date>.csv)"
    )
    parser.add_argument(
        "--docs",
        choices=["auto", "always", "never"],
        default="auto",
        help="write the report into docs/benchmarks.md: auto = only for a full fresh run "
        "(all data sets, seeds 1,2,3, no --params, no --peer-cache)",
    )
    parser.add_argument(
        "--compare-reference",
        action="store_true",
        help=f"also print the PyOD detectors' mean AUROC from {REFERENCE.name}",
    )
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    args = parser.parse_args(argv)
    args.seeds = [1] if args.quick else [int(s) for s in args.seeds.split(",") if s.strip()]
    return args


def main(argv: list[str] | None = None) -> None:
    """Run every detector on every data set and seed, write the CSV, print and file the report."""
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    detectors = resolve_detectors(args.detectors, args.params)
    datasets = list_datasets(args.datasets)
    cache = load_peer_cache(args.peer_cache)
    today = datetime.date.today().isoformat()
    # quick runs (some sets or seeds, --params, cached peers) must not overwrite a full run's rows
    planned_full = (
        len(datasets) == len(list_datasets(None)) and args.seeds == [1, 2, 3] and not args.params
    ) and not args.peer_cache
    out = args.out or RESULTS / f"adbench_{today}{'' if planned_full else '_partial'}.csv"
    out.parent.mkdir(parents=True, exist_ok=True)
    command = shlex.join(["python", "benchmarks/adbench.py", *(argv if argv is not None else sys.argv[1:])])
    print(
        f"{len(datasets)} data sets × seeds {args.seeds} × {[d.name for d in detectors]}; "
        f"{torch.get_num_threads()} torch threads; rows to {out}",
        flush=True,
    )

    runs = {(dataset, seed) for dataset in datasets for seed in args.seeds}
    warm_up([d for d in detectors if d.library == "vaekit" or any((*r, d.name) not in cache for r in runs)])
    rows: list[Row] = []
    wall = time.perf_counter()
    with out.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, FIELDS)
        writer.writeheader()
        for seed in args.seeds:  # seed by seed: an interrupted run still has whole seeds
            for dataset in datasets:
                X_train, X_test, y_test = split(*load_dataset(dataset), seed)
                for detector in detectors:
                    row = cache.get((dataset, seed, detector.name)) if detector.library == "pyod" else None
                    if row is None:
                        row = evaluate(detector, dataset, seed, X_train, X_test, y_test)
                    rows.append(row)
                    writer.writerow(row.as_dict())
                    handle.flush()
                    status = "cached" if row.cached else ("FAILED " + row.error if row.error else "")
                    print(
                        f"{dataset:>16} seed {seed} {detector.name:>26}: AUROC {fmt(row.auroc)} "
                        f"AUPRC {fmt(row.auprc)} fit {row.fit_s:7.2f} s score {row.score_s:6.2f} s "
                        f"{status}",
                        flush=True,
                    )
    wall = time.perf_counter() - wall

    frame = pd.DataFrame([r.as_dict() for r in rows]).replace("", np.nan)
    frame = frame.astype({"auroc": float, "auprc": float, "fit_s": float, "score_s": float, "cached": int})
    meta = {
        "machine": machine(args.threads),
        "versions": versions(detectors),
        "date": datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        "wall_s": wall,
        "command": command,
        "csv": out.resolve().relative_to(ROOT) if out.resolve().is_relative_to(ROOT) else out,
        "peer_cache": args.peer_cache,
    }
    report = render_report(frame, detectors, datasets, args.seeds, meta)
    print("\n" + report)
    if args.compare_reference:
        print(compare_reference(frame, detectors) + "\n")

    full = (
        len(datasets) == len(list_datasets(None))
        and args.seeds == [1, 2, 3]
        and not args.params
        and not frame["cached"].any()
    )
    if args.docs == "always" or (args.docs == "auto" and full):
        write_section(SECTION, report)
        print(f"written to {DOCS}")
    else:
        print(
            f"not written to {DOCS} ({'--docs never' if args.docs == 'never' else 'not a full fresh run'}; "
            "--docs always to force)"
        )
    print(f"raw rows in {out}; done in {wall / 60:.1f} min")


if __name__ == "__main__":
    main()
