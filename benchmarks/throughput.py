"""Training throughput of a 784-512-512-20 MLP VAE on Fashion-MNIST, against the compute-bound limit.

For each batch size, in the same run and with the same threads:
  * achieved: images/s of vaekit's real training path (``Trainer`` driving ``build_module``'s VAE,
    Adam, gradient clipping, metrics, early-stopping bookkeeping), warm-up epochs excluded;
  * limit: images/s if a training step cost only its matmuls: per Linear layer the forward addmm,
    the gradient wrt the weight and, except for the first encoder layer, the gradient wrt the input,
    timed with torch.addmm / torch.mm on the same shapes (best of several trials).
The table goes to stdout and to the "Training throughput" section of docs/benchmarks.md.

Data: the 60,000 Fashion-MNIST training images as grey values in [0, 1] (no binarization) with a
Bernoulli likelihood, i.e. the continuous cross-entropy; throughput does not depend on the values.

    apt-get install -y dataset-fashion-mnist
    .venv/bin/python benchmarks/throughput.py
"""

from __future__ import annotations

import argparse
import datetime
import gzip
import itertools
import os
import platform
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch
from report import DOCS, machine, write_section  # benchmarks/report.py: run as a script

from vaekit.models import ModelConfig, build_module
from vaekit.training import TrainConfig, Trainer

DATA = Path("/usr/share/datasets/fashion-mnist")
SECTION = "## Training throughput"
N_FEATURES, HIDDEN, LATENT = 784, [512, 512], 20


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (gzip): big-endian header, magic 0x0000 <dtype code> <ndim>, then the dims."""
    with gzip.open(path, "rb") as f:
        raw = f.read()
    dtype = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}[raw[2]]
    ndim = raw[3]
    shape = tuple(int(d) for d in np.frombuffer(raw, ">u4", ndim, offset=4))
    return np.frombuffer(raw, dtype, offset=4 + 4 * ndim).reshape(shape)


def layer_shapes() -> list[tuple[int, int, bool]]:
    """(in, out, needs grad wrt input) of every Linear layer, encoder then decoder."""
    enc = [N_FEATURES, *HIDDEN, 2 * LATENT]
    dec = [LATENT, *HIDDEN[::-1], N_FEATURES]
    shapes = [(a, b, i > 0) for i, (a, b) in enumerate(itertools.pairwise(enc))]
    return shapes + [(a, b, True) for a, b in itertools.pairwise(dec)]


def flops_per_image(shapes: list[tuple[int, int, bool]] | None = None) -> int:
    return sum(2 * a * b * (3 if grad_in else 2) for a, b, grad_in in shapes or layer_shapes())


def matmul_limit(
    batch: int,
    trials: int = 7,
    steps: int = 50,
    shapes: list[tuple[int, int, bool]] | None = None,
    dtype: torch.dtype = torch.float32,
) -> float:
    """Images/s if a training step were only the matmuls of ``shapes`` (in, out, needs grad wrt
    the input) of its Linear layers in ``dtype`` (best of ``trials``); by default this script's model."""
    layers = []
    for a, b, grad_in in shapes or layer_shapes():
        x, g = torch.rand(batch, a, dtype=dtype), torch.rand(batch, b, dtype=dtype)
        w, bias = torch.rand(b, a, dtype=dtype), torch.rand(b, dtype=dtype)
        layers.append((x, g, w, bias, grad_in))

    def step():
        for x, g, w, bias, grad_in in layers:
            torch.addmm(bias, x, w.t())  # forward, as nn.Linear
            torch.mm(g.t(), x)  # grad wrt the weight
            if grad_in:
                torch.mm(g, w)  # grad wrt the input

    for _ in range(steps):
        step()
    best = float("inf")
    for _ in range(trials):
        t = time.perf_counter()
        for _ in range(steps):
            step()
        best = min(best, (time.perf_counter() - t) / steps)
    return batch / best


class CpuMeter:
    """Wall seconds and the share of the machine's CPUs used by *other* processes since start."""

    def __init__(self):
        self.start = self._read()

    @staticmethod
    def _read() -> tuple[float, float, float]:
        ticks = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        busy = (sum(ticks[:8]) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")  # minus idle, iowait
        return time.perf_counter(), busy, sum(os.times()[:2])

    def stop(self) -> tuple[float, float]:
        (w0, b0, o0), (w1, b1, o1) = self.start, self._read()
        others = max(0.0, (b1 - b0) - (o1 - o0)) / ((w1 - w0) * os.cpu_count())
        return w1 - w0, others


def wait_quiet(timeout: float, threshold: float = 0.05) -> None:
    """Wait (up to ``timeout`` s) until other processes use under ``threshold`` of the machine."""
    deadline, said = time.monotonic() + timeout, 0.0
    while time.monotonic() < deadline:
        meter = CpuMeter()
        time.sleep(1.0)
        others = meter.stop()[1]
        if others < threshold:
            return
        if time.monotonic() - said > 30:
            print(f"  waiting: other processes use {others:.0%} of the CPUs", flush=True)
            said = time.monotonic()


def train_throughput(x: torch.Tensor, batch: int, warmup: int, epochs: int) -> tuple[list, float]:
    """(images/s, share of the CPUs used by other processes) of each epoch of Trainer.fit after
    ``warmup`` epochs, and the final training -ELBO."""
    torch.manual_seed(0)
    config = ModelConfig(
        kind="vae", n_features=N_FEATURES, latent_dim=LATENT, hidden=HIDDEN, likelihood="bernoulli"
    )
    meter, timings = None, []

    def time_epoch(epoch: int, record: dict) -> None:
        nonlocal meter
        if epoch > warmup:
            seconds, others = meter.stop()
            timings.append((x.shape[0] / seconds, others))
            print(f"  batch {batch}, epoch {epoch}: {timings[-1][0]:,.0f} images/s, others {others:.0%}")
        meter = CpuMeter()

    trainer = Trainer(
        build_module(config),
        TrainConfig(epochs=warmup + epochs, batch_size=batch, patience=None),
        torch.device("cpu"),
        verbose=0,
        callbacks=[time_epoch],
    )
    meter = CpuMeter()  # times the first epoch too when there is no warm-up
    history = trainer.fit(x)
    return timings, history[-1]["train_neg_elbo"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[128, 256])
    parser.add_argument("--warmup", type=int, default=1, help="warm-up epochs, not timed")
    parser.add_argument("--epochs", type=int, default=4, help="timed epochs")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--wait", type=float, default=600, help="seconds to wait for a quiet machine")
    parser.add_argument("--no-write", action="store_true", help="print only, leave docs/ alone")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    images = read_idx(DATA / "train-images-idx3-ubyte.gz")
    x = torch.from_numpy(images.reshape(len(images), -1).astype(np.float32) / 255.0)
    machine_text = machine(args.threads)
    command = shlex.join(["python", "benchmarks/throughput.py", *sys.argv[1:]])
    print(f"{machine_text}; torch {torch.__version__}; {x.shape[0]} images", flush=True)

    rows = []
    for batch in args.batch_sizes:
        wait_quiet(args.wait)
        limit = matmul_limit(batch)
        timings, loss = train_throughput(x, batch, args.warmup, args.epochs)
        limit = max(limit, matmul_limit(batch))  # before and after training: the better one
        achieved, others = max(timings)
        gflops = limit * flops_per_image() / 1e9
        rows.append(
            f"| {batch} | {achieved:,.0f} | {limit:,.0f} | {gflops:.0f} | **{achieved / limit:.0%}** "
            f"| {others:.0%} | {loss:.1f} |"
        )
        print(rows[-1], flush=True)

    date = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    text = f"""{SECTION}

Training images/s of a 784-512-512-20 MLP VAE (ReLU, Bernoulli likelihood, Adam, gradient
clipping at 10: vaekit's `Trainer` with its defaults) on the 60,000 Fashion-MNIST training images
as grey values in [0, 1]: the fastest of {args.epochs} timed epochs after {args.warmup} warm-up
epoch(s). Beside it, the limit if a training step cost only its matmuls: per layer the forward
`addmm` and the gradients wrt the weight and wrt the input (none for the first layer), timed
with `torch.addmm` / `torch.mm` on the same shapes in the same run (the best of 7 trials, before
and after training). Fraction = achieved / limit; the target is at least 60%. "Others": the share
of the machine's CPUs that other processes used during that epoch; the machine is shared, and
with {args.threads} threads on {os.cpu_count()} cores any other busy process slows training many
times over, so a figure with others above a few % means little. Last column: the training -ELBO
of the last epoch, in nats per image.

| batch | achieved images/s | matmul limit images/s | matmul GFLOP/s | fraction | others | -ELBO |
|---|---|---|---|---|---|---|
{chr(10).join(rows)}

- machine: {machine_text}
- torch {torch.__version__}, Python {platform.python_version()}, {date}
- command: `{command}` (after `apt-get install -y dataset-fashion-mnist`)
"""
    print("\n" + text)
    if not args.no_write:
        write_section(SECTION, text)
        print(f"written to {DOCS}")


if __name__ == "__main__":
    main()
