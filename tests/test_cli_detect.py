"""`vaekit train --model auto|rda` and `vaekit score`: detectors from the command line."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from vaekit.cli import main


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """A CSV of rows near a 2-D manifold, with 10 rows whose column 'c3' is corrupted."""
    rng = np.random.RandomState(0)
    z = rng.normal(size=(600, 2))
    X = np.tanh(z @ rng.normal(size=(2, 8))) + 0.03 * rng.normal(size=(600, 8))
    bad = np.arange(0, 600, 60)
    X[bad, 3] += 4.0
    folder = tmp_path_factory.mktemp("detect")
    path = folder / "data.csv"
    pd.DataFrame(X, columns=[f"c{j}" for j in range(8)]).to_csv(path, index=False)
    return folder, path, bad


@pytest.mark.parametrize("kind", ["auto", "rda"])
def test_train_a_detector_and_score_a_file(planted, capsys, kind):
    folder, data, bad = planted
    model = folder / f"det-{kind}"
    assert main(["train", str(data), "-o", str(model), "--model", kind, "--quiet"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["rows"] == 600 and summary["detector"] in ("AnomalyDetector", "RobustAutoencoderDetector")
    out = folder / f"scores-{kind}.csv"
    assert main(["score", str(model), str(data), "-o", str(out)]) == 0
    scores = pd.read_csv(out)
    assert list(scores.columns[:3]) == ["row", "score", "label"]
    assert list(scores["row"]) == list(range(600))
    truth = np.isin(scores["row"], bad)
    assert roc_auc_score(truth, scores["score"]) > 0.95
    assert scores.loc[bad, "label"].mean() >= 0.7 and scores["label"].sum() <= 25
    if kind == "auto":  # the robust AE's attribution is weaker: see the notes of issue 5
        assert (scores.loc[bad, "top1"] == "c3").mean() >= 0.9
    flagged = scores["label"] == 1
    shares = scores.loc[flagged, ["top1_share", "top2_share", "top3_share"]].to_numpy()
    assert (np.diff(shares, axis=1) <= 0).all()  # sorted, largest first
    # the others' are not computed: their shares are near zero, and noise orders them
    assert scores.loc[~flagged, ["top1", "top1_share"]].isna().all().all()


def test_score_with_a_plain_model_and_a_fraction(planted, capsys):
    folder, data, bad = planted
    model = folder / "ae"
    assert (
        main(
            [
                "train",
                str(data),
                "-o",
                str(model),
                "--model",
                "ae",
                "--latent",
                "2",
                "--epochs",
                "60",
                "--quiet",
            ]
        )
        == 0
    )
    out = folder / "scores-ae.parquet"
    assert main(["score", str(model), str(data), "-o", str(out), "--contamination", "0.05"]) == 0
    scores = pd.read_parquet(out)
    assert scores["label"].sum() == 30
    # a plain AE with early stopping on 600 rows: 8 to 10 of the 10 depending on the seed
    assert scores.loc[bad, "label"].mean() >= 0.8
    assert roc_auc_score(np.isin(scores["row"], bad), scores["score"]) > 0.9


def test_single_model_commands_refuse_an_ensemble(planted, capsys):
    folder, data, _ = planted
    model = folder / "ens"
    assert main(["train", str(data), "-o", str(model), "--model", "auto", "--quiet"]) == 0
    capsys.readouterr()
    assert main(["encode", str(model), str(data), "-o", str(folder / "z.csv")]) == 2
    assert "use 'vaekit score'" in capsys.readouterr().err


def test_bad_contamination_is_a_usage_error(planted, capsys):
    folder, data, _ = planted
    with pytest.raises(SystemExit) as exit_info:
        main(["train", str(data), "-o", str(folder / "x"), "--model", "auto", "--contamination", "0.9"])
    assert exit_info.value.code == 2
    assert "(0, 0.5]" in capsys.readouterr().err


def test_score_names_the_file_for_a_missing_column(planted, capsys):
    folder, data, _ = planted
    model = folder / "det-missing"
    assert main(["train", str(data), "-o", str(model), "--model", "auto", "--quiet"]) == 0
    partial = folder / "partial.csv"
    pd.read_csv(data).drop(columns=["c5"]).to_csv(partial, index=False)
    capsys.readouterr()
    assert main(["score", str(model), str(partial), "-o", str(folder / "s.csv")]) == 2
    err = capsys.readouterr().err
    assert "partial.csv" in err and "c5" in err
