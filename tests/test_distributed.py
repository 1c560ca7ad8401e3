"""Data-parallel training: 2 gloo processes on loopback, launched by torchrun, against one process."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from vaekit import load


def _run(args: list[str], cwd) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ddp")
    rng = np.random.RandomState(0)
    z = rng.normal(size=(601, 2))
    X = z @ rng.normal(size=(2, 6)) + 0.1 * rng.normal(size=(601, 6))
    pd.DataFrame(X, columns=[f"c{j}" for j in range(6)]).to_parquet(folder / "data.parquet")
    return folder, X


def _train(folder, name: str, model: str, distributed: bool, extra=()) -> str:
    common = ["train", "data.parquet", "-o", name, "--model", model, "--latent", "2", "--hidden", "16"]
    common += ["--epochs", "4", "--batch-size", "64", "--seed", "3", "--quiet", *extra]
    if distributed:
        launch = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
        return _run([*launch, "-m", "vaekit", *common, "--distributed"], folder).stdout
    return _run([sys.executable, "-m", "vaekit", *common], folder).stdout


def test_two_gloo_processes_train_the_model_one_process_trains(table):
    folder, X = table
    _train(folder, "single", "ae", distributed=False)
    out = _train(folder, "ddp", "ae", distributed=True)
    assert out.count('"processes": 2, "rows": 601') == 1  # rank 0 reports, for both
    single, ddp = load(folder / "single"), load(folder / "ddp")
    np.testing.assert_allclose(ddp.scaler_.center, single.scaler_.center, rtol=1e-9)
    np.testing.assert_allclose(ddp.scaler_.scale, single.scaler_.scale, rtol=1e-9)
    assert ddp.n_train_ == single.n_train_ and ddp.n_val_ == single.n_val_
    assert len(ddp.history_) == len(single.history_) == 4
    for a, b in zip(ddp.history_, single.history_, strict=True):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-4)
        assert a["val_reconstruction"] == pytest.approx(b["val_reconstruction"], rel=1e-4)
    np.testing.assert_allclose(ddp.reconstruct(X), single.reconstruct(X), rtol=1e-4, atol=1e-4)


def test_a_distributed_vae_trains_saves_and_resumes_from_rank_0s_checkpoint(table):
    folder, X = table
    _train(folder, "vae", "vae", distributed=True)
    vae = load(folder / "vae")
    assert (folder / "vae" / "checkpoint" / "state.json").exists()
    assert len(vae.history_) == 4 and np.isfinite(vae.elbo(X)).all()
    first = vae.history_[0]["train_neg_elbo"]
    assert vae.history_[-1]["train_neg_elbo"] < first
    _train(folder, "vae", "vae", distributed=True, extra=["--resume", "--epochs", "6"])
    resumed = load(folder / "vae")
    assert len(resumed.history_) == 6 and resumed.history_[:4] == vae.history_


def test_distributed_needs_torchrun(table, capsys):
    from vaekit.cli import main

    folder, _ = table
    code = main(
        ["train", str(folder / "data.parquet"), "-o", str(folder / "x"), "--model", "ae", "--distributed"]
    )
    assert code == 2 and "torchrun" in capsys.readouterr().err


def test_each_process_reads_its_own_rows(table):
    from vaekit.distributed import read_shard

    folder, X = table
    parts = [read_shard(folder / "data.parquet", rank, 2) for rank in range(2)]
    assert [shard.rows for _, shard in parts] == [300, 301] and parts[1][1].start == 300
    np.testing.assert_array_equal(np.vstack([frame.to_numpy() for frame, _ in parts]), X)
    assert parts[1][0].index[0] == 300  # errors name the file's rows
    pd.DataFrame(X).to_csv(folder / "data.csv", index=False)
    frame, shard = read_shard(folder / "data.csv", 1, 3)
    np.testing.assert_allclose(frame.to_numpy(), X[200:400])
    assert (shard.start, shard.rows, shard.total) == (200, 200, 601)
