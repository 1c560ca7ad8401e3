"""Data-parallel training over processes and machines with PyTorch's DistributedDataParallel.

Launched by ``torchrun``: every process reads its own contiguous shard of the rows, the
preprocessing statistics are those of all the rows (summed across processes), and every step
takes the same global batch that a single process would, its rows split among the processes that
hold them; DDP averages the gradients, so the model matches a one-process run up to the order of
floating-point sums. NCCL on GPUs, gloo on CPUs. Checkpoints are written by rank 0.

    torchrun --nproc_per_node=2 -m vaekit train data.parquet -o model --model ae --distributed
    # on a cluster, on every node (one rank-0 node's address for all):
    torchrun --nnodes=4 --nproc_per_node=8 --rdzv-backend=c10d --rdzv-endpoint=HOST:29400 \\
        --rdzv-id=job42 -m vaekit train /shared/data.parquet -o /shared/model --distributed
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.distributed as dist

from vaekit.errors import DataError, ParameterError
from vaekit.io import _suffix, csv_options, read_table


@dataclass
class Shard:
    """This process's rows of the data: ``[start, start + rows)`` of ``total`` rows in all."""

    rank: int
    world: int
    start: int
    rows: int
    total: int


def active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def init_from_env(device: str = "auto") -> tuple[int, int, str]:
    """Join the process group that ``torchrun`` describes in the environment: (rank, world size,
    this process's device)."""
    if "WORLD_SIZE" not in os.environ or "RANK" not in os.environ:
        raise ParameterError(
            "--distributed runs under torchrun, e.g. torchrun --nproc_per_node=2 -m vaekit train ... "
            "--distributed (RANK and WORLD_SIZE are not set)"
        )
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    use_cuda = torch.cuda.is_available() and device in ("auto", "cuda")
    if use_cuda:
        torch.cuda.set_device(local_rank)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return dist.get_rank(), dist.get_world_size(), f"cuda:{local_rank}" if use_cuda else "cpu"


def _count_rows(path: Path) -> int:
    suffix = _suffix(path)
    if suffix in (".parquet", ".pq"):
        import pyarrow.parquet as pq

        return pq.ParquetFile(path).metadata.num_rows
    if suffix == ".npy":
        return int(np.load(path, mmap_mode="r", allow_pickle=False).shape[0])
    if suffix == ".csv":
        return sum(
            len(chunk) for chunk in pd.read_csv(path, usecols=[0], chunksize=1 << 20, **csv_options(path))
        )
    return len(read_table(path))


def read_shard(path: str | os.PathLike, rank: int, world: int) -> tuple[pd.DataFrame, Shard]:
    """Rank ``rank``'s contiguous share of the rows of a table file, read without the others'."""
    path = Path(path)
    total = _count_rows(path)
    if total < 2 * world:
        raise DataError(f"{path}: {total} rows are too few to share among {world} processes")
    start, stop = rank * total // world, (rank + 1) * total // world
    suffix = _suffix(path)
    if suffix in (".parquet", ".pq"):
        import pyarrow.parquet as pq

        parts, seen = [], 0
        for batch in pq.ParquetFile(path).iter_batches(batch_size=65_536):
            lo, hi = max(start - seen, 0), min(stop - seen, len(batch))
            if hi > lo:
                parts.append(batch.slice(lo, hi - lo).to_pandas())
            seen += len(batch)
            if seen >= stop:
                break
        frame = pd.concat(parts, ignore_index=True)
    elif suffix == ".csv":
        options = csv_options(path)
        skip = range(1, start + 1)  # the rows of the ranks before this one
        if options.pop("skiprows", 0):  # and Excel's line naming the delimiter, before the header
            skip = [0, *range(2, start + 2)]
        frame = pd.read_csv(path, skiprows=skip, nrows=stop - start, **options)
    elif suffix == ".npy":
        array = np.asarray(np.load(path, mmap_mode="r", allow_pickle=False)[start:stop])
        frame = pd.DataFrame(array, columns=[f"x{j}" for j in range(array.shape[1])])
    else:
        frame = read_table(path).iloc[start:stop].reset_index(drop=True)
    frame.index = pd.RangeIndex(start, stop)  # errors name the file's rows
    return frame, Shard(rank=rank, world=world, start=start, rows=stop - start, total=total)


def all_sum(values: np.ndarray | float) -> np.ndarray:
    """The element-wise sum of ``values`` over every process (float64)."""
    tensor = torch.as_tensor(np.asarray(values, dtype=np.float64))
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor.numpy()


def all_extreme(values: np.ndarray, op: str) -> np.ndarray:
    tensor = torch.as_tensor(np.asarray(values, dtype=np.float64))
    dist.all_reduce(tensor, op=dist.ReduceOp.MIN if op == "min" else dist.ReduceOp.MAX)
    return tensor.numpy()


def broadcast_int(value: int) -> int:
    """Rank 0's ``value`` on every process."""
    tensor = torch.tensor([int(value)], dtype=torch.int64)
    dist.broadcast(tensor, src=0)
    return int(tensor.item())


def fit_scaler_globally(scaler, matrix: np.ndarray):
    """``scaler`` (fitted on this process's rows) refitted to the statistics of all the rows:
    sums for the mean and standard deviation, extremes for minmax; for robust scaling the
    quartiles of a sample of at most 20,000 rows from each process."""
    values = matrix.astype(np.float64)
    if scaler.method == "standard":
        sums = all_sum(np.stack([np.full(values.shape[1], len(values)), values.sum(0), (values**2).sum(0)]))
        count, total, squares = sums
        center = total / count
        scale = np.sqrt(np.maximum(squares / count - center**2, 0.0))
    elif scaler.method == "minmax":
        low, high = all_extreme(values.min(0), "min"), all_extreme(values.max(0), "max")
        center, scale = low, high - low
    elif scaler.method == "robust":
        step = max(1, len(values) // 20_000)
        gathered = [None] * dist.get_world_size()
        dist.all_gather_object(gathered, values[::step].tolist())
        sample = np.concatenate(
            [np.asarray(g, dtype=np.float64).reshape(-1, values.shape[1]) for g in gathered]
        )
        q1, center, q3 = np.percentile(sample, [25, 50, 75], axis=0)
        scale = np.where(q3 - q1 > 1e-12, (q3 - q1) / 1.349, sample.std(axis=0))
    else:
        return scaler
    scale = np.where(scale > 1e-12, scale, 1.0)
    scaler.center, scaler.scale = center.tolist(), scale.tolist()
    return scaler
