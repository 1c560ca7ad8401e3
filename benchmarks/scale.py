"""Scoring large files: rows per second and peak memory of ``vaekit score`` as the file grows.

Generates Parquet files of N rows x 32 numeric columns (rows near a 4-dimensional linear manifold
plus noise, 1% of them off it), written in row groups of 250,000 so that making them takes
little memory. Trains the recommended detector (``vaekit train --model auto``) and a small plain
autoencoder on a 100,000-row sample, then times ``vaekit score MODEL FILE -o scores.parquet
--top 0`` under ``/usr/bin/time -v`` on each file with each model, and with the top-3
contributing columns (the default) for the detector on the smallest file, and ``vaekit clean`` on
each file. Training on each file under the memory budget: ``vaekit train --model ae`` for one
epoch (streamed: a first pass for the statistics, then the epoch in shuffled windows) and
``vaekit train --model auto`` (the detector learns from a uniform sample). Training throughput:
``vaekit train --model ae`` for 2 epochs on the smallest file, under ``torchrun`` with 1 and 2
gloo processes (``--distributed``) and as a plain process.
Peak memory is the maximum resident set size the OS reports for the whole process (for torchrun,
the largest of its processes). Goals of the scale issue: peak
memory flat (within 20%) from 1M to 16M rows and under 2 GB; at least 1,000,000 rows/s end to
end on 2 cores.

    .venv/bin/python benchmarks/scale.py                  # 1M, 4M, 16M rows (about 6 GB of files in /tmp)
    .venv/bin/python benchmarks/scale.py --rows 200000 1000000 --no-write
"""

from __future__ import annotations

import argparse
import datetime
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from report import machine, write_section  # benchmarks/report.py: run as a script

from vaekit.scoring import parse_size
from vaekit.streaming import WINDOW_BYTES_PER_VALUE

SECTION = "## Scoring large files"
COLUMNS = 32
VAEKIT = [sys.executable, "-m", "vaekit"]
MODELS = {  # what vaekit train makes of the 100,000-row training file
    "detector": ["--model", "auto"],  # the recommended detector: an ensemble of 5 autoencoders
    "ae": ["--model", "ae", "--latent", "4", "--hidden", "64", "--epochs", "5"],  # one small autoencoder
}


STREAMED_TRAINING = {  # vaekit train on each file
    "ae, 1 epoch": [
        "--model",
        "ae",
        "--latent",
        "4",
        "--hidden",
        "64",
        "--epochs",
        "1",
        "--batch-size",
        "1024",
    ],
    "detector": ["--model", "auto"],
}


def window_rows_for(columns: int, budget: int) -> int:
    return budget // (WINDOW_BYTES_PER_VALUE * columns)  # as vaekit.streaming.window_rows


def make_file(path: Path, rows: int, seed: int = 0, group: int = 250_000) -> None:
    basis = np.random.RandomState(0).normal(size=(4, COLUMNS))  # one manifold for every file
    rng = np.random.RandomState(seed)
    rng.normal(size=basis.shape)  # the draws of the basis each file once made for itself: rows as before
    names = [f"c{j}" for j in range(COLUMNS)]
    with pq.ParquetWriter(path, pa.schema([(n, pa.float64()) for n in names])) as writer:
        for start in range(0, rows, group):
            n = min(group, rows - start)
            x = rng.normal(size=(n, 4)) @ basis + 0.1 * rng.normal(size=(n, COLUMNS))
            off = rng.rand(n) < 0.01
            x[off] += rng.normal(scale=3.0, size=(int(off.sum()), COLUMNS))
            writer.write_table(pa.Table.from_arrays([pa.array(x[:, j]) for j in range(COLUMNS)], names=names))


def timed(command: list[str]) -> tuple[float, float]:
    """(wall seconds, peak resident memory in MB) of ``command``, as /usr/bin/time -v reports."""
    started = time.perf_counter()
    done = subprocess.run(["/usr/bin/time", "-v", *command], capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{shlex.join(command)} failed:\n{done.stderr[-2000:]}")
    peak_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr).group(1))
    return seconds, peak_kb / 1024


def train_throughput(data: Path, n: int, tmp: Path) -> list[str]:
    """Rows per second of ``vaekit train`` in one process and under torchrun with 1 and 2 processes."""
    options = ["--model", "ae", "--latent", "4", "--hidden", "64", "--epochs", "2", "--batch-size", "1024"]
    options += ["--quiet", "--seed", "0"]
    torchrun = [str(Path(sys.executable).with_name("torchrun")), "--standalone"]
    launches = [("python -m vaekit", 1, VAEKIT)]
    for k in (1, 2):
        launches.append(("torchrun --distributed", k, [*torchrun, f"--nproc_per_node={k}", "-m", "vaekit"]))
    out = []
    for name, k, launcher in launches:
        extra = ["--distributed"] if "torchrun" in name else []
        model = tmp / f"throughput_{k}_{len(extra)}"
        seconds, peak = timed([*launcher, "train", str(data), "-o", str(model), *options, *extra])
        out.append(f"| {name} | {k} | {seconds:.1f} | {2 * n / seconds:,.0f} | {peak:,.0f} |")
        print(out[-1], flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 4_000_000, 16_000_000])
    parser.add_argument("--memory-budget", default="1G")
    parser.add_argument("--dir", default=None, help="where the files go (default: a temporary folder)")
    parser.add_argument("--no-write", action="store_true", help="print only, leave docs/ alone")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        tmp = Path(tmp)
        make_file(tmp / "train.parquet", 100_000, seed=1)
        trained = []
        for name, options in MODELS.items():
            train = [*VAEKIT, "train", str(tmp / "train.parquet"), "-o", str(tmp / name), "--quiet"]
            seconds, peak = timed([*train, "--seed", "0", *options])
            trained.append(f"{name} (`{' '.join(options)}`: {seconds:.0f} s, peak {peak:,.0f} MB)")
            print(trained[-1], flush=True)
        rows_out, cleaned, training, streamed = [], [], [], []
        for i, n in enumerate(args.rows):
            data = tmp / f"data_{n}.parquet"
            make_file(data, n)
            size_mb = data.stat().st_size / 2**20
            runs = [(name, 0) for name in MODELS] + ([("detector", 3)] if i == 0 else [])
            for name, top in runs:
                out = tmp / f"scores_{n}_{name}_{top}.parquet"
                score = [*VAEKIT, "score", str(tmp / name), str(data), "-o", str(out)]
                seconds, peak = timed([*score, "--top", str(top), "--memory-budget", args.memory_budget])
                assert pq.ParquetFile(out).metadata.num_rows == n
                rows_out.append(
                    f"| {n:,} | {size_mb:,.0f} | {name} | {top} | {seconds:.1f} | {n / seconds:,.0f} "
                    f"| {peak:,.0f} |"
                )
                print(rows_out[-1], flush=True)
                out.unlink()
            clean = [*VAEKIT, "clean", str(data), "-o", str(tmp / f"cleaned_{n}"), "--quiet"]
            seconds, peak = timed([*clean, "--memory-budget", args.memory_budget])
            cleaned.append(f"| {n:,} | {size_mb:,.0f} | {seconds:.1f} | {n / seconds:,.0f} | {peak:,.0f} |")
            print(cleaned[-1], flush=True)
            shutil.rmtree(tmp / f"cleaned_{n}")
            for name, options in STREAMED_TRAINING.items():
                train = [*VAEKIT, "train", str(data), "-o", str(tmp / f"trained_{n}_{name}"), *options]
                seconds, peak = timed(
                    [*train, "--quiet", "--seed", "0", "--memory-budget", args.memory_budget]
                )
                streamed.append(
                    f"| {n:,} | {size_mb:,.0f} | {name} | {seconds:.1f} | {n / seconds:,.0f} | {peak:,.0f} |"
                )
                print(streamed[-1], flush=True)
                shutil.rmtree(tmp / f"trained_{n}_{name}")
            if i == 0:
                training = train_throughput(data, n, tmp)
            data.unlink()

    window = window_rows_for(COLUMNS, parse_size(args.memory_budget))
    date = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    text = f"""{SECTION}

`vaekit score` on Parquet files of 32 numeric columns, with models trained by `vaekit train` on
100,000 rows of the same kind: {"; ".join(trained)}. A plain autoencoder is scored by its
reconstruction error, its threshold set by `--contamination auto` (a first pass over the file).
`--memory-budget {args.memory_budget}`: files larger than the budget are read in record batches and
their scores written as they are produced (Parquet). Seconds and rows/s are end to end (starting
Python, loading the model, reading, scoring, writing); peak memory is the maximum resident set
size of the process from `/usr/bin/time -v`. "top": contributing columns listed per row (3 is the
default; each costs counterfactual passes), 0 = scores and labels only.

| rows | file MB | model | top | seconds | rows/s | peak memory MB |
|---|---|---|---|---|---|---|
{chr(10).join(rows_out)}

`vaekit clean FILE -o DIR --memory-budget {args.memory_budget}` on each file (defaults otherwise: the
recommended detector trained on a uniform sample of 200,000 rows, every row scored in record
batches, clean.parquet, garbage.parquet with the top columns of each garbage row, scores.csv and
report.html written batch by batch):

| rows | file MB | seconds | rows/s | peak memory MB |
|---|---|---|---|---|
{chr(10).join(cleaned)}

`vaekit train FILE -o DIR --memory-budget {args.memory_budget}` on each file: a plain autoencoder
(`--model ae --latent 4 --hidden 64 --epochs 1 --batch-size 1024`) streamed (a first pass for the
statistics and the validation rows, then the epoch reading the file again, shuffling windows of
up to {window:,} rows), and the recommended detector (`--model auto`, learning from a uniform sample of
200,000 rows). Rows/s: rows in the file / seconds, end to end (the ae reads the file twice).

| rows | file MB | model | seconds | rows/s | peak memory MB |
|---|---|---|---|---|---|
{chr(10).join(streamed)}

Training throughput, `vaekit train FILE --model ae --latent 4 --hidden 64 --epochs 2 --batch-size 1024`
on the smallest file (rows/s = rows x epochs / seconds, end to end). A plain process streams the
file (it is larger than the budget); each `torchrun` process reads its shard into memory:

| launch | processes | seconds | rows/s | peak memory MB (per process) |
|---|---|---|---|---|
{chr(10).join(training)}

Goals (scale issue): peak memory flat within 20% from 1M to 16M rows and under 2 GB; at least
1,000,000 rows/s end to end on 2 cores.

{machine(os.cpu_count() or 1)}; {date}.
Command: `{shlex.join(["python", "benchmarks/scale.py", *sys.argv[1:]])}`
"""
    if args.no_write:
        print(text)
    else:
        write_section(SECTION, text)
        print("wrote docs/benchmarks.md")


if __name__ == "__main__":
    main()
