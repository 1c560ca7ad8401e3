"""Scoring with Dask on a LocalCluster of 2 worker processes: the single-process scores."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from vaekit import VAE, AnomalyDetector, ParameterError

dd = pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("distributed")


def test_two_workers_score_a_partitioned_table_like_one_process(tmp_path):
    rng = np.random.RandomState(0)
    t = rng.normal(size=400)
    frame = pd.DataFrame({"a": t, "b": 2 * t + 0.05 * rng.normal(size=400), "c": np.where(t > 0, "x", "y")})
    frame.loc[[5, 222], "b"] = [8.0, -7.0]
    detector = AnomalyDetector(random_state=0).fit(frame)
    detector.save(tmp_path / "model")
    for part in range(4):
        frame.iloc[part * 100 : (part + 1) * 100].to_parquet(tmp_path / f"part{part}.parquet")

    from vaekit.cluster import loads_so_far, score_dask

    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        table = dd.read_parquet(str(tmp_path / "part*.parquet"))
        scores = score_dask(table, tmp_path / "model").compute()
        again = score_dask(table, tmp_path / "model").compute()  # the workers reuse their model
        loads = client.run(loads_so_far)
    assert len(loads) == 2 and all(n <= 1 for n in loads.values()) and sum(loads.values()) >= 1
    expected = detector.decision_function(frame)
    np.testing.assert_allclose(scores["score"].to_numpy(), expected, rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(scores["label"].to_numpy(), (expected > detector.threshold_).astype(int))
    np.testing.assert_array_equal(again["score"].to_numpy(), scores["score"].to_numpy())
    assert set(scores["score"].nlargest(2).index) == {5, 222}
    assert list(scores.loc[[5, 222], "top1"]) == ["b", "b"]


def test_a_plain_model_needs_a_threshold(tmp_path):
    from vaekit.cluster import score_dask

    X = np.random.RandomState(0).normal(size=(100, 3))
    VAE(latent_dim=2, hidden=(8,), epochs=2, random_state=0).fit(X).save(tmp_path / "vae")
    table = dd.from_pandas(pd.DataFrame(X, columns=["x0", "x1", "x2"]), npartitions=2)
    with pytest.raises(ParameterError, match="threshold"):
        score_dask(table, tmp_path / "vae")
    scores = score_dask(table, tmp_path / "vae", threshold=5.0).compute(scheduler="synchronous")
    assert len(scores) == 100 and set(scores["label"]) <= {0, 1}
