"""Training on a table file too large to hold in memory: one pass for the statistics, then
epochs that read the file again in windows.

The first pass reads the file in batches and gathers what ``fit`` needs before training: the
number of rows, each column's mean and standard deviation (merged batch by batch), minimum and
maximum, a uniform sample of rows for the quartiles of robust scaling, and the validation rows
(which stay in memory, at most ``VALIDATION_ROWS`` of them). Every epoch then reads the file
again, leaves out the validation rows, and shuffles a window of training rows at a time (as many
as a quarter of the memory budget holds) into minibatches. A window that holds every training row gives the
order of the in-memory path exactly, so that a file that fits trains to the same model.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from vaekit.io import as_matrix
from vaekit.preprocessing import Scaler

WINDOW_BYTES_PER_VALUE = 16  # a window of float32 rows takes a quarter of the budget
VALIDATION_ROWS = 50_000  # held-out rows at most: enough to pick the best epoch, and memory stays flat
SAMPLE_ROWS = 200_000  # rows kept for the quartiles of robust scaling
MIN_ROWS_FOR_VALIDATION = 20


def window_rows(path: str | os.PathLike, memory_budget: int) -> int:
    """Training rows shuffled together when the table in ``path`` is streamed under ``memory_budget``."""
    from vaekit.scoring import _shape

    _, columns = _shape(Path(path))
    return max(memory_budget // (WINDOW_BYTES_PER_VALUE * max(columns, 1)), 1)


def validation_count(n_rows: int, fraction: float) -> int:
    """Rows held out for validation: ``round(fraction * n_rows)``, at most ``VALIDATION_ROWS``;
    none in a table of fewer than 20 rows."""
    if n_rows < MIN_ROWS_FOR_VALIDATION:
        return 0
    return min(round(fraction * n_rows), VALIDATION_ROWS)


def validation_keys(seed: int) -> np.random.Generator:
    """The generator of the rows' random keys, drawn in row order: the validation rows are the
    rows of the smallest keys (so a file read front to back picks the rows an array does)."""
    return np.random.default_rng(seed)


def validation_rows(n_rows: int, fraction: float, seed: int) -> np.ndarray:
    """The sorted places of the validation rows of a table of ``n_rows`` rows held in memory."""
    keys = validation_keys(seed).random(n_rows)
    return np.sort(np.argsort(keys, kind="stable")[: validation_count(n_rows, fraction)])


@dataclass
class TableSummary:
    """What one pass over a table file learnt: its size, its columns' statistics, a sample of
    its rows (for quartiles) and its validation rows (raw values, in file order)."""

    n_rows: int = 0
    columns: list[str] = field(default_factory=list)
    named: bool = True
    mean: np.ndarray | None = None
    m2: np.ndarray | None = None  # sums of squared deviations from the mean
    minimum: np.ndarray | None = None
    maximum: np.ndarray | None = None
    total: float = 0.0
    sample: np.ndarray | None = None
    validation: np.ndarray | None = None
    validation_places: np.ndarray | None = None

    @property
    def low(self) -> float:
        return float(self.minimum.min())

    @property
    def high(self) -> float:
        return float(self.maximum.max())

    @property
    def std(self) -> np.ndarray:
        return np.sqrt(self.m2 / max(self.n_rows, 1))

    def add(self, values: np.ndarray) -> None:
        """Merge a batch of rows (float64) into the statistics (Chan et al.'s pairwise update)."""
        n_b = len(values)
        if n_b == 0:
            return
        mean_b = values.mean(axis=0)
        m2_b = ((values - mean_b) ** 2).sum(axis=0)
        if self.mean is None:
            self.mean, self.m2 = mean_b, m2_b
            self.minimum, self.maximum = values.min(axis=0), values.max(axis=0)
        else:
            n = self.n_rows
            delta = mean_b - self.mean
            self.mean = self.mean + delta * n_b / (n + n_b)
            self.m2 = self.m2 + m2_b + delta**2 * n * n_b / (n + n_b)
            self.minimum = np.minimum(self.minimum, values.min(axis=0))
            self.maximum = np.maximum(self.maximum, values.max(axis=0))
        self.n_rows += n_b
        self.total += float(values.sum())

    def scaler(self, method: str) -> Scaler:
        """The :class:`Scaler` ``method`` would fit on the whole file (robust: on the sample)."""
        if method == "standard":
            center, scale = self.mean, self.std
        elif method == "robust":
            q1, center, q3 = np.percentile(self.sample, [25, 50, 75], axis=0)
            scale = np.where(q3 - q1 > 1e-12, (q3 - q1) / 1.349, self.std)
        elif method == "minmax":
            center, scale = self.minimum, self.maximum - self.minimum
        else:
            center, scale = np.zeros(len(self.columns)), np.ones(len(self.columns))
        scale = np.where(scale > 1e-12, scale, 1.0)
        return Scaler(method, list(self.columns), self.named, center.tolist(), scale.tolist())


def summarize_file(
    path: str | os.PathLike,
    rows: int | None,
    fraction: float,
    seed: int,
    sample_rows: int = SAMPLE_ROWS,
    verbose: int = 0,
) -> TableSummary:
    """One pass over the table in ``path``, read ``rows`` rows at a time (a progress bar of
    the rows read with ``verbose``)."""
    from tqdm.auto import tqdm

    from vaekit.scoring import _shape, iter_table

    summary = TableSummary()
    sample_keys_rng, val_keys_rng = np.random.default_rng([seed, 1]), validation_keys(seed)
    sample = _Smallest(sample_rows)  # a uniform sample: the rows of the smallest random keys
    candidates = _Smallest(VALIDATION_ROWS if fraction > 0 else 0)
    source = str(path)
    bar = tqdm(total=_shape(Path(path))[0], disable=not verbose, unit="row", desc="statistics", leave=False)
    for frame in iter_table(path, rows):
        bar.update(len(frame))
        if summary.mean is None:
            summary.named = isinstance(frame, pd.DataFrame)
            summary.columns = [str(c) for c in frame.columns]
        matrix = as_matrix(frame, source)
        values = matrix.astype(np.float64)
        places = np.arange(summary.n_rows, summary.n_rows + len(values))
        summary.add(values)
        sample.add(sample_keys_rng.random(len(values)), places, values)
        candidates.add(val_keys_rng.random(len(values)), places, matrix)
    bar.close()
    summary.sample = sample.rows()[2]
    n_val = validation_count(summary.n_rows, fraction)
    keys, places, values = candidates.rows()
    chosen = np.sort(np.argsort(keys, kind="stable")[:n_val])
    summary.validation_places = places[chosen]
    summary.validation = values[chosen] if len(values) else np.empty((0, len(summary.columns)), np.float32)
    return summary


class _Smallest:
    """The ``k`` rows of the smallest keys seen so far, in the order they came. Batches are
    gathered and cut back to ``k`` rows only when twice that many are held: each row is copied
    a few times, not once per batch."""

    def __init__(self, k: int):
        self.k = k
        self._parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self._held = 0
        self._bound = np.inf  # k keys below it are held: no key at or above it can be kept

    def entering(self, keys: np.ndarray) -> np.ndarray:
        """The indices of the ``keys`` that may still be among the k smallest: the rows worth
        making for :meth:`add`, the others never kept."""
        return np.flatnonzero(keys < self._bound)

    def add(self, keys: np.ndarray, places: np.ndarray, values: np.ndarray) -> None:
        if self.k == 0:
            return
        self._parts.append((keys, places, values))
        self._held += len(keys)
        if self._held > 2 * self.k:
            self._cut()

    def _cut(self) -> None:
        keys, places, values = (np.concatenate(part) for part in zip(*self._parts, strict=True))
        if len(keys) > self.k:
            keep = np.sort(np.argpartition(keys, self.k)[: self.k])
            keys, places, values = keys[keep], places[keep], values[keep]
        self._parts, self._held = [(keys, places, values)], len(keys)
        if len(keys) == self.k:
            self._bound = keys.max()

    def rows(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(keys, places, values) of the rows kept."""
        if not self._parts:
            return np.empty(0), np.empty(0, dtype=np.int64), np.empty((0, 0))
        self._cut()
        return self._parts[0]


class FileRows:
    """The training rows of a table file, scaled, as minibatches that read the file once per epoch.

    ``rows``: rows per read; ``window``: training rows shuffled together (window k of an epoch
    is permuted by a generator seeded ``seed + k * 1_000_003``). Minibatches run across the
    windows' borders, so that every batch but the epoch's last is full.
    """

    def __init__(
        self, path: str | os.PathLike, rows: int, window: int, scaler: Scaler, held_out: np.ndarray, n: int
    ):
        self.path, self.rows, self.window = Path(path), int(rows), int(window)
        self.scaler, self.held_out, self.n_rows = scaler, np.asarray(held_out, dtype=np.int64), int(n)

    def __len__(self) -> int:
        return self.n_rows

    def batches(self, seed: int, batch_size: int) -> Iterator[torch.Tensor]:
        from vaekit.scoring import iter_table

        # one buffer for the window, filled in place; the batches are gathered from it
        window = torch.empty(max(min(self.window, self.n_rows), 1), self.scaler.n_features)
        filled, k, start = 0, 0, 0
        pending = torch.empty(0, self.scaler.n_features)
        for frame in iter_table(self.path, self.rows):
            x = torch.from_numpy(self.scaler.transform(frame, str(self.path)))
            lo, hi = np.searchsorted(self.held_out, [start, start + len(x)])
            keep = np.ones(len(x), dtype=bool)
            keep[self.held_out[lo:hi] - start] = False
            start += len(x)
            x = x[torch.from_numpy(keep)]
            while len(x):
                take = min(len(x), len(window) - filled)
                window[filled : filled + take] = x[:take]
                filled, x = filled + take, x[take:]
                if filled == len(window):
                    pending = yield from self._shuffled(pending, window, seed + k * 1_000_003, batch_size)
                    filled, k = 0, k + 1
        if filled:
            pending = yield from self._shuffled(pending, window[:filled], seed + k * 1_000_003, batch_size)
        if len(pending):
            yield pending

    @staticmethod
    def _shuffled(pending: torch.Tensor, window: torch.Tensor, seed: int, batch_size: int):
        """The minibatches of ``pending`` followed by the window's rows in a random order
        (each gathered, not a view of the window); returns the rows left over."""
        perm = torch.randperm(len(window), generator=torch.Generator().manual_seed(seed))
        start = 0
        if len(pending):
            start = min(batch_size - len(pending), len(window))
            pending = torch.cat([pending, window[perm[:start]]])
            if len(pending) < batch_size:
                return pending
            yield pending
        while start + batch_size <= len(window):
            yield window[perm[start : start + batch_size]]
            start += batch_size
        return window[perm[start:]]
