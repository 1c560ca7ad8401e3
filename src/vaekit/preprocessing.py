"""Preprocessing stored with a model: the columns it was trained on and how each was scaled.

The state is plain JSON (no pickle) and is checked against the data at every later use, so a
missing or extra column is an error, never a silently wrong result.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from vaekit.errors import DataError, ModelFileError
from vaekit.io import as_matrix

Scaling = Literal["standard", "robust", "minmax", "none"]
SCALINGS = ("standard", "robust", "minmax", "none")


@dataclass
class Scaler:
    """Per-column affine scaling ``x' = (x - center) / scale`` with a column schema.

    ``standard`` centres on the mean and divides by the standard deviation; ``robust`` centres on
    the median and divides by the interquartile range / 1.349 (the standard deviation of a normal
    column, but outliers cannot set it; a column whose quartiles coincide falls back to its
    standard deviation); ``minmax`` maps the training range onto [0, 1]; ``none`` keeps the
    values. A constant column gets scale 1.
    """

    method: Scaling = "standard"
    columns: list[str] = field(default_factory=list)
    named: bool = False
    center: list[float] = field(default_factory=list)
    scale: list[float] = field(default_factory=list)

    def fit(self, data: pd.DataFrame | np.ndarray, source: str = "the data") -> Scaler:
        matrix = as_matrix(data, source)
        self.named = isinstance(data, pd.DataFrame)
        self.columns = (
            [str(c) for c in data.columns] if self.named else [str(j) for j in range(matrix.shape[1])]
        )
        values = matrix.astype(np.float64)
        if self.method == "standard":
            center, scale = values.mean(axis=0), values.std(axis=0)
        elif self.method == "robust":
            q1, center, q3 = np.percentile(values, [25, 50, 75], axis=0)
            scale = np.where(q3 - q1 > 1e-12, (q3 - q1) / 1.349, values.std(axis=0))
        elif self.method == "minmax":
            center, scale = values.min(axis=0), values.max(axis=0) - values.min(axis=0)
        elif self.method == "none":
            center, scale = np.zeros(values.shape[1]), np.ones(values.shape[1])
        else:
            raise DataError(f"unknown scaling {self.method!r}; use one of {list(SCALINGS)}")
        scale = np.where(scale > 1e-12, scale, 1.0)
        self.center, self.scale = center.tolist(), scale.tolist()
        return self

    @property
    def n_features(self) -> int:
        return len(self.columns)

    def select(self, data: pd.DataFrame | np.ndarray, source: str = "the data") -> np.ndarray:
        """Check ``data`` against the schema and return its matrix in the training column order."""
        if isinstance(data, pd.DataFrame) and self.named:
            present = [str(c) for c in data.columns]
            missing = [c for c in self.columns if c not in present]
            extra = [c for c in present if c not in self.columns]
            if missing:
                raise DataError(
                    f"{source}: the model was trained with column(s) {missing} that are missing "
                    f"here; give data with all of its {self.n_features} columns"
                )
            if extra:
                raise DataError(
                    f"{source}: column(s) {extra} were not seen in training; drop them, the "
                    f"model takes exactly {self.columns}"
                )
            data = data.rename(columns=str)[self.columns]
        matrix = as_matrix(data, source)
        if matrix.shape[1] != self.n_features:
            raise DataError(
                f"{source}: has {matrix.shape[1]} column(s) but the model was trained on "
                f"{self.n_features}; give data with the same columns as in training"
            )
        return matrix

    def transform(self, data: pd.DataFrame | np.ndarray, source: str = "the data") -> np.ndarray:
        matrix = self.select(data, source)
        center = np.asarray(self.center, dtype=np.float32)
        scale = np.asarray(self.scale, dtype=np.float32)
        return (matrix - center) / scale

    def inverse_transform(self, matrix: np.ndarray) -> np.ndarray:
        center = np.asarray(self.center, dtype=np.float32)
        scale = np.asarray(self.scale, dtype=np.float32)
        return matrix * scale + center

    def log_det_jacobian(self) -> float:
        """``sum log |dx'/dx|``: added to a density of the scaled data gives one of the raw data."""
        return -float(np.sum(np.log(self.scale)))

    def as_frame(self, matrix: np.ndarray) -> pd.DataFrame | np.ndarray:
        """Give results the shape of the training data: a DataFrame if it was one."""
        if self.named:
            return pd.DataFrame(matrix, columns=self.columns)
        return matrix

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, state: dict, source: object = "the preprocessing state") -> Scaler:
        """The inverse of :meth:`to_dict`, checking every field (``source`` names the file)."""

        def corrupt(what: str) -> ModelFileError:
            return ModelFileError(f"{source}: {what}; retrain or restore the model")

        if not isinstance(state, dict):
            raise corrupt(f"holds a {type(state).__name__}, not the preprocessing state")
        expected = {"method", "columns", "named", "center", "scale"}
        if set(state) != expected:
            missing, unknown = sorted(expected - set(state)), sorted(set(state) - expected)
            raise corrupt(f"corrupt preprocessing state (missing fields {missing}, unknown fields {unknown})")
        if state["method"] not in SCALINGS:
            raise corrupt(f"unknown scaling {state['method']!r}")
        columns, center, scale = state["columns"], state["center"], state["scale"]
        lists = all(isinstance(v, list) for v in (columns, center, scale))
        if not lists or not columns or not len(columns) == len(center) == len(scale):
            raise corrupt("the columns, centers and scales are not lists of one length")
        try:
            center_, scale_ = np.asarray(center, dtype=np.float64), np.asarray(scale, dtype=np.float64)
        except (TypeError, ValueError):
            raise corrupt("the centers and scales are not numbers") from None
        if not (np.isfinite(center_).all() and np.isfinite(scale_).all() and (scale_ > 0).all()):
            raise corrupt("the centers and scales are not finite numbers with scales > 0")
        return cls(
            method=state["method"],
            columns=[str(c) for c in columns],
            named=bool(state["named"]),
            center=[float(c) for c in center],
            scale=[float(c) for c in scale],
        )
