"""The ``vaekit`` command line: every command end to end, exit codes, and one-line errors."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from vaekit.cli import main

TINY = ["--epochs", "2", "--hidden", "16", "--latent", "2", "--seed", "0", "-q"]
COMMANDS = ["train", "encode", "reconstruct", "sample", "evaluate", "demo"]


def run(capsys, *argv) -> tuple[int, str, str]:
    """``vaekit ARGV`` in-process: (exit code, stdout, stderr). argparse's own exits count too."""
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def one_error_line(err: str) -> str:
    """The whole of stderr must be one ``vaekit: error:`` line."""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("vaekit: error: "), err
    assert "Traceback" not in err
    return lines[0]


# -- shared data and models ------------------------------------------------------------------
@pytest.fixture(scope="module")
def cli_frame() -> pd.DataFrame:
    """200 rows, 5 columns of breast-cancer measurements with their real (spaced) names."""
    from sklearn.datasets import load_breast_cancer

    return load_breast_cancer(as_frame=True).data.iloc[:200, :5]


@pytest.fixture(scope="module")
def cli_files(cli_frame, tmp_path_factory) -> dict[str, Path]:
    """The same data as CSV, Parquet, NPY and NPZ."""
    folder = tmp_path_factory.mktemp("cli_data")
    files = {"csv": folder / "data.csv", "parquet": folder / "data.parquet"}
    cli_frame.to_csv(files["csv"], index=False)
    cli_frame.to_parquet(files["parquet"], index=False)
    files["npy"] = folder / "data.npy"
    np.save(files["npy"], cli_frame.to_numpy())
    files["npz"] = folder / "data.npz"
    np.savez(files["npz"], X=cli_frame.to_numpy())
    return files


@pytest.fixture(scope="module")
def cli_models(cli_files, tmp_path_factory) -> dict[str, Path]:
    """One tiny VAE and one tiny AE, trained once per module through ``vaekit train``."""
    folder = tmp_path_factory.mktemp("cli_models")
    models = {}
    for kind in ("vae", "ae"):
        models[kind] = folder / kind
        code = main(["train", str(cli_files["csv"]), "-o", str(models[kind]), "--model", kind, *TINY])
        assert code == 0
    return models


@pytest.fixture
def model_copy(cli_models, tmp_path) -> Path:
    """A private copy of the VAE folder, to damage."""
    return Path(shutil.copytree(cli_models["vae"], tmp_path / "model"))


# -- help and usage --------------------------------------------------------------------------
@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(capsys, command):
    code, out, _ = run(capsys, command, "--help")
    assert code == 0
    assert out.startswith(f"usage: vaekit {command}")


def test_top_level_help_lists_the_commands(capsys):
    code, out, _ = run(capsys, "--help")
    assert code == 0
    assert all(command in out for command in COMMANDS)


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        ([], "the following arguments are required: COMMAND"),
        (["fly"], "invalid choice: 'fly'"),
        (["train", "data.csv"], "the following arguments are required: -o/--output"),
        (["train", "data.csv", "-o", "m", "--model", "gan"], "argument --model: invalid choice: 'gan'"),
        (["train", "data.csv", "-o", "m", "--hidden", "64,x"], "give widths separated by commas"),
        (["train", "data.csv", "-o", "m", "--hidden", "64,0"], "widths must be >= 1"),
        (["train", "data.csv", "-o", "m", "--latent", "two"], "argument --latent: invalid int value"),
        (["sample", "m", "-o", "out.csv"], "the following arguments are required: -n"),
    ],
)
def test_bad_usage_exits_2_with_the_reason(capsys, argv, expected):
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert out == ""
    assert expected in err


# -- train -----------------------------------------------------------------------------------
def test_train_writes_a_model_folder_and_prints_a_summary(cli_files, tmp_path, capsys):
    code, out, err = run(capsys, "train", cli_files["csv"], "-o", tmp_path / "m", *TINY)
    assert code == 0, err
    summary = json.loads(out)
    assert summary["model"] == str(tmp_path / "m") and summary["epochs"] == 2
    assert {"train_neg_elbo", "val_neg_elbo", "val_kl"} <= set(summary)
    names = {p.name for p in (tmp_path / "m").iterdir()}
    assert {"config.json", "model.safetensors", "preprocessing.json", "training.json"} <= names
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary folder left


@pytest.mark.parametrize("fmt", ["parquet", "npy", "npz"])
def test_train_reads_every_data_format(cli_files, tmp_path, capsys, fmt):
    code, _, err = run(capsys, "train", cli_files[fmt], "-o", tmp_path / "m", *TINY, "--epochs", "1")
    assert code == 0, err
    preprocessing = json.loads((tmp_path / "m" / "preprocessing.json").read_text())
    assert len(preprocessing["columns"]) == 5


def test_train_options_reach_the_model(cli_files, tmp_path, capsys):
    argv = ["train", cli_files["csv"], "-o", tmp_path / "m", *TINY]
    code, _, err = run(capsys, *argv, "--latent", "3", "--hidden", "12,6", "--likelihood", "gaussian")
    assert code == 0, err
    module = json.loads((tmp_path / "m" / "config.json").read_text())["module"]
    assert (module["latent_dim"], module["hidden"], module["likelihood"]) == (3, [12, 6], "gaussian")
    code, _, err = run(capsys, *argv, "--prior", "mixture", "--prior-components", "4")
    assert code == 0, err
    module = json.loads((tmp_path / "m" / "config.json").read_text())["module"]
    assert (module["prior"], module["prior_components"]) == ("mixture", 4)
    code, _, err = run(capsys, "sample", tmp_path / "m", "-n", "7", "-o", tmp_path / "s.csv")
    assert code == 0, err
    assert len(pd.read_csv(tmp_path / "s.csv")) == 7


def test_train_with_bfloat16_records_it_and_detectors_refuse_it(cli_files, tmp_path, capsys):
    code, _, err = run(
        capsys, "train", cli_files["csv"], "-o", tmp_path / "m", *TINY, "--precision", "bfloat16"
    )
    assert code == 0, err
    assert json.loads((tmp_path / "m" / "config.json").read_text())["params"]["precision"] == "bfloat16"
    code, _, err = run(
        capsys, "train", cli_files["csv"], "-o", tmp_path / "d", "--model", "auto", "--precision", "bfloat16"
    )
    assert code != 0 and "--precision applies to --model vae and ae" in err


def test_training_with_a_seed_is_reproducible(cli_files, cli_models, tmp_path, capsys):
    code, _, _ = run(capsys, "train", cli_files["csv"], "-o", tmp_path / "again", *TINY)
    assert code == 0
    assert sha256(tmp_path / "again" / "model.safetensors") == sha256(cli_models["vae"] / "model.safetensors")


def test_train_does_not_modify_its_input(cli_files, tmp_path, capsys):
    before = sha256(cli_files["csv"])
    assert run(capsys, "train", cli_files["csv"], "-o", tmp_path / "m", *TINY, "--epochs", "1")[0] == 0
    assert sha256(cli_files["csv"]) == before


def test_train_refuses_to_replace_a_folder_that_is_not_a_model(cli_files, tmp_path, capsys):
    """Saving replaces the output folder: a folder of the user's must survive, input included."""
    folder = tmp_path / "project"
    folder.mkdir()
    data = Path(shutil.copy(cli_files["csv"], folder / "data.csv"))
    (folder / "notes.txt").write_text("precious")
    code, out, err = run(capsys, "train", data, "-o", folder, *TINY)
    assert code == 2 and out == ""
    line = one_error_line(err)
    assert f"{folder}: is a folder that is not a vaekit model" in line
    assert "data.csv" in line and "choose a new or empty folder" in line
    assert sorted(p.name for p in folder.iterdir()) == ["data.csv", "notes.txt"]  # not even a checkpoint
    assert sha256(data) == sha256(cli_files["csv"])


def test_train_over_an_old_model_replaces_it_and_keeps_other_files(cli_files, model_copy, capsys):
    (model_copy / "README.txt").write_text("mine")
    code, _, err = run(capsys, "train", cli_files["csv"], "-o", model_copy, "--model", "ae", *TINY)
    assert code == 0, err
    assert json.loads((model_copy / "config.json").read_text())["estimator"] == "Autoencoder"
    assert (model_copy / "README.txt").read_text() == "mine"


def test_train_refuses_an_output_that_is_a_file(cli_files, tmp_path, capsys):
    target = tmp_path / "model.csv"
    target.write_text("x\n1\n")
    code, _, err = run(capsys, "train", cli_files["csv"], "-o", target, *TINY)
    assert code == 2
    assert f"{target}: exists and is not a folder" in one_error_line(err)
    assert target.read_text() == "x\n1\n"


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (["--epochs", "0"], "epochs=0: must be a whole number >= 1"),
        (["--latent", "0"], "latent_dim=0: must be a whole number >= 1"),
        (["--dropout", "1.5"], "dropout=1.5: must be in [0, 1)"),
        (["--activation", "swoosh"], "activation='swoosh': use one of"),
        (["--device", "abacus"], "--device abacus: unknown device 'abacus'"),
        (["--likelihood", "bernoulli", "--scaling", "none"], "data.csv: values run from"),
        (["--prior-components", "0"], "prior_components=0: must be a whole number >= 1"),
        (["--prior", "mixture", "--free-bits", "1"], "free_bits limits the KL of each latent unit"),
    ],
)
def test_bad_training_settings_exit_2_with_one_line(cli_files, tmp_path, capsys, extra, expected):
    code, _, err = run(capsys, "train", cli_files["csv"], "-o", tmp_path / "m", *TINY, *extra)
    assert code == 2
    assert expected in one_error_line(err)
    assert not (tmp_path / "m" / "config.json").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_asking_for_cuda_without_it_is_an_error_not_a_crash(cli_files, tmp_path, capsys):
    code, _, err = run(capsys, "train", cli_files["csv"], "-o", tmp_path / "m", *TINY, "--device", "cuda")
    assert code == 2
    line = one_error_line(err)
    assert "--device cuda" in line and "no CUDA" in line and "use auto or cpu" in line


# -- bad data ------------------------------------------------------------------------------
def _csv(text: str):
    return lambda path: path.write_text(text)


BAD_DATA = {
    # name: (file name, how to make it, the parts the message must hold)
    "empty": ("empty.csv", _csv(""), ["empty.csv: the file is empty"]),
    "header_only": ("header.csv", _csv("a,b\n"), ["header.csv: has a header but no rows of data"]),
    "text": ("text.csv", _csv("a,b\n1,2\n3,4\n5,five\n"), ["text.csv: column 'b', row 3 (line 4", "'five'"]),
    "nan": ("nan.csv", _csv("a,b\n1,2\n,4\n5,6\n"), ["nan.csv: column 'a', row 2 (line 3", "missing (NaN)"]),
    "single_row": ("one.csv", _csv("a,b\n1,2\n"), ["one.csv: has 1 row; training needs at least 2 rows"]),
    "missing": ("absent.csv", None, ["absent.csv: no such file; check the path"]),
    "unknown_type": ("data.json", _csv("[]"), ["data.json: unknown file type '.json'", ".parquet"]),
    "corrupt_parquet": (
        "bad.parquet",
        _csv("not parquet at all"),
        ["bad.parquet: cannot be read as PARQUET"],
    ),
}


@pytest.mark.parametrize("case", BAD_DATA, ids=list(BAD_DATA))
def test_bad_training_data_exits_2_naming_file_and_place(tmp_path, capsys, case):
    name, make, parts = BAD_DATA[case]
    path = tmp_path / name
    if make is not None:
        make(path)
    code, out, err = run(capsys, "train", path, "-o", tmp_path / "m", *TINY)
    assert code == 2 and out == ""
    line = one_error_line(err)
    for part in parts:
        assert part in line, (part, line)
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize("command", ["encode", "reconstruct", "evaluate"])
def test_bad_data_for_a_trained_model_exits_2(cli_models, tmp_path, capsys, command):
    path = tmp_path / "nan.csv"
    path.write_text("a,b\n1,\n")
    output = ["-o", tmp_path / "out.csv"] if command != "evaluate" else []
    code, _, err = run(capsys, command, cli_models["vae"], path, *output)
    assert code == 2
    assert "nan.csv: column 'b', row 1 (line 2 of the file) is missing (NaN)" in one_error_line(err)
    assert not (tmp_path / "out.csv").exists()


def test_encode_names_the_missing_column(cli_frame, cli_models, tmp_path, capsys):
    path = tmp_path / "fewer.csv"
    cli_frame.drop(columns=["mean area"]).to_csv(path, index=False)
    code, _, err = run(capsys, "encode", cli_models["vae"], path, "-o", tmp_path / "z.csv")
    assert code == 2
    line = one_error_line(err)
    assert "fewer.csv: the model was trained with column(s) ['mean area'] that are missing here" in line
    assert "give data with all of its 5 columns" in line


def test_encode_names_an_extra_column(cli_frame, cli_models, tmp_path, capsys):
    path = tmp_path / "more.csv"
    cli_frame.assign(colour=1.0).to_csv(path, index=False)
    code, _, err = run(capsys, "encode", cli_models["vae"], path, "-o", tmp_path / "z.csv")
    assert code == 2
    assert "more.csv: column(s) ['colour'] were not seen in training; drop them" in one_error_line(err)


def test_encode_of_an_array_with_the_wrong_column_count(cli_frame, cli_models, tmp_path, capsys):
    path = tmp_path / "narrow.npy"
    np.save(path, cli_frame.to_numpy()[:, :3])
    code, _, err = run(capsys, "encode", cli_models["vae"], path, "-o", tmp_path / "z.csv")
    assert code == 2
    assert "narrow.npy: has 3 column(s) but the model was trained on 5" in one_error_line(err)


def test_columns_are_matched_by_name_not_position(cli_frame, cli_models, tmp_path, capsys):
    shuffled = tmp_path / "shuffled.csv"
    cli_frame[cli_frame.columns[::-1]].to_csv(shuffled, index=False)
    assert run(capsys, "encode", cli_models["vae"], shuffled, "-o", tmp_path / "a.csv")[0] == 0
    plain = tmp_path / "plain.csv"
    cli_frame.to_csv(plain, index=False)
    assert run(capsys, "encode", cli_models["vae"], plain, "-o", tmp_path / "b.csv")[0] == 0
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "a.csv"), pd.read_csv(tmp_path / "b.csv"))


# -- damaged or foreign model folders --------------------------------------------------------
def _truncate(folder: Path) -> None:
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])


def _edit_config(**changes):
    def edit(folder: Path) -> None:
        config = json.loads((folder / "config.json").read_text())
        config.update(changes)
        (folder / "config.json").write_text(json.dumps(config))

    return edit


def _write(name: str, text: str):
    return lambda folder: (folder / name).write_text(text)


def _remove(name: str):
    return lambda folder: (folder / name).unlink()


def _empty_folder(folder: Path) -> None:
    shutil.rmtree(folder)
    folder.mkdir()


BAD_MODELS = {
    "truncated_weights": (_truncate, "model.safetensors: the file is truncated or corrupt"),
    "missing_weights": (_remove("model.safetensors"), "model.safetensors: missing from the model folder"),
    "corrupt_config": (_write("config.json", '{"format": "vaek'), "config.json: corrupt JSON"),
    "foreign_folder": (_empty_folder, "model: no config.json here, so this is not a vaekit model folder"),
    "other_format": (_edit_config(format="keras"), "config.json is not that of a vaekit model"),
    "other_version": (_edit_config(format_version=99), "model format version 99 but this vaekit reads"),
    "unknown_estimator": (_edit_config(estimator="GAN"), "unknown model kind 'GAN'"),
    "mangled_module": (_edit_config(module={"kind": "vae"}), "config.json lacks or mangles a field"),
    "corrupt_preprocessing": (_write("preprocessing.json", "{"), "preprocessing.json: corrupt JSON"),
    "incomplete_preprocessing": (
        _write("preprocessing.json", '{"method": "standard"}'),
        "preprocessing.json: corrupt preprocessing state (missing fields",
    ),
    "preprocessing_of_another_model": (
        _write(
            "preprocessing.json",
            '{"method": "none", "columns": ["a"], "named": true, "center": [0], "scale": [1]}',
        ),
        "preprocessing.json: describes 1 column(s) but the model in config.json takes 5",
    ),
    "training_json_not_an_object": (_write("training.json", "[]"), "training.json: holds a JSON list"),
    "missing_training_json": (_remove("training.json"), "training.json: missing from the model folder"),
}


@pytest.mark.parametrize("case", BAD_MODELS, ids=list(BAD_MODELS))
def test_damaged_model_folder_exits_2_with_one_line(model_copy, cli_files, tmp_path, capsys, case):
    damage, expected = BAD_MODELS[case]
    damage(model_copy)
    code, out, err = run(capsys, "encode", model_copy, cli_files["csv"], "-o", tmp_path / "z.csv")
    assert code == 2 and out == ""
    line = one_error_line(err)
    assert expected in line, line
    assert str(model_copy) in line
    assert not (tmp_path / "z.csv").exists()


def test_missing_model_folder(cli_files, tmp_path, capsys):
    code, _, err = run(capsys, "evaluate", tmp_path / "nowhere", cli_files["csv"])
    assert code == 2
    expected = f"{tmp_path / 'nowhere'}: no such model folder; train one with 'vaekit train'"
    assert expected in one_error_line(err)


def test_a_data_file_given_as_the_model(cli_files, tmp_path, capsys):
    code, _, err = run(capsys, "sample", cli_files["csv"], "-n", "3", "-o", tmp_path / "s.csv")
    assert code == 2
    assert "data.csv: is a file; a vaekit model is a folder" in one_error_line(err)


# -- encode, reconstruct, sample, evaluate -------------------------------------------------
@pytest.mark.parametrize("fmt", ["csv", "parquet", "npy", "npz"])
def test_encode_writes_mean_and_log_variance(cli_models, cli_files, tmp_path, capsys, fmt):
    out = tmp_path / f"z.{fmt}"
    code, stdout, err = run(capsys, "encode", cli_models["vae"], cli_files[fmt], "-o", out)
    assert code == 0, err
    assert stdout == "" and err.strip() == f"wrote {out}"
    z = pd.read_csv(out) if fmt == "csv" else pd.read_parquet(out) if fmt == "parquet" else None
    if z is None:
        array = np.load(out)["X"] if fmt == "npz" else np.load(out)
        assert array.shape == (200, 4)
    else:
        assert list(z.columns) == ["z_mean_0", "z_mean_1", "z_logvar_0", "z_logvar_1"]
        assert z.shape == (200, 4) and np.isfinite(z.to_numpy()).all()


def test_array_and_table_inputs_give_the_same_codes(cli_models, cli_files, tmp_path, capsys):
    """NPY columns have no names: they are taken by position, like the CSV's columns in order."""
    for fmt in ("csv", "npy"):
        assert run(capsys, "encode", cli_models["vae"], cli_files[fmt], "-o", tmp_path / f"{fmt}.csv")[0] == 0
    np.testing.assert_allclose(
        pd.read_csv(tmp_path / "csv.csv").to_numpy(), pd.read_csv(tmp_path / "npy.csv").to_numpy(), atol=1e-5
    )


def test_encode_with_an_autoencoder_writes_z(cli_models, cli_files, tmp_path, capsys):
    code, _, err = run(capsys, "encode", cli_models["ae"], cli_files["csv"], "-o", tmp_path / "z.parquet")
    assert code == 0, err
    z = pd.read_parquet(tmp_path / "z.parquet")
    assert list(z.columns) == ["z_0", "z_1"] and len(z) == 200


@pytest.mark.parametrize("kind", ["vae", "ae"])
def test_reconstruct_keeps_the_training_columns(cli_models, cli_files, cli_frame, tmp_path, capsys, kind):
    out = tmp_path / "r.csv"
    code, _, err = run(capsys, "reconstruct", cli_models[kind], cli_files["parquet"], "-o", out)
    assert code == 0, err
    recon = pd.read_csv(out)
    assert list(recon.columns) == list(cli_frame.columns)
    assert recon.shape == cli_frame.shape and np.isfinite(recon.to_numpy()).all()


def test_sample_writes_n_rows_with_the_training_columns(cli_models, cli_frame, tmp_path, capsys):
    out = tmp_path / "s.parquet"
    code, _, err = run(capsys, "sample", cli_models["vae"], "-n", "7", "-o", out, "--seed", "3")
    assert code == 0, err
    rows = pd.read_parquet(out)
    assert rows.shape == (7, 5) and list(rows.columns) == list(cli_frame.columns)
    again = tmp_path / "again.parquet"
    assert run(capsys, "sample", cli_models["vae"], "-n", "7", "-o", again, "--seed", "3")[0] == 0
    pd.testing.assert_frame_equal(rows, pd.read_parquet(again))


def test_sample_mean_to_npy(cli_models, tmp_path, capsys):
    code, _, err = run(capsys, "sample", cli_models["vae"], "-n", "4", "--mean", "-o", tmp_path / "s.npy")
    assert code == 0, err
    assert np.load(tmp_path / "s.npy").shape == (4, 5)


@pytest.mark.parametrize(
    ("model", "argv", "expected"),
    [
        ("vae", ["-n", "0"], "-n 0: the number of samples must be >= 1"),
        ("ae", ["-n", "3"], "is a plain autoencoder, which has no prior to sample from; train with"),
    ],
)
def test_sample_errors(cli_models, tmp_path, capsys, model, argv, expected):
    code, _, err = run(capsys, "sample", cli_models[model], *argv, "-o", tmp_path / "s.csv")
    assert code == 2
    assert expected in one_error_line(err)
    assert not (tmp_path / "s.csv").exists()


def test_evaluate_prints_json_in_nats_per_example(cli_models, cli_files, capsys):
    code, out, err = run(capsys, "evaluate", cli_models["vae"], cli_files["npz"], "-k", "2", "--iwae", "5")
    assert code == 0, err
    result = json.loads(out)
    assert result["units"] == "nats per example" and result["n_rows"] == 200 and result["iwae_k"] == 5
    assert result["neg_elbo"] == pytest.approx(result["reconstruction"] + result["kl"], rel=1e-5)
    assert result["kl"] >= 0
    assert result["log_likelihood"] >= -result["neg_elbo"] - 1.0  # the IWAE bound is no looser, up to noise


def test_evaluate_of_an_autoencoder_gives_the_reconstruction_error(cli_models, cli_files, capsys):
    code, out, err = run(capsys, "evaluate", cli_models["ae"], cli_files["csv"])
    assert code == 0, err
    result = json.loads(out)
    assert result["neg_elbo"] is None and result["kl"] is None
    assert result["reconstruction"] > 0


@pytest.mark.parametrize(
    ("argv", "expected"), [(["-k", "0"], "-k 0: the number of samples"), (["--iwae", "-1"], "--iwae -1")]
)
def test_evaluate_rejects_bad_sample_counts(cli_models, cli_files, capsys, argv, expected):
    code, out, err = run(capsys, "evaluate", cli_models["vae"], cli_files["csv"], *argv)
    assert code == 2 and out == ""
    assert expected in one_error_line(err)


# -- outputs are atomic, inputs untouched ----------------------------------------------------
@pytest.mark.parametrize("command", ["encode", "reconstruct", "evaluate"])
def test_commands_do_not_modify_their_inputs(cli_models, cli_files, tmp_path, capsys, command):
    hashes = {p: sha256(p) for p in [cli_files["csv"], *cli_models["vae"].iterdir()] if p.is_file()}
    output = ["-o", tmp_path / "out.csv"] if command != "evaluate" else []
    assert run(capsys, command, cli_models["vae"], cli_files["csv"], *output)[0] == 0
    assert {p: sha256(p) for p in hashes} == hashes


@pytest.mark.parametrize("command", ["encode", "reconstruct"])
def test_output_over_the_input_is_refused(cli_models, cli_files, tmp_path, capsys, command):
    data = Path(shutil.copy(cli_files["csv"], tmp_path / "data.csv"))
    code, _, err = run(capsys, command, cli_models["vae"], data, "-o", data)
    assert code == 2
    assert "data.csv: is also the input file; write the output to another file" in one_error_line(err)
    assert sha256(data) == sha256(cli_files["csv"])


def test_output_is_written_through_a_temporary_file(cli_models, cli_files, tmp_path, capsys, monkeypatch):
    """A write that fails half-way (disk full) keeps the old output and leaves no temporary file."""
    out = tmp_path / "z.csv"
    out.write_text("previous\n")
    seen = []

    def fail(self, path, *args, **kwargs):
        seen.append(Path(path))
        Path(path).write_text("half")
        raise OSError(28, "No space left on device", str(path))

    monkeypatch.setattr(pd.DataFrame, "to_csv", fail)
    code, _, err = run(capsys, "encode", cli_models["vae"], cli_files["csv"], "-o", out)
    assert code == 2
    assert "No space left on device" in one_error_line(err)
    assert seen and seen[0] != out and seen[0].parent == tmp_path  # written beside, under another name
    assert out.read_text() == "previous\n"
    assert [p.name for p in tmp_path.iterdir()] == ["z.csv"]


def test_unwritable_output_folder_is_one_line(cli_models, cli_files, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    code, _, err = run(capsys, "encode", cli_models["vae"], cli_files["csv"], "-o", blocker / "z.csv")
    assert code == 2
    assert str(blocker) in one_error_line(err)


def test_output_to_a_folder_is_refused(cli_models, cli_files, tmp_path, capsys):
    code, _, err = run(capsys, "reconstruct", cli_models["vae"], cli_files["csv"], "-o", tmp_path)
    assert code == 2
    assert f"{tmp_path}: is a folder; give an output file name" in one_error_line(err)


@pytest.mark.parametrize("command", ["encode", "reconstruct", "sample"])
def test_unknown_output_type_is_refused_before_any_work(cli_files, tmp_path, capsys, command):
    """The model folder does not exist: the output is checked first, so that is not the error."""
    rest = [cli_files["csv"]] if command != "sample" else ["-n", "3"]
    code, _, err = run(capsys, command, tmp_path / "no_model", *rest, "-o", tmp_path / "z.xlsx")
    assert code == 2
    assert "z.xlsx: unknown output type '.xlsx'; use one of .csv" in one_error_line(err)


# -- a real process: exit codes and stderr as a user sees them -------------------------------
def vaekit_process(*argv) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "vaekit", *map(str, argv)], capture_output=True, text=True, timeout=120
    )


def test_process_success_prints_json_and_exits_0(cli_models, cli_files):
    done = vaekit_process("evaluate", cli_models["vae"], cli_files["csv"])
    assert done.returncode == 0, done.stderr
    assert {"neg_elbo", "reconstruction", "kl"} <= set(json.loads(done.stdout))


def test_process_bad_input_exits_2_with_one_line_and_no_traceback(model_copy, cli_files, tmp_path):
    _truncate(model_copy)
    done = vaekit_process("reconstruct", model_copy, cli_files["csv"], "-o", tmp_path / "r.csv")
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert done.stderr.startswith(f"vaekit: error: {model_copy / 'model.safetensors'}: the file is truncated")


def test_process_bad_usage_exits_2(tmp_path):
    done = vaekit_process("encode", tmp_path / "m")
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("vaekit encode: error: the following arguments")
