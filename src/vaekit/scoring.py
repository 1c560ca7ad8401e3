"""Scoring a table file of any size: read it in record batches, score each batch, and write the
scores as they are produced, so that memory stays flat however long the file is.

A file whose data would fit in ``memory_budget`` is one batch (the in-memory path); a larger one
is read ``batch_rows`` rows at a time: CSV with pandas' chunked reader, Parquet with pyarrow's
record batches, NPY memory-mapped. The output is CSV or Parquet, chosen by its extension, written
to a temporary file and renamed when complete. Every row's score depends on that row alone, so
the batch size does not change any score.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from vaekit.errors import DataError, ParameterError
from vaekit.io import (
    _suffix,
    atomic_path,
    check_output_path,
    csv_options,
    csv_separator,
    errors_naming,
    read_table,
    uncompressed_size,
)

DEFAULT_MEMORY_BUDGET = 1 << 30  # bytes: 1 GiB
STREAMED_SUFFIXES = (".csv", ".parquet", ".pq", ".npy")  # read in batches; other files whole
# Working memory per value of a row while it is scored (its text, the float copies, the
# members' activations and the counterfactual passes behind the explanations), in bytes.
BYTES_PER_VALUE = 512
_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def parse_size(text: str | int) -> int:
    """``"512M"``, ``"2G"``, ``"1.5GB"`` or a number of bytes."""
    if isinstance(text, int):
        return text
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([KMGT]?)(i?B)?\s*", str(text), re.I)
    if not match or float(match.group(1)) <= 0:
        raise ParameterError(f"memory budget {text!r}: give a size such as 512M, 2G or a number of bytes")
    return int(float(match.group(1)) * _UNITS[match.group(2).upper()])


def _shape(path: Path) -> tuple[int | None, int]:
    """(rows if cheap to know, columns) of a table file, from its metadata or its first lines."""
    suffix = _suffix(path)
    if suffix in (".parquet", ".pq"):
        import pyarrow.parquet as pq

        meta = pq.ParquetFile(path).metadata
        return meta.num_rows, meta.num_columns
    if suffix == ".npy":
        array = np.load(path, mmap_mode="r", allow_pickle=False)
        return array.shape[0], int(np.prod(array.shape[1:], dtype=np.int64)) or 1
    if suffix == ".csv":
        head = pd.read_csv(path, nrows=0, **csv_options(path))  # the header: the records may hold anything
        return None, head.shape[1]
    frame = read_table(path)
    return len(frame), frame.shape[1]


def batch_rows(path: str | os.PathLike, memory_budget: int = DEFAULT_MEMORY_BUDGET) -> int | None:
    """Rows per batch for ``path`` under ``memory_budget``; None when the whole file fits."""
    path = Path(path)
    rows, columns = _shape(path)
    per_row = BYTES_PER_VALUE * max(columns, 1)
    if rows is None:  # CSV: its size (decompressed), a value's text about as long as its float copy
        rows = max(uncompressed_size(path) // (8 * max(columns, 1)), 1)
    if rows * per_row <= memory_budget:
        return None
    return max(memory_budget // per_row, 1)


def iter_table(path: str | os.PathLike, rows: int | None) -> Iterator[pd.DataFrame]:
    """The table in ``path`` as DataFrames of at most ``rows`` rows (all at once for None), each
    indexed by its rows' places in the file (0-based), so that errors name the file's rows."""
    path = Path(path)
    suffix = _suffix(path)
    if rows is None or suffix not in STREAMED_SUFFIXES:
        yield read_table(path)
        return
    if path.stat().st_size == 0:
        raise DataError(f"{path}: the file is empty; give a file with a header and rows of data")
    if suffix == ".csv":
        # chunks keep counting the index
        with pd.read_csv(path, chunksize=rows, **csv_options(path)) as reader:
            yield from reader
    elif suffix == ".npy":
        array = np.load(path, mmap_mode="r", allow_pickle=False)
        if array.ndim != 2:
            yield read_table(path)
            return
        names = [f"x{j}" for j in range(array.shape[1])]
        for start in range(0, len(array), rows):
            part = np.asarray(array[start : start + rows])
            yield pd.DataFrame(part, columns=names, index=pd.RangeIndex(start, start + len(part)))
    else:
        import pyarrow.parquet as pq

        start = 0
        # pre-buffering keeps what it has read: memory would grow with the file
        reader = pq.ParquetFile(path, pre_buffer=False, buffer_size=1 << 22)
        for batch in reader.iter_batches(batch_size=rows):
            frame = batch.to_pandas()
            frame.index = pd.RangeIndex(start, start + len(frame))
            start += len(frame)
            yield frame


def sample_table(
    path: str | os.PathLike,
    n: int,
    rows: int | None,
    seed: int = 0,
    each: Callable[[pd.DataFrame], None] | None = None,
) -> pd.DataFrame:
    """``n`` rows drawn uniformly without replacement (every row when the file has no more), in
    file order and indexed by their places in the file, read in batches of ``rows`` (a CSV file
    is read twice: once to count its rows). ``each(batch)``, if given, sees every batch read
    for the sample, in file order: other work done in the same pass."""
    total, _ = _shape(Path(path))
    if total is None:
        total = sum(len(frame) for frame in iter_table(path, rows))
    picks = None if n >= total else np.sort(np.random.default_rng(seed).choice(total, n, replace=False))
    parts, start = [], 0
    for frame in iter_table(path, rows):
        if each is not None:
            each(frame)
        places = np.arange(start, start + len(frame))
        if picks is not None:
            lo, hi = np.searchsorted(picks, [start, start + len(frame)])
            places = picks[lo:hi]
        parts.append(frame.iloc[places - start].set_axis(places))
        start += len(frame)
    sample = pd.concat(parts)
    sample.attrs["rows_in_file"] = int(total)
    return sample


class TableWriter:
    """Append DataFrames to a CSV or Parquet file (by ``path``'s extension); the file appears
    under its name only when :meth:`close` completes."""

    def __init__(self, tmp: Path, path: Path):
        self.tmp, self.suffix, self.sep = tmp, check_output_path(path), csv_separator(path)
        self._parquet = None
        self._csv = None
        self.rows = 0

    def write(self, frame: pd.DataFrame) -> None:
        if self.suffix == ".csv":
            if self._csv is None:
                self._csv = open(self.tmp, "w", newline="")  # noqa: SIM115 - closed in close()
            frame.to_csv(self._csv, header=self.rows == 0, index=False, sep=self.sep)
        else:
            import pyarrow as pa
            import pyarrow.parquet as pq

            table = pa.Table.from_pandas(frame, preserve_index=False)
            if self._parquet is None:
                self._parquet = pq.ParquetWriter(self.tmp, table.schema)
            self._parquet.write_table(table.cast(self._parquet.schema))
        self.rows += len(frame)

    def close(self) -> None:
        if self._csv is not None:
            self._csv.close()
        if self._parquet is not None:
            self._parquet.close()


def score_file(
    detector,
    path: str | os.PathLike,
    output: str | os.PathLike,
    *,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
    rows: int | None = None,
    contamination: float | str | None = None,
    top: int = 3,
    select: Callable[[pd.DataFrame], object] | None = None,
) -> dict:
    """Score every row of the table file ``path`` with a fitted detector and write ``output``:
    row (0-based place in the file), score, label at the threshold, and for the flagged rows the
    ``top`` columns that contribute most with their shares (:func:`top_columns`).

    ``rows`` rows per batch, or as many as ``memory_budget`` allows. The threshold is the
    detector's own, unless ``contamination`` is given: then a first pass scores the file (8
    bytes a row are kept) and the threshold comes from those scores. ``select`` turns a batch
    into what the detector takes (checking its columns); by default ``detector.scaler.select``.
    """
    with errors_naming(path):
        return _score_file(detector, Path(path), output, memory_budget, rows, contamination, top, select)


def _score_file(detector, path, output, memory_budget, rows, contamination, top, select) -> dict:
    if _suffix(Path(output)) not in (".csv", ".parquet", ".pq"):
        raise DataError(f"{output}: scores are written as CSV or Parquet; name the file .csv or .parquet")
    if rows is None:
        rows = batch_rows(path, memory_budget)
    select = select or (lambda frame: detector.scaler.select(frame, str(path)))
    first_pass = None
    if contamination is not None:
        # kept in float32, the precision the models compute in: 4 bytes a row, filled in place
        # when the file says how many rows it has (Parquet, NPY), else joined once at the end
        known = _shape(Path(path))[0] if _suffix(Path(path)) in (".parquet", ".pq", ".npy") else None
        indexes, parts, scores, filled = [], [], None, 0
        if known is not None:
            scores = np.empty(known, dtype=np.float32)
        for frame in iter_table(path, rows):
            indexes.append(frame.index)
            part = detector._scores(detector._rows(select(frame))).astype(np.float32)
            if scores is not None:
                scores[filled : filled + len(part)] = part
                filled += len(part)
            else:
                parts.append(part)
        if scores is None:
            scores = np.concatenate(parts)
        del parts
        threshold = detector.threshold_of(scores, contamination)
        bounds = np.cumsum([0, *(len(index) for index in indexes)])
        first_pass = [(index, scores[a:b]) for index, a, b in zip(indexes, bounds, bounds[1:], strict=False)]
        if not hasattr(detector, "threshold_"):  # a fresh wrapper around a VAE or an autoencoder
            detector.threshold_ = threshold
    elif hasattr(detector, "threshold_"):
        threshold = detector.threshold_
    else:
        raise ParameterError("this detector has no threshold yet: give contamination (a fraction or 'auto')")
    n_top = min(top, len(detector.feature_names))
    if n_top:
        first_pass = None  # the columns' shares need the rows again: read the file a second time
    flagged = n = batches = 0
    with atomic_path(output) as tmp:
        writer = TableWriter(tmp, Path(output))
        try:
            for frame, scores in first_pass or ((f, None) for f in iter_table(path, rows)):
                if scores is None:
                    data = select(frame)
                    scores = detector.decision_function(data)
                labels = (scores > threshold).astype(int)
                index = frame if first_pass else frame.index  # the first pass kept the frames' indexes
                scores = scores.astype(np.float64)
                table = pd.DataFrame({"row": np.asarray(index), "score": scores, "label": labels})
                if n_top:
                    table = table.join(top_columns(detector, data, labels, n_top))
                writer.write(table)
                n, flagged, batches = n + len(table), flagged + int(labels.sum()), batches + 1
        finally:
            writer.close()
    return {"rows": n, "flagged": flagged, "threshold": float(threshold), "batches": batches}


def top_columns(detector, data, labels: np.ndarray, n: int) -> pd.DataFrame:
    """For each flagged row (``labels`` 1) of ``data``, the ``n`` columns that contribute most to
    its score and their shares (``detector.top_features``), as columns top1, top1_share, ...; None
    and NaN for the other rows: their scores lie in the normal range, where every column's share is
    near zero and noise orders them, and attributing a score costs many times scoring it (a
    detector of ``--model auto``: 15 times, 100,000 rows of 12 columns)."""
    names = np.full((len(labels), n), None, dtype=object)
    shares = np.full((len(labels), n), np.nan)
    flagged = np.flatnonzero(labels)
    if len(flagged) and n:
        from vaekit.images import ImageData

        if isinstance(data, ImageData):  # a folder of images: its array of them
            data = data.images
        rows = data.iloc[flagged] if isinstance(data, pd.DataFrame) else data[flagged]
        names[flagged], shares[flagged] = detector.top_features(rows, n=n)
    columns = {}
    for j in range(n):
        columns[f"top{j + 1}"] = pd.array(names[:, j], dtype="string")  # text in every batch, all gaps or not
        columns[f"top{j + 1}_share"] = shares[:, j].round(4)
    return pd.DataFrame(columns)
