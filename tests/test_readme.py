"""Every example in the README runs, as written."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

from vaekit.cli import main

README = Path(__file__).resolve().parents[1] / "README.md"


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_opens_with_the_demo_and_test_commands():
    first = _blocks("bash")[0]
    assert "make demo" in first and "make test" in first
    makefile = (README.parent / "Makefile").read_text()
    assert "vaekit demo" in makefile and "pytest" in makefile
    assert "make test" in (README.parent / ".ci" / "run").read_text()


def test_python_examples_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    blocks = _blocks("python")
    assert len(blocks) >= 3
    for block in blocks:
        exec(compile(block, str(README), "exec"), namespace)
    assert namespace["new_rows"].shape == (100, 13)
    assert namespace["mu"].shape == (178, 4)
    assert (tmp_path / "wine-vae" / "model.safetensors").exists()
    assert namespace["grid"].shape == (16, 1, 8, 8)
    assert namespace["shares"].shape == (178, 13) and namespace["names"].shape == (178, 3)
    assert (
        list(namespace["wine_scores"].columns[:2]) == ["score", "label"]
        and len(namespace["wine_scores"]) == 178
    )


def test_command_line_examples_run(tmp_path, monkeypatch, capsys):
    """Each line of the README's command-line block, run in this process (test_cli runs the `vaekit`
    entry point as a process): a process per line spent most of a minute importing torch."""
    block = next(b for b in _blocks("bash") if "vaekit train" in b)
    monkeypatch.chdir(tmp_path)
    for line in block.splitlines():
        words = shlex.split(line, comments=True)
        if not words:
            continue
        if words[:2] == ["python", "-c"]:
            exec(words[2], {})
            continue
        assert words[0] == "vaekit", line
        assert main(words[1:]) == 0, f"{line}: {capsys.readouterr().err}"
    assert '"neg_elbo"' in capsys.readouterr().out
    script = Path(sys.executable).with_name("vaekit")  # the entry point the lines name is installed
    assert subprocess.run([script, "--version"], capture_output=True, text=True).stdout.startswith("vaekit")
    for name in ("latent.csv", "rebuilt.parquet", "new-rows.csv", "wine-ae/config.json", "scores.csv"):
        assert (tmp_path / name).exists(), name
