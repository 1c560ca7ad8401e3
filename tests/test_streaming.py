"""Training on a table file read in batches: one pass for the statistics, epochs streamed in windows."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch

from vaekit import VAE, Autoencoder, DataError
from vaekit.persistence import load
from vaekit.streaming import FileRows, summarize_file, validation_rows

SETTINGS = dict(latent_dim=2, hidden=(16,), epochs=3, batch_size=64, random_state=0, device="cpu", verbose=0)


def _table(n: int = 1500, seed: int = 0) -> pd.DataFrame:
    rng = np.random.RandomState(seed)
    z = rng.normal(size=(n, 2))
    values = np.tanh(z @ rng.normal(size=(2, 6))) * 5 + 3 + 0.1 * rng.normal(size=(n, 6))
    return pd.DataFrame(values.astype(np.float32), columns=[f"c{j}" for j in range(6)])


def _write(frame: pd.DataFrame, path):
    if path.suffix == ".csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path, row_group_size=400)
    return path


@pytest.mark.parametrize(
    ("name", "estimator", "scaling"),
    [("t.parquet", VAE, "standard"), ("t.csv", Autoencoder, "robust"), ("t.parquet", VAE, "minmax")],
)
def test_a_file_streamed_in_small_batches_trains_the_in_memory_model(tmp_path, name, estimator, scaling):
    """Read 37 rows at a time, one window for every row: the model of fit() on the whole table."""
    frame = _table()
    path = _write(frame, tmp_path / name)
    whole = estimator(**SETTINGS, scaling=scaling).fit(pd.read_csv(path) if name.endswith("csv") else frame)
    streamed = estimator(**SETTINGS, scaling=scaling)._fit_streamed(path, rows=37, window=10**9)
    np.testing.assert_allclose(streamed.scaler_.center, whole.scaler_.center, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(streamed.scaler_.scale, whole.scaler_.scale, rtol=1e-6)
    assert (streamed.n_train_, streamed.n_val_) == (whole.n_train_, whole.n_val_)
    for a, b in zip(streamed.history_, whole.history_, strict=True):
        assert a.keys() == b.keys()
        np.testing.assert_allclose(list(a.values()), list(b.values()), rtol=1e-4)
    np.testing.assert_allclose(streamed.reconstruct(frame), whole.reconstruct(frame), rtol=1e-3, atol=1e-3)
    assert list(streamed.feature_names_in_) == list(frame.columns)


def test_windows_smaller_than_the_file_give_every_training_row_once_an_epoch(tmp_path):
    frame = _table(1000)
    path = _write(frame, tmp_path / "t.parquet")
    summary = summarize_file(path, rows=90, fraction=0.1, seed=5)
    held_out = np.zeros(1000, dtype=bool)
    held_out[validation_rows(1000, 0.1, seed=5)] = True
    assert held_out.sum() == 100
    np.testing.assert_array_equal(summary.validation_places, np.flatnonzero(held_out))
    np.testing.assert_array_equal(summary.validation, frame.to_numpy()[held_out])
    scaler = summary.scaler("none")
    rows = FileRows(path, 90, 250, scaler, summary.validation_places, n=900)
    for epoch in range(2):
        batches = list(rows.batches(seed=epoch, batch_size=64))
        assert all(len(b) == 64 for b in batches[:-1]) and 0 < len(batches[-1]) <= 64
        seen = torch.cat(batches).numpy()
        expected = frame.to_numpy()[~held_out]
        assert len(seen) == len(expected)
        np.testing.assert_array_equal(seen[np.lexsort(seen.T)], expected[np.lexsort(expected.T)])
        assert not np.array_equal(seen, expected)  # shuffled
    first, again = (torch.cat(list(rows.batches(seed=1, batch_size=64))) for _ in range(2))
    assert torch.equal(first, again)  # an epoch's order depends on its seed only (resumable)


def test_one_pass_statistics_are_those_of_the_whole_file(tmp_path):
    frame = _table(3000, seed=2)
    frame.loc[7, "c1"] = 1e4  # an outlier: robust scaling must not follow it
    path = _write(frame, tmp_path / "t.csv")
    values = pd.read_csv(path).to_numpy(dtype=np.float32).astype(np.float64)  # what the model reads
    summary = summarize_file(path, rows=128, fraction=0.1, seed=0)
    assert summary.n_rows == 3000
    np.testing.assert_allclose(summary.mean, values.mean(0), rtol=1e-10)
    np.testing.assert_allclose(summary.std, values.std(0), rtol=1e-8)
    np.testing.assert_array_equal(summary.minimum, values.min(0))
    np.testing.assert_array_equal(summary.maximum, values.max(0))
    assert summary.total == pytest.approx(values.sum(), rel=1e-12)
    # a sample smaller than the file: rows of the file, spread over all of it
    small = summarize_file(path, rows=128, fraction=0.1, seed=0, sample_rows=500)
    assert small.sample.shape == (500, 6)
    rows_of = {tuple(r) for r in values}
    assert all(tuple(r) in rows_of for r in small.sample)
    places = np.flatnonzero(np.isin(values[:, 0], small.sample[:, 0]))
    assert places.min() < 300 and places.max() > 2700
    q1, q3 = np.percentile(small.sample, [25, 75], axis=0)
    scale = small.scaler("robust").scale
    np.testing.assert_allclose(scale, (q3 - q1) / 1.349)
    assert scale[1] < 10  # not set by the outlier


def test_a_streamed_run_resumes_from_its_checkpoint_to_the_same_model(tmp_path):
    path = _write(_table(), tmp_path / "t.parquet")

    class Interrupt(Exception):
        pass

    def stop_after_2(epoch, record):
        if epoch == 2:
            raise Interrupt

    settings = dict(SETTINGS, epochs=4, patience=None)
    whole = VAE(**settings)._fit_streamed(path, rows=100, window=300)
    broken = VAE(**settings, checkpoint_dir=str(tmp_path / "ckpt"))
    with pytest.raises(Interrupt):
        broken._fit_streamed(path, rows=100, window=300, callbacks=[stop_after_2])
    resumed = VAE(**settings, checkpoint_dir=str(tmp_path / "ckpt"))._fit_streamed(
        path, rows=100, window=300, resume=True
    )
    assert resumed.history_ == whole.history_
    for a, b in zip(resumed.module_.state_dict().values(), whole.module_.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_a_bad_value_deep_in_a_streamed_file_names_its_row(tmp_path):
    frame = _table(2000)
    frame.loc[1733, "c4"] = np.nan
    path = _write(frame, tmp_path / "t.csv")
    with pytest.raises(DataError, match=r"t\.csv: column 'c4', row 1734 \(line 1735 of the file\)"):
        VAE(**SETTINGS)._fit_streamed(path, rows=100, window=500)


def test_fit_file_streams_only_a_file_larger_than_the_budget(tmp_path):
    frame = _table(4000)
    path = _write(frame, tmp_path / "t.parquet")
    read_whole = VAE(**SETTINGS).fit_file(path, memory_budget="1G")
    streamed = VAE(**SETTINGS).fit_file(path, memory_budget="200K")
    fitted = VAE(**SETTINGS).fit(frame)
    assert read_whole.history_ == fitted.history_
    # several windows: a different order of rows, but as good a model
    assert streamed.history_ != fitted.history_
    assert streamed.history_[-1]["val_neg_elbo"] == pytest.approx(
        fitted.history_[-1]["val_neg_elbo"], rel=0.1
    )


def test_the_command_line_streams_training_under_a_small_memory_budget(tmp_path):
    frame = _table(4000)
    path = _write(frame, tmp_path / "t.csv")
    budget = ["--memory-budget", "200K"]
    run = [sys.executable, "-m", "vaekit", "train", str(path), "--epochs", "2", "--quiet", *budget]
    out = subprocess.run(
        [*run, "-o", str(tmp_path / "vae"), "--model", "vae"], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert "streamed" in out.stderr
    model = load(tmp_path / "vae")
    assert model.n_train_ + model.n_val_ == 4000 and model.n_epochs_ == 2
    out = subprocess.run(
        [*run, "-o", str(tmp_path / "det"), "--model", "auto"], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    # the detector learns from a uniform sample of at most 200,000 rows: here every row, no news
    # (it said "a uniform sample of 4000 of its 4000 rows")
    assert "uniform sample" not in out.stderr
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    assert summary["rows"] == 4000 and summary["trained_on"] == 4000


def test_a_sample_made_only_of_the_rows_that_may_enter_is_the_sample_of_every_row():
    """The uniform sample of a file keeps the rows of the k smallest random keys: rows whose key
    can no longer be among them need not be made (clean skips their fields), and skipping them
    keeps the same rows, in the order they came."""
    from vaekit.streaming import _Smallest

    rng = np.random.default_rng(0)
    every, entering = _Smallest(50), _Smallest(50)
    made = 0
    for start in range(0, 2_000, 37):
        keys = rng.random(37)
        places = np.arange(start, start + 37)
        every.add(keys, places, places[:, None] * 1.0)
        enter = entering.entering(keys)
        made += len(enter)
        entering.add(keys[enter], places[enter], places[enter, None] * 1.0)
    for a, b in zip(every.rows(), entering.rows(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert len(every.rows()[0]) == 50 and np.all(np.diff(every.rows()[1]) > 0)
    assert made < 500  # of 2,035 rows
