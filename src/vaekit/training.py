"""The training engine: one loop that owns the optimizer, the device, early stopping and checkpoints.

Data lives in memory as one tensor and is batched by slicing a permutation, with no per-row
Python work. A checkpoint holds the weights, the optimizer, the random state and the history,
so a killed run resumed from it continues exactly as the uninterrupted run would have.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import os
import shutil
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from vaekit.errors import ParameterError, TrainingError
from vaekit.io import set_default_mode
from vaekit.streaming import FileRows

logger = logging.getLogger(__name__)

CHECKPOINT_VERSION = 1


@dataclass
class TrainConfig:
    """How to train: optimisation, early stopping and the KL schedule of a VAE; ``precision``
    ``"bfloat16"`` runs the forward pass under autocast (mixed precision)."""

    epochs: int = 100
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 0.0
    patience: int | None = 10
    clip_grad_norm: float | None = 10.0
    beta: float = 1.0
    warmup_epochs: int = 0
    free_bits: float = 0.0
    iwae_samples: int = 1
    seed: int = 0
    checkpoint_every: int = 1
    time_limit: float | None = None
    lr_schedule: str = "constant"
    precision: str = "float32"

    def learning_rate(self, progress: float) -> float:
        """The learning rate once a share ``progress`` of the training is done: constant, or
        cosine annealing from ``lr`` to 0 (Loshchilov & Hutter 2017)."""
        if self.lr_schedule == "cosine":
            return self.lr * 0.5 * (1.0 + math.cos(math.pi * min(max(progress, 0.0), 1.0)))
        return self.lr

    def kl_weight(self, epoch: int) -> float:
        """beta, raised linearly from ~0 over the first ``warmup_epochs`` epochs (KL warm-up)."""
        if self.warmup_epochs <= 0:
            return self.beta
        return self.beta * min(1.0, (epoch + 1) / self.warmup_epochs)


def has_bfloat16_units(device: torch.device) -> bool:
    """Whether ``device`` multiplies bfloat16 matrices in hardware: a CUDA GPU that supports it, or
    a CPU with AVX-512 BF16 or AMX (oneDNN's check). Elsewhere torch emulates them, dozens of times
    slower than float32 (measured here on an AVX2 CPU: 190 ms against 2.8 ms for a 256x784 by
    784x800 product)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        check = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
        return bool(check()) if check is not None else True  # unknown: as the user asked
    return True


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` picks CUDA, then Apple MPS, then the CPU."""
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError:
        raise ParameterError(f"unknown device {device!r}; use auto, cpu, cuda, cuda:N or mps") from None
    mps = getattr(torch.backends, "mps", None)
    available = {
        "cpu": True,
        "cuda": torch.cuda.is_available(),
        "mps": mps is not None and mps.is_available(),
    }.get(resolved.type, True)
    if not available:
        raise ParameterError(
            f"device {device!r}: this machine has no {resolved.type.upper()}; use auto or cpu"
        )
    return resolved


def _metrics(output) -> dict[str, torch.Tensor]:
    return {f.name: getattr(output, f.name).detach() for f in fields(output) if f.name != "loss"}


def _progress(record: dict) -> dict[str, str]:
    """The live loss for the progress bar: the -ELBO (or reconstruction error), training and validation."""
    shown = {}
    for split in ("train", "val"):
        for name in ("neg_elbo", "reconstruction"):
            if f"{split}_{name}" in record:
                shown["loss" if split == "train" else "val"] = f"{record[f'{split}_{name}']:.4g}"
                break
    return shown


def _loss_kwargs(module: nn.Module, config: TrainConfig, epoch: int) -> dict:
    if hasattr(module, "latent_dim"):  # a VAE: KL weight schedule and free bits
        kwargs = {"beta": config.kl_weight(epoch), "free_bits": config.free_bits}
        if config.iwae_samples > 1:
            kwargs["iwae_samples"] = config.iwae_samples
        return kwargs
    return {}


@torch.no_grad()
def _batch_sums(module: nn.Module, x: torch.Tensor, batch_size: int = 4096) -> dict[str, float]:
    """The sum over the rows of ``x`` of each loss term of ``module``, in eval mode."""
    was_training = module.training
    module.eval()
    sums: dict[str, float] = {}
    for start in range(0, x.shape[0], batch_size):
        xb = x[start : start + batch_size]
        for name, value in _metrics(module(xb)).items():
            sums[name] = sums.get(name, 0.0) + float(value) * xb.shape[0]
    module.train(was_training)
    return sums


def evaluate_batches(module: nn.Module, x: torch.Tensor, batch_size: int = 4096) -> dict[str, float]:
    """The mean of each loss term of ``module`` over ``x``, in eval mode, with no gradient."""
    return {name: value / x.shape[0] for name, value in _batch_sums(module, x, batch_size).items()}


class Trainer:
    """Trains ``module`` (whose forward returns an output with a ``loss``) with Adam.

    ``callbacks`` are called as ``callback(epoch, record)`` after every epoch; ``verbose=0``
    silences the progress bar.
    """

    def __init__(
        self,
        module: nn.Module,
        config: TrainConfig,
        device: torch.device,
        checkpoint_dir: str | os.PathLike | None = None,
        verbose: int = 1,
        callbacks: Sequence[Callable[[int, dict], None]] = (),
        fingerprint: dict | None = None,
        train_positions: torch.Tensor | None = None,
        n_train_total: int | None = None,
    ):
        """``train_positions`` (distributed runs only): the place of each of this process's
        training rows in the whole training set of ``n_train_total`` rows."""
        self.module = module.to(device)
        self.train_positions, self.n_train_total = train_positions, n_train_total
        self.distributed = train_positions is not None
        self.config = config
        self.device = device
        self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir is not None else None
        self.verbose = verbose
        self.callbacks = list(callbacks)
        self.fingerprint = fingerprint or {}
        # fused: one kernel per parameter for the whole update, where torch has one (CPU, CUDA)
        fused = device.type in ("cpu", "cuda")
        self.optimizer = torch.optim.Adam(
            module.parameters(), lr=config.lr, weight_decay=config.weight_decay, fused=fused
        )
        self.history: list[dict] = []
        self.epoch = 0  # the next epoch to run
        self.best_value = math.inf
        self.best_epoch = -1
        self.bad_epochs = 0
        self.best_state: dict[str, torch.Tensor] | None = None
        self.stopped_early = False

    # -- the loop -------------------------------------------------------------------------
    def fit(self, x_train: torch.Tensor | FileRows, x_val: torch.Tensor | None = None) -> list[dict]:
        """Train on ``x_train``: a tensor of rows, or rows streamed from a file (read once per epoch)."""
        from tqdm.auto import tqdm

        cfg = self.config
        streamed = isinstance(x_train, FileRows)
        if not streamed:
            x_train = x_train.to(self.device)
        x_val = x_val.to(self.device) if x_val is not None and len(x_val) else None
        n = len(x_train) if not self.distributed else int(self.n_train_total)
        model, local_of, has_val = self.module, None, x_val is not None
        if self.distributed:
            from torch.nn.parallel import DistributedDataParallel

            from vaekit import distributed

            world = distributed.dist.get_world_size()
            local_of = torch.full((n,), -1, dtype=torch.long)
            local_of[self.train_positions] = torch.arange(x_train.shape[0])
            ids = [self.device.index] if self.device.type == "cuda" else None
            model = DistributedDataParallel(self.module, device_ids=ids)
            has_val = distributed.all_sum(0 if x_val is None else len(x_val)) > 0
        # mixed precision: matrix products in bfloat16 (several times faster where the hardware
        # has them), the weights, their updates and the reported losses in float32
        bfloat16 = cfg.precision == "bfloat16"
        if bfloat16 and not has_bfloat16_units(self.device):
            warnings.warn(
                f"precision='bfloat16': this {self.device.type.upper()} has no bfloat16 matrix units, "
                "and emulated bfloat16 products are dozens of times slower than float32: training "
                "in float32 instead (precision='float32' says so and silences this)",
                RuntimeWarning,
                stacklevel=2,
            )
            bfloat16 = False
        started = time.monotonic()
        out_of_time = False
        bar = tqdm(
            total=cfg.epochs,
            initial=self.epoch,
            disable=not self.verbose,
            unit="epoch",
            desc="training",
            dynamic_ncols=True,
            leave=self.verbose > 0,
        )
        try:
            while self.epoch < cfg.epochs and not self.stopped_early and not out_of_time:
                epoch = self.epoch
                self.module.train()
                kwargs = _loss_kwargs(self.module, cfg, epoch)
                # the same order on every process of a distributed run, and after a resume
                epoch_seed = cfg.seed * 100_003 + epoch
                if streamed:
                    batches = x_train.batches(epoch_seed, cfg.batch_size)
                else:
                    perm = torch.randperm(n, generator=torch.Generator().manual_seed(epoch_seed))
                    batches = (perm[start : start + cfg.batch_size] for start in range(0, n, cfg.batch_size))
                names, total, seen = None, 0.0, 0
                n_batches = math.ceil(n / cfg.batch_size)
                # a streamed epoch reads the whole file: long enough to show its own progress
                inner = tqdm(
                    total=n_batches,
                    disable=not (self.verbose and streamed),
                    unit="batch",
                    desc=f"epoch {epoch + 1}, streamed",
                    dynamic_ncols=True,
                    leave=False,
                )
                for step, batch in enumerate(batches):
                    elapsed = time.monotonic() - started
                    limit_hit = cfg.time_limit is not None and elapsed > cfg.time_limit and seen
                    if limit_hit and not self.distributed:
                        out_of_time = True  # stop within the epoch: the budget is the budget
                        break
                    if cfg.lr_schedule != "constant":
                        # progress: the share of the epochs or of the time limit used, whichever is larger
                        progress = (epoch * n_batches + step) / (cfg.epochs * n_batches)
                        if cfg.time_limit:
                            progress = max(progress, elapsed / cfg.time_limit)
                        for group in self.optimizer.param_groups:
                            group["lr"] = cfg.learning_rate(progress)
                    weight = 1.0
                    if self.distributed:  # this process's rows of the global batch
                        mine = local_of[batch]
                        mine = mine[mine >= 0]
                        # DDP averages over processes: weigh each so the sum is the global batch mean
                        weight = len(mine) * world / len(batch)
                        batch = mine if len(mine) else torch.zeros(1, dtype=torch.long)
                    if streamed:
                        xb = batch.to(self.device)
                    else:
                        xb = x_train.index_select(0, batch.to(self.device))
                    with torch.autocast(self.device.type, torch.bfloat16, enabled=bfloat16):
                        output = model(xb, **kwargs)
                    self.optimizer.zero_grad(set_to_none=True)
                    (output.loss * weight).backward()
                    if cfg.clip_grad_norm:
                        nn.utils.clip_grad_norm_(self.module.parameters(), cfg.clip_grad_norm)
                    self.optimizer.step()
                    metrics = {"loss": output.loss.detach(), **_metrics(output)}
                    names = list(metrics)
                    rows = xb.shape[0] if weight else 0
                    total = total + torch.stack(list(metrics.values())) * rows
                    seen += rows
                    inner.update(1)
                    if streamed and self.verbose and step % 50 == 0:
                        inner.set_postfix(loss=f"{output.loss.item():.4g}")
                inner.close()
                if self.distributed:
                    sums = distributed.all_sum(np.append(total.cpu().numpy(), seen))
                    total, seen = torch.from_numpy(sums[:-1]), float(sums[-1])
                record = {"epoch": epoch + 1}
                record.update({f"train_{k}": v / seen for k, v in zip(names, total.tolist(), strict=True)})
                if not all(math.isfinite(v) for k, v in record.items() if k != "epoch"):
                    raise TrainingError(
                        f"the training loss became NaN or infinite in epoch {epoch + 1}; lower "
                        f"the learning rate (now {cfg.lr}), keep gradient clipping on, or check "
                        "the data for extreme values"
                    )
                if has_val and self.distributed:
                    local = _batch_sums(self.module, x_val) if x_val is not None else {}
                    val_names = names[1:]
                    sums = distributed.all_sum(
                        [*(local.get(k, 0.0) for k in val_names), 0 if x_val is None else len(x_val)]
                    )
                    record.update(
                        {f"val_{k}": v / sums[-1] for k, v in zip(val_names, sums[:-1], strict=True)}
                    )
                elif has_val:
                    record.update({f"val_{k}": v for k, v in evaluate_batches(self.module, x_val).items()})
                self._early_stopping(record, epoch)
                self.history.append(record)
                self.epoch = epoch + 1
                if cfg.time_limit is not None and time.monotonic() - started > cfg.time_limit:
                    out_of_time = True
                if self.distributed:  # every process stops together
                    out_of_time = bool(distributed.all_extreme([float(out_of_time)], "max")[0])
                if self.checkpoint_dir is not None and (
                    self.epoch % max(cfg.checkpoint_every, 1) == 0
                    or self.epoch == cfg.epochs
                    or self.stopped_early
                    or out_of_time
                ):
                    if not self.distributed or distributed.dist.get_rank() == 0:
                        self.save_checkpoint()  # one writer; the others wait for it
                    if self.distributed:
                        distributed.dist.barrier()
                bar.update(1)
                bar.set_postfix(_progress(record))
                logger.debug("epoch %d: %s", epoch + 1, record)
                for callback in self.callbacks:
                    callback(epoch + 1, record)
        finally:
            bar.close()
        if self.best_state is not None:
            self.module.load_state_dict(self.best_state)
        return self.history

    def _monitor(self, record: dict) -> float:
        for key in ("val_neg_elbo", "val_reconstruction", "train_neg_elbo", "train_reconstruction"):
            if key in record:
                return record[key]
        return record["train_loss"]

    def _early_stopping(self, record: dict, epoch: int) -> None:
        value = self._monitor(record)
        if not math.isfinite(value):
            raise TrainingError(
                f"the validation loss became NaN or infinite in epoch {epoch + 1}; lower the "
                f"learning rate (now {self.config.lr}) or check the data for extreme values"
            )
        if self.best_value == math.inf or value < self.best_value - 1e-6 * abs(self.best_value):
            self.best_value, self.best_epoch, self.bad_epochs = value, epoch + 1, 0
            self.best_state = copy.deepcopy(self.module.state_dict())
        else:
            self.bad_epochs += 1
            patience = self.config.patience
            if patience is not None and patience > 0 and self.bad_epochs >= patience:
                self.stopped_early = True

    # -- checkpoints ----------------------------------------------------------------------
    def save_checkpoint(self) -> None:
        """Write the whole training state to ``checkpoint_dir`` atomically (temp dir, rename)."""
        tensors = {f"model.{k}": v for k, v in self.module.state_dict().items()}
        if self.best_state is not None:
            tensors.update({f"best.{k}": v for k, v in self.best_state.items()})
        optim_state = self.optimizer.state_dict()
        optim_scalars: dict[str, dict] = {}
        for pid, state in optim_state["state"].items():
            for key, value in state.items():
                if torch.is_tensor(value):
                    tensors[f"optim.{pid}.{key}"] = value
                else:
                    optim_scalars.setdefault(str(pid), {})[key] = value
        tensors["rng.cpu"] = torch.get_rng_state()
        if self.device.type == "cuda":
            tensors["rng.cuda"] = torch.cuda.get_rng_state(self.device)
        tensors = {k: v.detach().cpu().contiguous().clone() for k, v in tensors.items()}
        meta = {
            "format": "vaekit-checkpoint",
            "format_version": CHECKPOINT_VERSION,
            "epoch": self.epoch,
            "history": self.history,
            "best_value": self.best_value if math.isfinite(self.best_value) else None,
            "best_epoch": self.best_epoch,
            "bad_epochs": self.bad_epochs,
            "stopped_early": self.stopped_early,
            "optimizer_param_groups": optim_state["param_groups"],
            "optimizer_scalars": optim_scalars,
            "optimizer_state_ids": [str(p) for p in optim_state["state"]],
            "train_config": asdict(self.config),
            "fingerprint": self.fingerprint,
        }
        target = self.checkpoint_dir
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.tmp")
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir()
        save_file(tensors, str(tmp / "state.safetensors"))
        set_default_mode(tmp / "state.safetensors")
        (tmp / "state.json").write_text(json.dumps(meta, indent=1))
        old = target.with_name(f".{target.name}.old")
        if target.exists():
            if old.exists():
                shutil.rmtree(old)
            os.replace(target, old)
        os.replace(tmp, target)
        if old.exists():
            shutil.rmtree(old)

    @staticmethod
    def checkpoint_exists(path: str | os.PathLike) -> bool:
        path = Path(path)
        if (path / "state.json").exists():
            return True
        # a kill between the two renames of save_checkpoint leaves the last one under .old
        old = path.with_name(f".{path.name}.old")
        if (old / "state.json").exists():
            os.replace(old, path)
            return True
        return False

    def load_checkpoint(self) -> None:
        """Restore the training state written by :meth:`save_checkpoint`."""
        path = self.checkpoint_dir
        try:
            meta = json.loads((path / "state.json").read_text())
            tensors = load_file(str(path / "state.safetensors"))
        except Exception as exc:
            raise TrainingError(
                f"{path}: the checkpoint cannot be read ({type(exc).__name__}); delete the "
                "folder to start afresh"
            ) from None
        if meta.get("format") != "vaekit-checkpoint" or meta.get("format_version") != CHECKPOINT_VERSION:
            raise TrainingError(f"{path}: not a vaekit checkpoint of format {CHECKPOINT_VERSION}")
        saved = meta.get("fingerprint", {})
        if saved != self.fingerprint:
            changed = sorted(
                k for k in set(saved) | set(self.fingerprint) if saved.get(k) != self.fingerprint.get(k)
            )
            raise TrainingError(
                f"{path}: the checkpoint was made with other settings or data (differs in "
                f"{changed}); resume with the same command, or delete the folder to start afresh"
            )
        self.module.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
        best = {k[5:]: v.to(self.device) for k, v in tensors.items() if k.startswith("best.")}
        self.best_state = best or None
        state: dict = {}
        for pid in meta["optimizer_state_ids"]:
            entry = dict(meta["optimizer_scalars"].get(pid, {}))
            prefix = f"optim.{pid}."
            entry.update({k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)})
            state[int(pid)] = entry
        self.optimizer.load_state_dict({"state": state, "param_groups": meta["optimizer_param_groups"]})
        torch.set_rng_state(tensors["rng.cpu"])
        if "rng.cuda" in tensors and self.device.type == "cuda":
            torch.cuda.set_rng_state(tensors["rng.cuda"], self.device)
        self.epoch = meta["epoch"]
        self.history = meta["history"]
        self.best_value = meta["best_value"] if meta["best_value"] is not None else math.inf
        self.best_epoch = meta["best_epoch"]
        self.bad_epochs = meta["bad_epochs"]
        self.stopped_early = meta["stopped_early"]
        logger.info("resumed from %s after epoch %d", path, self.epoch)
