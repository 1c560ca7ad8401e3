"""AnomalyDetector on data sets outside the ADBench folder, beside PyOD's detectors.

Its defaults were chosen on the 30 ADBench sets; this checks that they hold up elsewhere. Tasks
from scikit-learn's bundled sets, each class in turn: the rows of that class (at most 8% of the
other rows, drawn with the seed) are the anomalies among all the rows of the others;
MinMaxScaler on the whole set; fit and score on it (labels unused); AUROC, mean over seeds 1-3.
PyOD's detectors with their defaults, as in the ADBench run. "wins": tasks on which
AnomalyDetector's AUROC is above the detector's.

    .venv/bin/python benchmarks/heldout.py
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


def tasks():
    sets = {"breast_cancer": load_breast_cancer, "digits": load_digits, "wine": load_wine, "iris": load_iris}
    for name, load in sets.items():
        data = load()
        for label in np.unique(data.target):
            yield f"{name}: {data.target_names[label]}", data.data, data.target == label


def main() -> None:
    torch.set_num_threads(2)
    lines, means = [], {name: [] for name in DETECTORS}
    for task, X, anomalous in tasks():
        aurocs = {name: [] for name in DETECTORS}
        for seed in (1, 2, 3):
            rng = np.random.RandomState(seed)
            normal, other = np.flatnonzero(~anomalous), np.flatnonzero(anomalous)
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
    overall = " | ".join(f"**{np.mean(means[name]):.3f}**" for name in DETECTORS)
    ours = np.array(means["AnomalyDetector"])
    wins = " | ".join(
        "" if name == "AnomalyDetector" else f"{int(np.sum(ours > np.array(means[name])))} of {len(ours)}"
        for name in DETECTORS
    )
    date = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    text = f"""{SECTION}

{__doc__.split(chr(10) + chr(10))[1].strip()}

| task | rows (normal + anomalous) | {" | ".join(DETECTORS)} |
|---|---|{"---|" * len(DETECTORS)}
{chr(10).join(lines)}
| mean | | {overall} |
| AnomalyDetector wins | | {wins} |

{machine(os.cpu_count() or 1)}; {date}. Command: `python benchmarks/heldout.py`
"""
    print(text)
    write_section(SECTION, text)


if __name__ == "__main__":
    started = time.perf_counter()
    main()
    print(f"done in {time.perf_counter() - started:.0f} s")
