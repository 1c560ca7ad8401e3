"""Scoring a table too large for one machine with Dask (an optional extra: pip install 'vaekit[dask]').

Each partition of a ``dask.dataframe`` is scored where it lives, by a model that each worker
process loads once (a per-process cache keyed by the model folder and its files' times), so
that a cluster scores a table no machine could hold. Scores match the single-process path.

    import dask.dataframe as dd
    from distributed import Client
    from vaekit.cluster import score_dask

    client = Client("tcp://scheduler:8786")              # or LocalCluster() for one machine
    table = dd.read_parquet("s3://bucket/table/*.parquet")
    scores = score_dask(table, "/shared/models/detector")  # lazy: one task per partition
    scores.to_parquet("s3://bucket/scores/")              # computed and written by the workers

The model folder must be readable by every worker (a shared file system, or copied to the same
path on each machine).
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np
import pandas as pd

from vaekit.errors import ParameterError
from vaekit.scoring import top_columns


def _stamp(path: Path) -> tuple:
    """Changes when the model files do: a worker then loads the new model, not its cached one."""
    return tuple(sorted((p.name, p.stat().st_mtime_ns, p.stat().st_size) for p in path.iterdir()))


@functools.lru_cache(maxsize=4)
def _load(path: str, stamp: tuple):
    from vaekit.detectors import BaseDetector, wrap_model
    from vaekit.persistence import load

    model = load(path)
    detector = model if isinstance(model, BaseDetector) else wrap_model(model)
    scaler = model.scaler if isinstance(model, BaseDetector) else model.scaler_
    return detector, scaler


def loads_so_far() -> int:
    """How many times this process has loaded a model for :func:`score_dask` (for checks)."""
    return _load.cache_info().misses


def score_frame(
    frame: pd.DataFrame, model_path: str, stamp: tuple, threshold: float | None, top: int
) -> pd.DataFrame:
    """One partition's scores, labels and the flagged rows' top columns
    (:func:`vaekit.scoring.top_columns`), indexed like the partition."""
    detector, scaler = _load(model_path, stamp)
    rows = scaler.select(frame, f"{model_path}: a partition")
    scores = detector._scores(detector._rows(rows))
    cut = detector.threshold_ if threshold is None else threshold
    if not hasattr(detector, "threshold_"):  # this process's own wrapper around a VAE or an AE
        detector.threshold_ = cut
    out = pd.DataFrame({"score": scores, "label": (scores > cut).astype(np.int64)}, index=frame.index)
    if top:
        columns = top_columns(detector, rows, out["label"].to_numpy(), top)
        out = out.join(columns.set_index(frame.index))
    return out


def score_dask(table, model_path: str | os.PathLike, *, threshold: float | None = None, top: int = 3):
    """Score a ``dask.dataframe.DataFrame`` with the saved model at ``model_path``: a lazy dask
    DataFrame with ``score``, ``label`` and the ``top`` contributing columns of the flagged rows,
    partitioned and indexed like ``table``. A detector labels rows at its own threshold unless
    ``threshold`` is given; a plain VAE or autoencoder needs ``threshold``.
    """
    path = Path(model_path).resolve()
    stamp = _stamp(path)
    detector, _ = _load(str(path), stamp)  # here first: a bad folder fails now, with its name
    if threshold is None and not hasattr(detector, "threshold_"):
        raise ParameterError(
            f"{model_path}: a VAE or an autoencoder has no threshold of its own; give threshold= "
            "(e.g. from its scores on data you trust), or train a detector (vaekit train --model auto)"
        )
    top = min(top, len(detector.feature_names))
    meta = pd.DataFrame({"score": pd.Series(dtype=np.float64), "label": pd.Series(dtype=np.int64)})
    for j in range(top):
        meta[f"top{j + 1}"] = pd.Series(dtype="string")
        meta[f"top{j + 1}_share"] = pd.Series(dtype=np.float64)
    return table.map_partitions(score_frame, str(path), stamp, threshold, top, meta=meta)
