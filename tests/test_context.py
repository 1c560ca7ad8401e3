"""The context sign (vaekit.context): a category the rest of its row makes unlikely."""

import json
import math
import re

import numpy as np
import pandas as pd
import pytest
import torch

import vaekit
from vaekit import AnomalyDetector
from vaekit.context import GRID, context_rarity, fit_tail, informed_columns, tail_mass


def test_a_fields_rarity_is_the_share_of_rows_expected_to_hold_a_level_that_unlikely():
    """1,000 rows, each told 90% / 10% between two levels: a good row holds a level at 10% in a
    tenth of the rows (rarity log 10), one at 5% in none (rarity: q itself, log 20), one at 95% or
    more in every row (0); two such columns judged together double the shares."""
    rows = torch.log(torch.tensor([[0.9, 0.1]], dtype=torch.float64)).expand(1000, -1)
    tail = fit_tail(tail_mass(rows), 1000)
    rarity = context_rarity(torch.log(torch.tensor([0.1, 0.05, 0.95, 1e-30], dtype=torch.float64)), tail)
    assert rarity[:3].tolist() == pytest.approx([math.log(10), math.log(20), 0.0], abs=1e-9)
    assert rarity[3] == pytest.approx(-float(GRID[0]))  # no rarer than the grid's end
    both = fit_tail(tail_mass(rows) * 2, 1000)
    assert float(context_rarity(torch.tensor([math.log(0.1)], dtype=torch.float64), both)) == pytest.approx(
        math.log(5)
    )


def test_one_member_computed_alone_gives_what_it_gives_among_all():
    from vaekit.context import ContextClassifier

    classifier = ContextClassifier(7, 5, hidden=8, members=2, generator=torch.Generator().manual_seed(0))
    x = torch.randn(30, 7)
    with torch.no_grad():
        torch.testing.assert_close(classifier.member(1, x), classifier(x)[1])
        torch.testing.assert_close(classifier.member(0, x), classifier(x)[0])


def test_a_column_hidden_in_every_row_reads_as_in_rows_of_mixed_columns():
    """Scoring hides one column in every row (a slice); training a column per row (an index)."""
    from vaekit.context import hidden_inputs

    groups = [(2, 5), (5, 7)]
    x, observed = torch.rand(6, 8), torch.ones(6, 4)
    alone = hidden_inputs(x, groups, torch.tensor([1] * 6), observed)
    mixed = hidden_inputs(x, groups, torch.tensor([1, 1, 1, 1, 1, 0]), observed)
    torch.testing.assert_close(alone[:5], mixed[:5])
    assert (alone[:, 5:7] == 0).all() and (mixed[5, 2:5] == 0).all() and (mixed[5, 5:7] == x[5, 5:7]).all()
    assert (alone[:, -2:] == torch.tensor([0.0, 1.0])).all() and (alone[:, :5] == x[:, :5]).all()


def test_only_the_columns_the_rest_of_a_row_tells_something_of_are_judged():
    gain = torch.tensor([0.3, 0.001, -0.05, 0.5], dtype=torch.float64)
    assert informed_columns(gain, most=8) == [3, 0]
    assert informed_columns(gain, most=1) == [3]


def _readings(n: int = 2000, seed: int = 0) -> pd.DataFrame:
    """Sensors' readings: the status says LOW below 3.5 volts; the colour of the case says
    nothing of the rest."""
    rng = np.random.default_rng(seed)
    volts = rng.uniform(3.2, 4.0, n)
    hour = rng.uniform(0, 24, n)
    temperature = 21 + 3 * np.sin(hour / 24 * 2 * np.pi) + rng.normal(0, 0.4, n)
    return pd.DataFrame(
        {
            "hour": hour.round(2),
            "temperature": temperature.round(2),
            "humidity": (55 - 2 * (temperature - 21) + rng.normal(0, 3, n)).round(1),
            "pressure": (1013 + rng.normal(0, 4, n)).round(1),
            "volts": volts.round(3),
            "status": np.where(volts < 3.5, "LOW", "OK"),
            "colour": rng.choice(["red", "green", "blue"], n),
        }
    )


def test_a_level_the_rest_of_the_row_rules_out_is_flagged_and_named():
    data = _readings()
    # away from the boundary and from each other (wrong levels side by side tell each other's)
    clear = np.flatnonzero(np.abs(data.volts.to_numpy() - 3.5) > 0.1)
    wrong = clear[np.argsort(data.volts.to_numpy()[clear])][10::160][:10]
    data.loc[wrong, "status"] = np.where(data.loc[wrong, "status"] == "LOW", "OK", "LOW")
    detector = AnomalyDetector(random_state=0).fit(data)
    judged = [detector.encoder_.columns[detector._groups[k][0]].name for k in detector.context_columns_]
    assert judged == ["status"]  # the colour is told by nothing
    signs = detector.signs(data)
    good = np.setdiff1d(np.arange(len(data)), wrong)
    # the sign tells every wrong level from every good one, and sets the score of most
    assert signs["context"].to_numpy()[wrong].min() > signs["context"].to_numpy()[good].max()
    top = signs.idxmax(axis=1).to_numpy()[wrong] == "context"
    assert top.mean() >= 0.6  # the others' sign may be larger: the autoencoders see it too
    assert detector.labels_[wrong].mean() >= 0.8 and detector.labels_[good].mean() <= 0.01
    row = wrong[top][0]
    level, other = data.status[row], {"LOW": "OK", "OK": "LOW"}[data.status[row]]
    reason = detector.why(data.iloc[[row]])[0]
    assert reason.startswith("a category the rest of the row makes unlikely")
    assert f"status = '{level}' where the rest of the row suggests '{other}'" in reason
    # either field may be the wrong one: a level that does not go with the volts, or volts that
    # do not go with it; the status is among the two blamed
    names, _ = detector.top_features(data.iloc[wrong], n=2)
    assert (names == "status").any(axis=1).all()
    # the report's account of the cut counts the signs the cut was raised for: all of them (the
    # category and context signs were left out of the count)
    counted = re.search(r"divided by the (\d+) signs a row can fail", detector.auto_rule)
    assert counted and int(counted.group(1)) == signs.shape[1]
    assert "a level the rest of its row makes so unlikely" in detector.auto_rule


def test_the_context_sign_of_good_rows_is_calibrated():
    """A level told only in part by the rest (p(A) = sigmoid(3x)): good rows pass the rarity
    fence (-log 0.13%) about as seldom as that, not one in a hundred."""
    rng = np.random.default_rng(2)
    x = rng.normal(size=4000)
    data = pd.DataFrame(
        {
            "x": x,
            "y": x + rng.normal(0, 0.3, 4000),
            "kind": np.where(rng.random(4000) < 1 / (1 + np.exp(-3 * x)), "A", "B"),
        }
    )
    detector = AnomalyDetector(random_state=0, steps=300).fit(data)
    assert detector.context_columns_ == [0]
    rarity = detector.signs(data)["context"].to_numpy()
    assert (rarity > -math.log(0.0013)).mean() <= 0.004
    assert (rarity > math.log(10)).mean() <= 0.2  # no more than twice a tenth: not overconfident


def test_a_table_whose_categories_nothing_tells_has_no_context_sign():
    rng = np.random.default_rng(3)
    data = pd.DataFrame(
        {"a": rng.normal(size=500), "b": rng.normal(size=500), "c": rng.choice(["u", "v"], 500)}
    )
    detector = AnomalyDetector(random_state=0, steps=100).fit(data)
    assert detector.context_ is None and "context" not in detector.signs(data).columns


def test_a_detector_with_its_context_classifier_saves_and_loads(tmp_path):
    from test_detectors import _rewrite_weights

    from vaekit.errors import ModelFileError

    data = _readings(600)
    detector = AnomalyDetector(random_state=0, steps=100).fit(data)
    assert detector.context_ is not None
    folder = detector.save(tmp_path / "det")
    loaded = vaekit.load(folder)
    pd.testing.assert_frame_equal(loaded.signs(data), detector.signs(data))
    assert loaded.why(data.iloc[:5]) == detector.why(data.iloc[:5])
    # a file with the classifier but not its table of shares is refused, naming the sign
    _rewrite_weights(folder, lambda tensors: tensors.pop("context_tail"))
    with pytest.raises(ModelFileError, match=r"part of the context sign.*retrain"):
        vaekit.load(folder)
    # a vaekit before the sign wrote neither: it loads without the sign
    config = _rewrite_weights(folder, lambda t: [t.pop(k) for k in list(t) if k.startswith("context")])
    config["detector"]["context"] = None
    (folder / "config.json").write_text(json.dumps(config))
    old = vaekit.load(folder)
    assert "context" not in old.signs(data).columns
    np.testing.assert_array_equal(
        old.decision_function(data), detector.signs(data).drop(columns="context").max(axis=1)
    )


def test_clean_puts_a_row_with_a_level_its_row_rules_out_in_the_garbage(tmp_path):
    from vaekit.cli import main

    data = _readings()
    wrong = [100, 700]
    for i in wrong:
        data.loc[i, "volts"] = 3.9 if data.status[i] == "LOW" else 3.3
    data.to_csv(tmp_path / "readings.csv", index=False)
    main(["clean", str(tmp_path / "readings.csv"), "-o", str(tmp_path / "out"), "-q"])
    garbage = pd.read_csv(tmp_path / "out" / "garbage.csv")
    assert set(wrong) <= set(garbage.vaekit_row - 1)
    assert len(garbage) <= 10
    reasons = garbage.set_index(garbage.vaekit_row - 1).vaekit_reason
    assert all("where the rest of the row suggests" in reasons[i] for i in wrong)
