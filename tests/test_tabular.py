"""Mixed tables: column typing, categories with a categorical likelihood, gaps masked, schema checks."""

from __future__ import annotations

import json
import logging

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import roc_auc_score

import vaekit
from vaekit import AnomalyDetector, DataError
from vaekit.cli import main
from vaekit.tabular import DAY_FIRST, TableEncoder, day_first, parse_dates, slips


def mixed_table(n: int = 600, seed: int = 0) -> pd.DataFrame:
    """Numbers tied to a category and a date, plus columns that must be left out."""
    rng = np.random.RandomState(seed)
    city = rng.choice(["Lyon", "Oslo", "Porto"], size=n, p=[0.5, 0.3, 0.2])
    base = {"Lyon": 10.0, "Oslo": 2.0, "Porto": 18.0}
    temperature = np.array([base[c] for c in city]) + rng.normal(0, 1, n)
    when = pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.randint(0, 365, n), unit="D")
    return pd.DataFrame(
        {
            "id": np.arange(n),
            "city": city,
            "temperature": temperature,
            "humidity": 80 - 2 * temperature + rng.normal(0, 1, n),
            "raining": temperature < 5,
            "day": when.strftime("%Y-%m-%d"),
            "source": "sensor",
            "comment": [f"free text note number {i} about the weather" for i in range(n)],
        }
    )


def test_columns_are_typed_and_the_unusable_ones_named(caplog):
    with caplog.at_level(logging.WARNING, logger="vaekit"):
        encoder = TableEncoder().fit(mixed_table())
    kinds = {c.name: c.kind for c in encoder.columns}
    assert kinds == {
        "city": "categorical",
        "temperature": "numeric",
        "humidity": "numeric",
        "raining": "numeric",
        "day": "datetime",
    }
    assert set(encoder.dropped) == {"id", "source", "comment"}
    assert "identifier" in encoder.dropped["id"] and encoder.dropped["source"] == "constant"
    assert "id" in caplog.text and "comment" in caplog.text
    matrix, mask = encoder.transform(mixed_table())
    assert matrix.shape == (600, 1 + 1 + 1 + 3 + 4) and mask is None  # city: 3 levels + other
    city = next(c for c in encoder.columns if c.name == "city")
    assert city.levels == ["Lyon", "Oslo", "Porto"]
    np.testing.assert_allclose(matrix[:, encoder.slices()[0]].sum(axis=1), 1.0)
    assert TableEncoder.from_dict(json.loads(json.dumps(encoder.to_dict()))) == encoder


def test_dates_written_day_first_are_read_day_first_in_every_batch(caplog):
    """31/12/2024 and 01/02/2024 in one column: before, each cell was read alone (dateutil), the
    second as the 2nd of January, the first as the 31st of December; the order is now the
    column's, learnt in fit and kept in the model, so a batch of only 01/02-like dates is read
    as the whole column is. Month-first and ISO dates as before."""
    stamps = pd.date_range("2024-01-01", periods=400, freq="D")
    frame = pd.DataFrame({"when": stamps.strftime("%d/%m/%Y"), "x": np.arange(400.0)})
    assert day_first(frame["when"]) and not day_first(pd.Series(stamps.strftime("%m/%d/%Y")))
    read = parse_dates(frame["when"], dayfirst=True)
    assert (read == stamps).all()
    assert parse_dates(pd.Series(["01/02/2024", "13/02/2024"]), dayfirst=True).tolist() == [
        pd.Timestamp("2024-02-01"),
        pd.Timestamp("2024-02-13"),
    ]
    assert parse_dates(pd.Series(["01/02/2024", "2024-02-13T10:00+01:00", "x"])).tolist()[:2] == [
        pd.Timestamp("2024-01-02"),
        pd.Timestamp("2024-02-13 09:00"),
    ]
    encoder = TableEncoder().fit(frame)
    column = encoder.columns[0]
    assert column.kind == "datetime" and column.written == DAY_FIRST
    assert TableEncoder.from_dict(json.loads(json.dumps(encoder.to_dict()))) == encoder
    whole, _ = encoder.transform(frame)
    ambiguous = frame.iloc[31:43]  # 01/02/2024 to 12/02/2024: month first, 2nd of January to 2nd of December
    part, _ = encoder.transform(ambiguous.reset_index(drop=True))
    np.testing.assert_allclose(part, whole[31:43], atol=1e-6)
    # a value that is not a date is scored as a gap, and said so
    wrong = frame.iloc[:3].assign(when=["01/02/2024", "45/13/2024", ""])
    with caplog.at_level(logging.WARNING, logger="vaekit"):
        _, mask = encoder.transform(wrong, "new.csv")
    assert mask[:, 0].tolist() == [1, 0, 0]
    assert "new.csv: column 'when' has value(s) that are not dates ('45/13/2024')" in caplog.text


def test_dates_with_month_names_are_dates():
    """3 Mar 2024, Mar 3, 2024, March 3 2024, 3-Mar-2024: before, none was tried as a date (a
    column of them left out as free text); now they are, a column of them is dates, and a word
    that begins like a month (Marathon 5, Mayor 3) or an impossible date (31 Feb 2024) is not.
    Mar 2024 and 03/2024 were read only one by one (dateutil), not by clean."""
    stamps = pd.date_range("2023-01-01", periods=300, freq="D")
    for written in ("%d %b %Y", "%b %d, %Y", "%B %d %Y", "%d-%b-%Y", "%a, %d %b %Y %H:%M"):
        text = pd.Series(stamps.strftime(written))
        assert (parse_dates(text) == stamps).all(), written
        encoder = TableEncoder().fit(pd.DataFrame({"when": text, "x": np.arange(300.0)}))
        assert encoder.columns[0].kind == "datetime", written
    # a month and a year alone, which pandas does not guess a format for: the first of the month
    for written in ("%b %Y", "%B %Y", "%m/%Y"):
        months = pd.Series(stamps[:40].strftime(written))
        read = parse_dates(months, one_by_one=False)  # as clean reads them: by a format, not one by one
        assert (read == stamps[:40].to_period("M").to_timestamp()).all(), written
    odd = parse_dates(pd.Series(["31 Feb 2024", "Marathon 5", "Mayor 3", "12 Main St", "Sept. 5, 2023"]))
    assert odd.isna().tolist() == [True, True, True, True, False]
    assert odd.iloc[4] == pd.Timestamp("2023-09-05")


def test_a_time_alone_is_a_time_of_one_fixed_day_and_a_wrong_one_garbage(tmp_path, caplog):
    """14:30 alone: before, dateutil read it as 14:30 today, so a column of times trained on one
    day was scored a day off the next (every row far out), and clean, whose formats did not read
    it, kept '25:61'. Now a time alone is that time of 1970-01-01, whenever it is read; '25:61'
    is "not a time" (it was "not a date", in a column of times)."""
    from vaekit.clean import clean

    rng = np.random.default_rng(0)
    hours, minutes = rng.integers(8, 18, 300), rng.integers(0, 60, 300)
    times = pd.Series([f"{h:02d}:{m:02d}" for h, m in zip(hours, minutes, strict=True)])
    for one_by_one in (True, False):
        read = parse_dates(times, one_by_one=one_by_one)
        assert (read.dt.normalize() == pd.Timestamp("1970-01-01")).all()
        assert (read.dt.hour * 60 + read.dt.minute == hours * 60 + minutes).all()
    assert parse_dates(pd.Series(["2:30 PM", "11:05 AM", "25:61"])).tolist() == [
        pd.Timestamp("1970-01-01 14:30"),
        pd.Timestamp("1970-01-01 11:05"),
        pd.NaT,
    ]
    frame = pd.DataFrame({"start": times, "x": rng.normal(size=300)})
    frame.loc[7, "start"] = "25:61"
    encoder = TableEncoder().fit(frame)
    assert encoder.columns[0].kind == "datetime"
    with caplog.at_level(logging.WARNING, logger="vaekit"):
        encoder.transform(frame)
    assert "column 'start' has value(s) that are not times ('25:61')" in caplog.text
    path = tmp_path / "times.csv"
    frame.to_csv(path, index=False)
    result = clean(path, tmp_path / "out", verbose=0)
    garbage = pd.read_csv(tmp_path / "out" / "garbage.csv", keep_default_na=False).set_index("vaekit_row")
    assert result.n_unparseable == 1
    assert garbage.loc[8, "vaekit_reason"] == "column 'start': '25:61' is not a time"


def test_a_misspelt_category_is_flagged_and_named():
    """'Deutschland' once among 3,000 rows of DE, FR, US and UK, a column the numbers say nothing
    of: before, the row was not flagged (its score the highest here, but under the threshold; the
    246th of 3,000 in a file with more columns: the autoencoders reconstruct a level they never
    learnt about as badly as the rest of the column's noise); now the category sign flags it and
    says which field."""
    rng = np.random.default_rng(0)
    z = rng.normal(size=(3000, 2))
    frame = pd.DataFrame(np.tanh(z @ rng.normal(size=(2, 4))), columns=list("abcd"))
    frame["country"] = rng.choice(["DE", "FR", "US", "UK"], 3000, p=[0.3, 0.2, 0.4, 0.1])
    frame.loc[77, "country"] = "Deutschland"
    detector = AnomalyDetector(random_state=0).fit(frame)
    signs = detector.signs(frame)
    assert signs["category"].idxmax() == 77 and signs.max(axis=1).idxmax() == 77
    assert detector.labels_[77] == 1 and detector.labels_.mean() < 0.01
    why = detector.why(frame.iloc[[77]])[0]
    assert why == (
        "a category its column seldom holds (misspelt, or from elsewhere?) "
        "(country: a value that fewer than 2 training rows hold)"
    ), why
    assert detector.top_features(frame.iloc[[77]])[0][0, 0] == "country"
    # a table of categories alone has the sign too (the cell model needs numbers)
    words = frame[["country"]].assign(plan=rng.choice(["basic", "plus", "pro"], 3000))
    alone = AnomalyDetector(random_state=0).fit(words)
    assert alone.signs(words)["category"].idxmax() == 77 and alone.labels_[77] == 1


def test_the_category_sign_is_saved_and_loaded(tmp_path):
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"x": rng.normal(size=600), "kind": rng.choice(["a", "b", "c"], 600)})
    frame.loc[5, "kind"] = "q"
    detector = AnomalyDetector(random_state=0).fit(frame)
    detector.save(tmp_path / "det")
    loaded = vaekit.load(tmp_path / "det")
    torch.testing.assert_close(loaded.category_shares_, detector.category_shares_, equal_nan=True)
    pd.testing.assert_frame_equal(loaded.signs(frame), detector.signs(frame))
    assert "category" in loaded.signs(frame)


def test_the_categorical_error_is_the_cross_entropy():
    frame = mixed_table()[["city", "temperature"]]
    detector = AnomalyDetector(random_state=0, steps=30).fit(frame)
    x, _ = detector._encoded(frame.iloc[:5])
    logits = torch.randn(detector.n_models, 5, x.shape[1])
    errors = detector._column_errors(logits, x)
    where = detector.encoder_.slices()[0]
    by_hand = -torch.log(torch.softmax(logits[..., where], dim=-1)[..., x[:, where].argmax(dim=1)])
    by_hand = by_hand.diagonal(dim1=1, dim2=2)  # each row's own level
    torch.testing.assert_close(errors[..., 0], by_hand)
    torch.testing.assert_close(errors[..., 1], (logits[..., where.stop] - x[:, where.stop]) ** 2)


@pytest.fixture(scope="module")
def fitted():
    frame = mixed_table()
    return frame, AnomalyDetector(random_state=0).fit(frame)


def test_planted_garbage_in_a_mixed_table_is_found_and_explained(fitted):
    _, detector = fitted
    test = mixed_table(200, seed=1)
    bad_number = [3, 50, 120]
    test.loc[bad_number, "humidity"] += 40  # a wrong value, within the column's range for other cities
    bad_city = [10, 90]
    test.loc[bad_city, "city"] = "Tokyo"  # never seen
    test.loc[[20, 140], "city"] = test.loc[[20, 140], "city"].map(
        {"Lyon": "Oslo", "Oslo": "Porto", "Porto": "Lyon"}
    )
    bad = bad_number + bad_city + [20, 140]
    y = np.isin(np.arange(200), bad)
    scores = detector.decision_function(test)
    assert roc_auc_score(y, scores) > 0.95
    names, _ = detector.top_features(test.loc[bad_number])
    assert list(names[:, 0]) == ["humidity"] * 3
    # a city swapped for the most common one (row 20: Porto's weather in Lyon) is undone by
    # another level, not by the most common one
    # (the context sign finds the city unlikely given the weather: the weather shares the blame,
    # less of it, as a whole row of weather may be the wrong part)
    names, shares = detector.top_features(test.loc[[20, 140]])
    assert list(names[:, 0]) == ["city", "city"] and (shares[:, 0] > 1.5 * shares[:, 1]).all()


@pytest.fixture(scope="module")
def customers():
    """Customers with an income and a spend tied to it, and a detector fitted on them."""
    rng = np.random.RandomState(0)
    n = 800
    income = np.exp(rng.normal(10.5, 0.4, n))
    frame = pd.DataFrame(
        {
            "region": rng.choice(["north", "south", "east"], n),
            "age": rng.randint(18, 80, n),
            "income": income,
            "spend": income * rng.uniform(0.05, 0.15, n),
            "visits": rng.poisson(6, n),
        }
    )
    return frame, AnomalyDetector(random_state=0).fit(frame)


def test_fields_each_enough_to_flag_a_row_share_its_blame(customers):
    """Two amounts both far out (a record in cents): setting either right leaves the row flagged
    by the other, so the drop of the score alone blames neither; the blame goes to both."""
    frame, detector = customers
    rows = frame.iloc[:20].copy()
    rows[["income", "spend"]] *= 100
    assert (detector.decision_function(rows) > detector.threshold_).all()
    names, shares = detector.top_features(rows, n=2)
    assert all(set(pair) == {"income", "spend"} for pair in names)
    assert (shares.sum(axis=1) > 0.9).all() and (shares.min(axis=1) > 0.25).all()


def test_the_rises_are_scored_for_flagged_rows_only(customers, monkeypatch):
    """The rises (the typical row taking a row's value) cost as many scoring passes again as the
    drops: only the flagged rows, whose explanation is read, get them; the others keep the drops,
    and a flagged row's blame is the same among any rows."""
    frame, detector = customers
    bad = frame.iloc[:20].copy()
    bad[["income", "spend"]] *= 100
    rows = pd.concat([bad, frame.iloc[20:220]])
    flagged = detector.decision_function(rows) > detector.threshold_
    assert flagged[:20].all() and flagged.sum() < 25
    scored = []
    row_scores = detector._row_scores

    def counted(x, mask):
        scored.append(len(x))
        return row_scores(x, mask)

    monkeypatch.setattr(detector, "_row_scores", counted)
    blame = detector.feature_scores(rows)
    with_rises = sum(scored)
    scored.clear()
    monkeypatch.setattr(detector, "threshold_", np.inf)  # no row flagged: no rises at all
    drops_only = detector.feature_scores(rows)
    candidates = min(len(frame.columns), detector.ATTRIBUTION_CANDIDATES)
    assert 0 < with_rises - sum(scored) <= flagged.sum() * candidates
    np.testing.assert_array_equal(blame[~flagged], drops_only[~flagged])
    monkeypatch.undo()
    np.testing.assert_allclose(detector.feature_scores(bad), blame[:20], rtol=1e-5, atol=1e-6)


def test_missing_cells_are_masked_not_zero(fitted):
    frame, detector = fitted
    rows = frame.iloc[:50].copy()
    rows.loc[rows.index[:25], "humidity"] = np.nan
    rows.loc[rows.index[25:], "city"] = None
    x, mask = detector._encoded(rows)
    assert mask is not None and mask[:25, 2].eq(0).all() and mask[25:, 0].eq(0).all()
    with torch.no_grad():
        out = detector.module_(x)
    base = detector._observed_mean(detector._column_errors(out, x), mask)
    out[:, :25, 5] += 50.0  # the reconstruction of a missing humidity (encoded column 5) does not count
    out[:, 25:, 0:4] = torch.tensor([0.0, 0.0, 9.0, 0.0])  # nor that of a missing city
    torch.testing.assert_close(detector._observed_mean(detector._column_errors(out, x), mask), base)
    # a good row with a gap is still judged normal, and a bad row with a gap still bad
    assert (detector.decision_function(rows) < detector.threshold_).mean() >= 0.95
    worse = rows.iloc[:5].copy()
    worse["temperature"] = 60.0
    assert (detector.decision_function(worse) > detector.threshold_).all()
    assert np.isfinite(detector.feature_scores(rows)).all()
    assert (detector.feature_scores(rows.iloc[:25])[:, detector.feature_names.index("humidity")] == 0).all()


def test_scoring_schema_rules(fitted, caplog):
    frame, detector = fitted
    with pytest.raises(DataError, match="temperature"):
        detector.decision_function(frame.drop(columns=["temperature"]))
    with pytest.raises(DataError, match=r"humidity.*row 3"):
        bad = frame.iloc[:5].copy()
        bad["humidity"] = bad["humidity"].astype(object)
        bad.iloc[2, bad.columns.get_loc("humidity")] = "wet"
        detector.decision_function(bad)
    extra = frame.iloc[:20].assign(new_column=1.0)
    with caplog.at_level(logging.WARNING, logger="vaekit"):
        scores = detector.decision_function(extra)
        assert "new_column" in caplog.text
        np.testing.assert_array_equal(scores, detector.decision_function(frame.iloc[:20]))
        detector.decision_function(frame.iloc[:3].assign(city="Tokyo"))
        assert "Tokyo" in caplog.text and "other" in caplog.text
    # the dropped columns are not needed at scoring time
    detector.decision_function(frame.drop(columns=["id", "comment", "source"]))


def test_mixed_detector_saves_and_loads(fitted, tmp_path):
    frame, detector = fitted
    detector.save(tmp_path / "det")
    loaded = vaekit.load(tmp_path / "det")
    np.testing.assert_array_equal(loaded.decision_function(frame), detector.decision_function(frame))
    np.testing.assert_array_equal(loaded.feature_scores(frame[:50]), detector.feature_scores(frame[:50]))
    assert loaded.dropped_columns_ == detector.dropped_columns_
    rebuilt = loaded.reconstruct(frame[:5])
    assert list(rebuilt.columns) == loaded.feature_names and set(rebuilt["city"]) <= {"Lyon", "Oslo", "Porto"}


def trained_and_scored(frame: pd.DataFrame, path) -> pd.DataFrame:
    """The scores of ``frame``, written as the CSV file ``path``, by ``vaekit train --model auto``
    (into ``det`` beside it) and ``vaekit score``."""
    frame.to_csv(path, index=False)
    assert main(["train", str(path), "-o", str(path.parent / "det"), "--model", "auto", "--quiet"]) == 0
    assert main(["score", str(path.parent / "det"), str(path), "-o", str(path.parent / "scores.csv")]) == 0
    return pd.read_csv(path.parent / "scores.csv")


def test_cli_trains_and_scores_a_mixed_csv(tmp_path, capsys):
    frame = mixed_table(400)
    frame.loc[7, "humidity"] = 400.0
    path = tmp_path / "mixed.csv"
    scores = trained_and_scored(frame, path)
    assert scores["score"].idxmax() == 7 and scores.loc[7, "top1"] == "humidity"
    capsys.readouterr()
    assert main(["train", str(path), "-o", str(tmp_path / "rda"), "--model", "rda", "--quiet"]) == 2
    assert "city" in capsys.readouterr().err  # the other detectors take numbers only, and say so


def test_numbers_formatted_as_text_are_numbers_in_training_and_scoring(tmp_path, capsys):
    """$1,234.50, 12.5%, 1.234,50 € and 3.5 kg as a CSV read by pandas gives them (text): numeric
    columns read so at scoring too (before: left out as free text, and the price a thousand times
    too large unseen); a word there, or a number in another unit, is an error naming the column and
    the row; files without the fields load."""
    rng = np.random.RandomState(0)
    base = rng.lognormal(3, 0.5, 400)
    frame = pd.DataFrame(
        {
            "price": [f"${v:,.2f}" for v in base * 100],
            "tax": [f"{v:.1f}%" for v in 10 + base / 10],
            "euros": [f"{v:,.2f} €".replace(",", " ").replace(".", ",") for v in base * 90],
            "size": [f"{v:.1f} kg" for v in base / 4],
            "weight": np.round(base * 2 + rng.normal(0, 0.1, 400), 3),
        }
    )
    encoder = TableEncoder().fit(frame)
    assert {c.name: (c.kind, c.written, c.unit) for c in encoder.columns} == {
        "price": ("numeric", ".", "$"),
        "tax": ("numeric", ".", "%"),
        "euros": ("numeric", ",", "€"),
        "size": ("numeric", ".", "kg"),
        "weight": ("numeric", "", ""),
    }
    numbers = encoder.numbers(frame[:3])
    np.testing.assert_allclose(
        numbers[:, :3], np.c_[base[:3] * 100, 10 + base[:3] / 10, base[:3] * 90], atol=0.06
    )
    assert TableEncoder.from_dict(json.loads(json.dumps(encoder.to_dict()))) == encoder
    older = encoder.to_dict()
    for column in older["columns"]:
        del column["written"], column["unit"]
    assert TableEncoder.from_dict(older).columns[4] == encoder.columns[4]
    frame.loc[7, "price"] = f"${base[7] * 100000:,.2f}"
    path = tmp_path / "prices.csv"
    scores = trained_and_scored(frame, path)
    assert scores["score"].idxmax() == 7 and scores.loc[7, "top1"] == "price"
    frame.loc[12, "price"] = "call us"
    frame.to_csv(path, index=False)
    capsys.readouterr()
    assert main(["score", str(tmp_path / "det"), str(path), "-o", str(tmp_path / "scores2.csv")]) == 2
    assert "column 'price', row 13: 'call us' is not a number" in capsys.readouterr().err
    frame.loc[12, "price"] = "$12.00"
    frame.loc[20, "size"] = "4.4 lb"
    frame.to_csv(path, index=False)
    assert main(["score", str(tmp_path / "det"), str(path), "-o", str(tmp_path / "scores3.csv")]) == 2
    assert "column 'size', row 21: '4.4 lb' is in lb, not the column's kg" in capsys.readouterr().err


def test_slips_are_a_common_values_other_spellings_and_nothing_else():
    """A rare value is a slip of a common one when it is the same in another case or spacing, or
    a letter off, missing, added or two swapped (two for long values); among true and false any
    third value is; short values, codes with digits, values not rare enough beside theirs, and
    rare values near no common one are not."""
    counts = {"Female": 1500, "Male": 1490, "Femal": 1, "female": 1, "MALE": 2, "Fe male": 1, "Mael": 1}
    found = slips(counts)
    assert found == {
        "Femal": "'Female' misspelt? 1,500 rows hold it",
        "female": "'Female' written another way? 1,500 rows hold it",
        "MALE": "'Male' written another way? 1,490 rows hold it",
        "Fe male": "'Female' written another way? 1,500 rows hold it",
    }  # 'Mael': 'Male' has four letters, as have 'Iran' and 'Iraq'
    countries = {"Germany": 900, "Portugal": 60, "Netherlands": 300, "Germnay": 1, "Portugl": 1}
    countries |= {"Nethrelands": 1, "Netherlnd": 1, "Luxembourg": 1, "Germy": 1, "Poland": 3}
    assert set(slips(countries)) == {"Germnay", "Portugl", "Nethrelands", "Netherlnd"}
    assert slips({"TRUE": 2400, "FALSE": 600, "maybe": 1, "true": 1}) == {
        "maybe": "'TRUE' or 'FALSE'",
        "true": "'TRUE' written another way? 2,400 rows hold it",
    }
    assert slips({"yes": 500, "no": 300, "unsure": 1}) == {"unsure": "'yes' or 'no'"}
    assert slips({"red": 50, "blue": 30, "green": 1}) == {}  # two values, not true and false
    assert slips({"Mr": 900, "Dr": 3, "Mrs": 500, "Ms": 30}) == {}
    assert slips({"A100-X": 500, "A101-X": 2}) == {}
    assert slips({"inpatient ward a": 223, "inpatient ward w": 2, "inpatient wrd a": 1}) == {
        "inpatient wrd a": "'inpatient ward a' misspelt? 223 rows hold it"
    }  # wards a and w: labels of a series (R's medicaldata::covid_testing)
    assert slips({"Female": 30, "Femal": 2}) == {}  # 15 times as many: not rare enough beside it
    assert slips({"Female": 5000, "Femal": 40}) == {}  # 40 rows: a value, not a slip
    assert slips({"Female": 10, "Femal": 1}) == {}  # too few rows to call 'Female' common
    names = {f"name{i}": 1 + i % 5 for i in range(150)} | {"Maria": 30, "Mario": 1}
    assert slips(names) == {}  # a column of names, most of them rare: no vocabulary to slip from
