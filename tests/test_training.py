"""The training engine: repeatable seeds, exact resume after a kill, clear errors, progress."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from vaekit import VAE, Autoencoder, ParameterError, TrainingError
from vaekit.training import TrainConfig, resolve_device


@pytest.fixture(scope="module")
def X() -> np.ndarray:
    from sklearn.datasets import load_breast_cancer

    return load_breast_cancer().data


def _weights(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.module_.state_dict().items()}


def _assert_same_weights(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name


@pytest.mark.parametrize("cls", [VAE, Autoencoder])
def test_same_seed_gives_the_same_weights_and_another_seed_does_not(cls, X):
    settings = dict(latent_dim=3, hidden=(32,), epochs=8, random_state=7, device="cpu")
    first = _weights(cls(**settings).fit(X))
    _assert_same_weights(first, _weights(cls(**settings).fit(X)))
    other = _weights(cls(**{**settings, "random_state": 8}).fit(X))
    assert any(not torch.equal(first[k], other[k]) for k in first)


def test_fit_leaves_the_global_random_state_alone(X):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    VAE(hidden=(8,), epochs=2, random_state=0).fit(X)
    assert torch.equal(torch.rand(3), expected)


class _Interrupt(Exception):
    pass


def _stop_after(epoch: int):
    def callback(done: int, record: dict) -> None:
        if done == epoch:
            raise _Interrupt

    return callback


@pytest.mark.parametrize("checkpoint_every", [1, 3])
def test_resumed_run_matches_the_uninterrupted_run(tmp_path, X, checkpoint_every):
    """Stopped after epoch 7, resumed from the last checkpoint: the same weights as one run."""
    settings = dict(
        latent_dim=3,
        hidden=(32, 16),
        epochs=12,
        random_state=0,
        patience=4,
        warmup_epochs=5,
        dropout=0.1,
        checkpoint_every=checkpoint_every,
        device="cpu",
    )
    whole = VAE(**settings, checkpoint_dir=str(tmp_path / "a")).fit(X)

    interrupted = VAE(**settings, checkpoint_dir=str(tmp_path / "b"))
    with pytest.raises(_Interrupt):
        interrupted.fit(X, callbacks=[_stop_after(7)])
    resumed = VAE(**settings, checkpoint_dir=str(tmp_path / "b")).fit(X, resume=True)
    _assert_same_weights(_weights(whole), _weights(resumed))
    assert resumed.history_ == whole.history_
    assert resumed.best_epoch_ == whole.best_epoch_


def test_resume_refuses_a_checkpoint_of_other_settings(tmp_path, X):
    VAE(hidden=(8,), epochs=2, random_state=0, checkpoint_dir=str(tmp_path)).fit(X)
    with pytest.raises(TrainingError, match="other settings or data"):
        VAE(hidden=(16,), epochs=4, random_state=0, checkpoint_dir=str(tmp_path)).fit(X, resume=True)


def test_resume_can_extend_a_finished_run(tmp_path, X):
    settings = dict(hidden=(16,), random_state=0, patience=None, device="cpu")
    whole = VAE(**settings, epochs=6).fit(X)
    VAE(**settings, epochs=3, checkpoint_dir=str(tmp_path)).fit(X)
    extended = VAE(**settings, epochs=6, checkpoint_dir=str(tmp_path)).fit(X, resume=True)
    _assert_same_weights(_weights(whole), _weights(extended))


def test_a_killed_command_line_run_resumes_to_the_same_model(tmp_path):
    """SIGKILL `vaekit train` mid-run, then `--resume`: the saved model equals an unbroken run's."""
    rng = np.random.RandomState(0)
    data = tmp_path / "data.npy"
    np.save(data, rng.normal(size=(6000, 40)).astype(np.float32))
    args = [
        "train",
        str(data),
        "--epochs",
        "12",
        "--hidden",
        "128,128",
        "--seed",
        "3",
        "--patience",
        "0",
        "--checkpoint-every",
        "2",
        "--quiet",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}

    def run(out, *extra):
        return subprocess.run(
            [sys.executable, "-m", "vaekit", *args, "-o", str(out), *extra],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )

    killed = subprocess.Popen(
        [sys.executable, "-m", "vaekit", *args, "-o", str(tmp_path / "b")],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    state = tmp_path / "b" / "checkpoint" / "state.json"
    deadline = time.monotonic() + 300
    while not state.exists() and time.monotonic() < deadline and killed.poll() is None:
        time.sleep(0.01)
    time.sleep(0.3)
    assert killed.poll() is None, "training finished before it could be killed: make it longer"
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    assert not (tmp_path / "b" / "config.json").exists()  # no model was saved by the killed run

    resumed = run(tmp_path / "b", "--resume")
    assert resumed.returncode == 0, resumed.stderr
    whole = run(tmp_path / "a")
    assert whole.returncode == 0, whole.stderr
    a = load_file(str(tmp_path / "a" / "model.safetensors"))
    b = load_file(str(tmp_path / "b" / "model.safetensors"))
    _assert_same_weights(a, b)


class _PoisonedDecoder(nn.Module):
    """A decoder that starts to output NaN after a number of calls."""

    def __init__(self, n_features: int, latent_dim: int, after: int):
        super().__init__()
        self.linear = nn.Linear(latent_dim, n_features)
        self.after = after
        self.calls = 0

    def forward(self, z):
        self.calls += 1
        out = self.linear(z)
        return out * float("nan") if self.calls > self.after else out


def test_nan_loss_stops_training_with_an_error_naming_the_epoch(X):
    # 569 rows, 10% held out, batch 128: 4 training batches an epoch, one validation batch
    vae = VAE(
        latent_dim=2,
        hidden=(8,),
        epochs=5,
        random_state=0,
        encoder=None,
        decoder=_PoisonedDecoder(X.shape[1], 2, after=11),
    )
    with pytest.raises(TrainingError, match="epoch 3"):
        vae.fit(X)


def test_early_stopping_keeps_the_best_epoch(X):
    vae = VAE(hidden=(64,), epochs=200, patience=3, lr=3e-2, random_state=0).fit(X)
    assert vae.n_epochs_ < 200
    assert vae.n_epochs_ == vae.best_epoch_ + 3
    best = min(r["val_neg_elbo"] for r in vae.history_)
    assert vae.history_[vae.best_epoch_ - 1]["val_neg_elbo"] == best


def test_kl_warmup_schedule():
    config = TrainConfig(beta=2.0, warmup_epochs=4)
    assert [config.kl_weight(e) for e in range(6)] == [0.5, 1.0, 1.5, 2.0, 2.0, 2.0]
    assert TrainConfig(beta=0.5).kl_weight(0) == 0.5


def test_device_auto_picks_an_available_device():
    device = resolve_device("auto")
    if torch.cuda.is_available():
        assert device.type == "cuda"
    elif torch.backends.mps.is_available():
        assert device.type == "mps"
    else:
        assert device.type == "cpu"
    with pytest.raises(ValueError, match="unknown device"):
        resolve_device("tpu-ish")
    if not torch.cuda.is_available():
        with pytest.raises(ParameterError, match="no CUDA"):
            VAE(device="cuda", epochs=1).fit(np.ones((5, 2)))


def test_progress_bar_shows_the_live_loss_and_can_be_silenced(X, capsys):
    VAE(hidden=(8,), epochs=2, random_state=0, verbose=1).fit(X)
    shown = capsys.readouterr().err
    assert "loss=" in shown and "val=" in shown and "2/2" in shown
    VAE(hidden=(8,), epochs=2, random_state=0, verbose=0).fit(X)
    assert capsys.readouterr().err == ""


def test_time_limit_ends_training_early(X):
    vae = VAE(hidden=(8,), epochs=10_000, patience=None, time_limit=0.5, random_state=0).fit(X)
    assert 1 <= vae.n_epochs_ < 10_000


def test_cosine_schedule_anneals_the_learning_rate_to_zero_and_time_limit_stops_within_an_epoch():
    from vaekit.models import ModelConfig, build_module
    from vaekit.training import Trainer

    config = TrainConfig(lr=0.01, lr_schedule="cosine")
    assert config.learning_rate(0.0) == pytest.approx(0.01)
    assert config.learning_rate(0.5) == pytest.approx(0.005)
    assert config.learning_rate(1.0) == pytest.approx(0.0, abs=1e-12)
    assert TrainConfig(lr=0.01).learning_rate(0.9) == 0.01

    x = torch.randn(400, 5)
    module = build_module(ModelConfig(kind="vae", n_features=5, latent_dim=2, hidden=[8]))
    trainer = Trainer(
        module,
        TrainConfig(epochs=4, batch_size=50, lr=0.01, lr_schedule="cosine"),
        torch.device("cpu"),
        verbose=0,
    )
    rates = []
    trainer.callbacks.append(lambda epoch, record: rates.append(trainer.optimizer.param_groups[0]["lr"]))
    trainer.fit(x)
    # the rate of each epoch's last step: 8 steps per epoch, 32 in all
    expected = [config.learning_rate(step / 32) for step in (7, 15, 23, 31)]
    np.testing.assert_allclose(rates, expected, rtol=1e-9)

    # a time limit shorter than one epoch stops inside the first epoch, after at least one batch
    slow = VAE(latent_dim=2, hidden=(8,), epochs=50, batch_size=1, time_limit=0.05, random_state=0)
    slow.fit(np.random.RandomState(0).normal(size=(20000, 5)))
    assert slow.n_epochs_ == 1
    assert np.isfinite(slow.history_[0]["train_neg_elbo"])
    with pytest.raises(ParameterError, match="lr_schedule"):
        VAE(lr_schedule="linear").fit(np.random.RandomState(0).normal(size=(40, 5)))
