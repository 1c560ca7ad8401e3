"""Data files in and out: round trips, atomic writes, and errors that name the file, column and row."""

from __future__ import annotations

import gzip

import numpy as np
import pandas as pd
import pytest

from vaekit import DataError, ModelFileError, read_table, write_table
from vaekit.io import as_matrix
from vaekit.preprocessing import Scaler


@pytest.fixture(scope="module")
def io_table() -> pd.DataFrame:
    """Real measurements with real (spaced) column names: the first columns of breast cancer."""
    from sklearn.datasets import load_breast_cancer

    return load_breast_cancer(as_frame=True).data.iloc[:50, :4].astype(np.float32)


# -- round trips ---------------------------------------------------------------------------
@pytest.mark.parametrize("suffix", [".csv", ".csv.gz", ".parquet", ".npy", ".npz"])
def test_write_then_read_gives_the_same_numbers(io_table, tmp_path, suffix):
    path = write_table(io_table, tmp_path / f"t{suffix}")
    back = read_table(path)
    assert back.shape == io_table.shape
    np.testing.assert_allclose(back.to_numpy(), io_table.to_numpy(), rtol=1e-6)
    if suffix in (".npy", ".npz"):  # arrays carry no names
        assert list(back.columns) == ["x0", "x1", "x2", "x3"]
    else:
        assert list(back.columns) == list(io_table.columns)


@pytest.mark.parametrize(
    "options",
    [{"sep": ";"}, {"sep": ";", "decimal": ","}, {"sep": "\t", "decimal": ","}, {"sep": "|"}],
    ids=["semicolons", "decimal-commas", "tabs-decimal-commas", "bars"],
)
def test_csv_files_as_other_tools_write_them_are_read_by_their_columns(io_table, tmp_path, options):
    """Semicolons, tabs or bars between fields, and numbers with a decimal comma (1,5; 1.234,5),
    as spreadsheets write them where the comma is the decimal mark; read_csv's defaults saw one
    column of text. Whole, gzipped, and a chunk at a time as large files are scored."""
    from vaekit.io import csv_options
    from vaekit.scoring import iter_table

    frame = io_table.astype(np.float64)
    for suffix in (".csv", ".csv.gz"):
        path = tmp_path / f"t{suffix}"
        frame.to_csv(path, index=False, **options)
        comma = {"decimal": ",", "thousands": "."} if options.get("decimal") else {}
        assert csv_options(path) == {"sep": options["sep"]} | comma
        back = read_table(path)
        assert list(back.columns) == list(frame.columns)
        np.testing.assert_allclose(back.to_numpy(), frame.to_numpy(), rtol=1e-6)
        chunks = list(iter_table(path, rows=7))
        assert len(chunks) == 8 and pd.concat(chunks).equals(back)
    (tmp_path / "dots.csv").write_text("a;b\n1.234,5;2,5\n-0,25;1.000\n")  # dots between thousands
    np.testing.assert_array_equal(
        read_table(tmp_path / "dots.csv").to_numpy(), [[1234.5, 2.5], [-0.25, 1000]]
    )
    io_table.to_csv(tmp_path / "plain.csv", index=False)
    assert csv_options(tmp_path / "plain.csv") == {}


def test_csv_gz_output_is_really_gzip(io_table, tmp_path):
    """The temporary name ends in .tmp, so pandas must not be left to infer the compression."""
    path = write_table(io_table, tmp_path / "t.csv.gz")
    with gzip.open(path, "rt") as fh:
        assert fh.readline().strip() == ",".join(io_table.columns)


def test_numpy_input_gets_string_column_names(tmp_path):
    write_table(np.arange(6.0).reshape(3, 2), tmp_path / "a.csv")
    assert (tmp_path / "a.csv").read_text().splitlines()[0] == "0,1"


def test_write_table_leaves_the_callers_frame_alone(tmp_path):
    frame = pd.DataFrame(np.ones((2, 2)), columns=[10, 20])
    write_table(frame, tmp_path / "a.parquet")
    assert list(frame.columns) == [10, 20]


def test_npz_with_one_array_under_another_key_is_read(tmp_path):
    np.savez(tmp_path / "a.npz", data=np.ones((3, 2)))
    assert read_table(tmp_path / "a.npz").shape == (3, 2)


# -- atomic writes -------------------------------------------------------------------------
def test_successful_write_leaves_no_temporary_file(io_table, tmp_path):
    write_table(io_table, tmp_path / "out.parquet")
    assert [p.name for p in tmp_path.iterdir()] == ["out.parquet"]


def test_failed_write_keeps_the_old_file_and_leaves_no_temporary_file(io_table, tmp_path, monkeypatch):
    target = tmp_path / "out.csv"
    target.write_text("old,content\n1,2\n")

    def half_write(self, path, *args, **kwargs):
        with open(path, "w") as fh:
            fh.write("half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pd.DataFrame, "to_csv", half_write)
    with pytest.raises(OSError, match="No space"):
        write_table(io_table, target)
    assert target.read_text() == "old,content\n1,2\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]


def test_write_to_a_folder_or_unknown_type_is_refused(io_table, tmp_path):
    (tmp_path / "dir").mkdir()
    with pytest.raises(DataError, match=r"dir: is a folder; give an output file name"):
        write_table(io_table, tmp_path / "dir")
    with pytest.raises(DataError, match=r"out\.xlsx: unknown output type '\.xlsx'"):
        write_table(io_table, tmp_path / "out.xlsx")
    assert not (tmp_path / "out.xlsx").exists()


# -- reading errors ------------------------------------------------------------------------
def _multi_npz(path):
    np.savez(path, a=np.ones((2, 2)), b=np.ones((2, 2)))


BAD_FILES = {
    # name: (file name, how to make it, expected message parts)
    "missing": ("nope.csv", None, ["nope.csv: no such file", "check the path"]),
    "empty": ("empty.csv", lambda p: p.write_bytes(b""), ["empty.csv: the file is empty", "header and rows"]),
    "blank_lines": ("blank.csv", lambda p: p.write_text("\n\n"), ["blank.csv: the file is empty"]),
    "header_only": (
        "hdr.csv",
        lambda p: p.write_text("a,b,c\n"),
        ["hdr.csv: has a header but no rows", "add rows"],
    ),
    "unknown_type": (
        "data.xlsx",
        lambda p: p.write_text("x"),
        ["data.xlsx: unknown file type '.xlsx'", ".csv"],
    ),
    "corrupt_parquet": (
        "bad.parquet",
        lambda p: p.write_bytes(b"PAR1 this is not really parquet"),
        ["bad.parquet: cannot be read as PARQUET", "is the file complete"],
    ),
    "ragged_csv": (
        "ragged.csv",
        lambda p: p.write_text("a,b\n1,2\n3,4,5\n"),
        ["ragged.csv: cannot be parsed as CSV", "line 3"],
    ),
    "corrupt_npy": (
        "bad.npy",
        lambda p: p.write_bytes(b"\x93NUMPY garbage"),
        ["bad.npy: cannot be read as NPY"],
    ),
    "npz_without_X": ("two.npz", _multi_npz, ["two.npz: holds the arrays ['a', 'b']", "key 'X'"]),
    "scalar_npy": ("one.npy", lambda p: np.save(p, np.float64(3.0)), ["one.npy: holds a single number"]),
}


@pytest.mark.parametrize("case", BAD_FILES, ids=list(BAD_FILES))
def test_unreadable_file_gives_one_line_naming_the_file(tmp_path, case):
    name, make, parts = BAD_FILES[case]
    path = tmp_path / name
    if make is not None:
        make(path)
    with pytest.raises(DataError) as info:
        read_table(path)
    message = str(info.value)
    assert "\n" not in message
    for part in parts:
        assert part in message, (part, message)


def test_folder_is_not_a_data_file(tmp_path):
    with pytest.raises(DataError, match="is a folder; give a CSV, Parquet, NPY or NPZ file"):
        read_table(tmp_path)


# -- checking the numbers ------------------------------------------------------------------
def test_text_in_a_numeric_column_names_column_row_and_line(tmp_path):
    path = tmp_path / "text.csv"
    path.write_text("a,b\n1,2\n3,oops\n5,6\n7,n/a!\n")
    with pytest.raises(DataError) as info:
        as_matrix(read_table(path), str(path))
    message = str(info.value)
    assert "text.csv: column 'b', row 2 (line 3 of the file): 'oops' is not a number" in message
    assert "2 such value(s)" in message and "fix those values or drop the column" in message


@pytest.mark.parametrize(("cell", "what"), [("", "missing (NaN)"), ("inf", "infinite")])
def test_missing_or_infinite_value_names_column_and_row(tmp_path, cell, what):
    path = tmp_path / "holes.csv"
    path.write_text(f"a,b,c\n1,2,3\n4,5,6\n7,8,{cell}\n")
    with pytest.raises(DataError) as info:
        as_matrix(read_table(path), str(path))
    message = str(info.value)
    assert f"holes.csv: column 'c', row 3 (line 4 of the file) is {what}" in message
    assert "fill or drop those rows" in message


def test_nan_in_an_array_file_names_row_without_a_line(tmp_path):
    array = np.ones((4, 3))
    array[2, 1] = np.nan
    np.save(tmp_path / "a.npy", array)
    with pytest.raises(DataError, match=r"a\.npy: column 'x1', row 3 is missing \(NaN\)"):
        as_matrix(read_table(tmp_path / "a.npy"), str(tmp_path / "a.npy"))


def test_dates_are_refused_by_name(tmp_path):
    frame = pd.DataFrame({"when": pd.date_range("2024-01-01", periods=3), "x": [1.0, 2.0, 3.0]})
    frame.to_parquet(tmp_path / "d.parquet")
    with pytest.raises(DataError, match="column 'when' holds dates or times"):
        as_matrix(read_table(tmp_path / "d.parquet"), "d.parquet")


def test_one_dimensional_array_asks_for_a_reshape():
    with pytest.raises(DataError, match=r"1-D array of 5 values; use X\.reshape\(-1, 1\)"):
        as_matrix(np.ones(5), "X")


# -- the preprocessing state of a model file -----------------------------------------------
def _state() -> dict:
    return Scaler("standard").fit(pd.DataFrame({"a": [1.0, 2.0, 4.0], "b": [0.0, 1.0, 0.0]})).to_dict()


def test_scaler_state_round_trips():
    state = _state()
    assert Scaler.from_dict(state).to_dict() == state


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda s: s.pop("scale"), "missing fields ['scale']"),
        (lambda s: s.update(extra=1), "unknown fields ['extra']"),
        (lambda s: s.update(method="log"), "unknown scaling 'log'"),
        (lambda s: s.update(center=[0.0]), "not lists of one length"),
        (lambda s: s.update(scale=[1.0, "x"]), "not numbers"),
        (lambda s: s.update(scale=[1.0, 0.0]), "scales > 0"),
    ],
)
def test_corrupt_scaler_state_is_a_model_file_error(change, expected):
    state = _state()
    change(state)
    with pytest.raises(ModelFileError) as info:
        Scaler.from_dict(state, "m/preprocessing.json")
    assert str(info.value).startswith("m/preprocessing.json: ")
    assert expected in str(info.value)


def test_robust_scaling_is_not_set_by_outliers():
    """The median and the interquartile range ignore a few huge values; the mean and std do not."""
    rng = np.random.RandomState(0)
    column = rng.normal(loc=5.0, scale=2.0, size=(2000, 1))
    column[:20] = 1e6
    robust = Scaler("robust").fit(column)
    assert abs(robust.center[0] - 5.0) < 0.2 and abs(robust.scale[0] - 2.0) < 0.2
    standard = Scaler("standard").fit(column)
    assert standard.scale[0] > 1e4
    constant_quartiles = np.r_[np.zeros(1900), np.ones(100)][:, None]
    assert Scaler("robust").fit(constant_quartiles).scale[0] > 0.1  # falls back to the std
