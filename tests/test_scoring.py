"""Scoring files in record batches: the same scores as in memory, errors that name the file's row."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from vaekit import VAE, AnomalyDetector, DataError
from vaekit.cli import main
from vaekit.scoring import batch_rows, iter_table, parse_size, score_file


def _table(n: int = 300, seed: int = 0) -> pd.DataFrame:
    rng = np.random.RandomState(seed)
    t = rng.normal(size=n)
    frame = pd.DataFrame(
        {
            "a": t + 0.05 * rng.normal(size=n),
            "b": 2 * t + 0.05 * rng.normal(size=n),
            "c": -t + 0.05 * rng.normal(size=n),
            "kind": np.where(t > 0, "up", "down"),
        }
    )
    frame.loc[[17, 123, 250], "b"] = [9.0, -8.0, 7.5]  # off the line: outliers
    return frame


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    folder = tmp_path_factory.mktemp("scoring")
    frame = _table()
    frame.to_csv(folder / "data.csv", index=False)
    frame.to_parquet(folder / "data.parquet", index=False)
    detector = AnomalyDetector(random_state=0).fit(frame)
    detector.save(folder / "model")
    return folder, frame, detector


@pytest.mark.parametrize("name", ["data.csv", "data.parquet"])
def test_scores_in_many_small_batches_equal_the_scores_in_one(fitted, name):
    folder, frame, detector = fitted
    whole = score_file(detector, folder / name, folder / f"whole_{name}.csv", rows=None)
    parts = score_file(detector, folder / name, folder / f"parts_{name}.parquet", rows=7)
    assert whole["batches"] == 1 and parts["batches"] == 300 // 7 + 1
    assert whole["rows"] == parts["rows"] == 300 and whole["flagged"] == parts["flagged"]
    a = pd.read_csv(folder / f"whole_{name}.csv")
    b = pd.read_parquet(folder / f"parts_{name}.parquet")
    assert list(b["row"]) == list(range(300))
    np.testing.assert_allclose(b["score"], a["score"], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(a["score"], detector.decision_function(frame), rtol=1e-4, atol=1e-4)
    assert list(a["label"]) == list(b["label"])
    flagged = a["label"] == 1  # only these have top columns: a typical row's shares are near zero
    assert flagged.sum() >= 3 and (a["top1"] == b["top1"])[flagged].all()
    assert a.loc[~flagged, "top1"].isna().all() and b.loc[~flagged, "top1_share"].isna().all()
    assert set(a.nlargest(3, "score")["row"]) == {17, 123, 250}
    assert set(a.loc[a["row"].isin([17, 123, 250]), "top1"]) == {"b"}


def test_contamination_sets_the_threshold_from_a_first_pass_over_the_batches(fitted):
    folder, _, detector = fitted
    before = detector.threshold_
    summary = score_file(detector, folder / "data.csv", folder / "c.csv", rows=50, contamination=0.1)
    assert summary["flagged"] == 30
    assert detector.threshold_ == before  # the detector's own threshold is left alone


def test_cli_score_streams_a_file_larger_than_the_memory_budget(fitted, capsys):
    folder = fitted[0]
    assert batch_rows(folder / "data.parquet", parse_size("10K")) < 300
    assert batch_rows(folder / "data.parquet", parse_size("1G")) is None
    assert (
        main(["score", str(folder / "model"), str(folder / "data.parquet"), "-o", str(folder / "s1.parquet")])
        == 0
    )
    one = json.loads(capsys.readouterr().out)
    args = ["score", str(folder / "model"), str(folder / "data.parquet"), "-o", str(folder / "s2.csv")]
    assert main([*args, "--memory-budget", "10K"]) == 0
    many = json.loads(capsys.readouterr().out)
    assert one["batches"] == 1 and many["batches"] > 10
    assert one["flagged"] == many["flagged"]
    np.testing.assert_allclose(
        pd.read_csv(folder / "s2.csv")["score"],
        pd.read_parquet(folder / "s1.parquet")["score"],
        rtol=1e-4,
        atol=1e-4,
    )
    assert main([*args, "--memory-budget", "lots"]) != 0
    assert "memory budget" in capsys.readouterr().err


def test_an_error_in_a_later_batch_names_the_row_of_the_file(fitted, tmp_path):
    _, frame, detector = fitted
    bad = frame.astype({"a": object})
    bad.loc[150, "a"] = "n/a?"
    bad.to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(DataError, match=r"bad.csv.*column 'a', row 151"):
        score_file(detector, tmp_path / "bad.csv", tmp_path / "out.csv", rows=40)
    assert not (tmp_path / "out.csv").exists()  # nothing half-written under the final name
    assert [p.name for p in tmp_path.iterdir()] == ["bad.csv"]


def test_plain_models_score_by_batches_too(tmp_path, capsys):
    X = np.random.RandomState(0).normal(size=(200, 4))
    X[:4] += 12.0
    np.save(tmp_path / "x.npy", X)
    VAE(latent_dim=2, hidden=(16,), epochs=3, random_state=0).fit(X).save(tmp_path / "vae")
    base = ["score", str(tmp_path / "vae"), str(tmp_path / "x.npy")]
    assert main([*base, "-o", str(tmp_path / "a.csv")]) == 0
    assert main([*base, "-o", str(tmp_path / "b.csv"), "--memory-budget", "4K"]) == 0
    a, b = pd.read_csv(tmp_path / "a.csv"), pd.read_csv(tmp_path / "b.csv")
    np.testing.assert_allclose(a["score"], b["score"], rtol=1e-4, atol=1e-4)
    assert a["label"].sum() == b["label"].sum() > 0
    assert main([*base, "-o", str(tmp_path / "c.npy")]) == 2
    assert "CSV or Parquet" in capsys.readouterr().err
    chunks = list(iter_table(tmp_path / "x.npy", 64))
    assert [len(c) for c in chunks] == [64, 64, 64, 8] and chunks[-1].index[0] == 192


def test_parse_size():
    assert parse_size("512M") == 512 << 20 and parse_size("2G") == 2 << 30 and parse_size("1.5KiB") == 1536
    assert parse_size(1000) == 1000


def test_auto_on_a_file_cuts_where_the_detector_cut_its_training_rows(fitted):
    """The recommended detector's "auto" fences are learnt in fit: a file of the training rows,
    scored in batches with contamination="auto", gets the labels the fit gave."""
    folder, _frame, detector = fitted
    summary = score_file(
        detector, folder / "data.parquet", folder / "auto.csv", rows=50, contamination="auto"
    )
    labels = pd.read_csv(folder / "auto.csv")["label"].to_numpy()
    assert labels.sum() >= 3 and summary["flagged"] == labels.sum()
    assert np.array_equal(labels, detector.labels_)


def test_top_columns_are_listed_for_the_flagged_rows_of_any_table():
    """Only the flagged rows get top columns; a table with a column named 'images' is a table (an
    attribute lookup for a folder of images found that column)."""
    from vaekit.scoring import top_columns

    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(200, 3)), columns=["images", "x", "y"])
    frame.loc[7, "x"] = 40.0
    detector = AnomalyDetector(random_state=0, steps=20).fit(frame)
    labels = (detector.decision_function(frame) > detector.threshold_).astype(int)
    assert labels[7] == 1
    table = top_columns(detector, frame, labels, 2)
    assert list(table.columns) == ["top1", "top1_share", "top2", "top2_share"]
    assert table.loc[7, "top1"] == "x" and table["top1"].notna().sum() == labels.sum()
