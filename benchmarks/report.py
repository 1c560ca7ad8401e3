"""What every benchmark script shares: the machine it ran on, and its section of docs/benchmarks.md."""

from __future__ import annotations

import os
import platform
import re
from pathlib import Path

DOCS = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"
HEADER = "# Benchmarks\n\nFigures measured by the scripts in `benchmarks/`.\n"


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo, or what platform knows."""
    try:
        text = Path("/proc/cpuinfo").read_text()
        return re.search(r"^model name\s*:\s*(.+)$", text, re.M).group(1).strip()
    except (OSError, AttributeError):
        return platform.processor() or platform.machine()


def vector_units() -> str:
    """The widest vector units the CPU has, from /proc/cpuinfo's flags ("" if unknown): timings
    on a CPU with AVX-512 and bfloat16 units and on one with AVX2 alone differ several times."""
    try:
        flags = set(
            re.search(r"^flags\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), re.M).group(1).split()
        )
    except (OSError, AttributeError):
        return ""
    for flag, name in (
        ("avx512_bf16", "AVX-512 BF16"),
        ("amx_bf16", "AMX BF16"),
        ("avx512f", "AVX-512"),
        ("avx2", "AVX2"),
    ):
        if flag in flags:
            return name
    return ""


def machine(threads: int) -> str:
    units = vector_units()
    cpu = f"{cpu_model()} ({units})" if units else cpu_model()
    return f"{cpu}, {os.cpu_count()} logical cores, torch.set_num_threads({threads})"


def write_section(section: str, text: str) -> None:
    """Put ``text`` (which starts with the heading ``section``) into docs/benchmarks.md, replacing
    that section if it is there and leaving the other scripts' sections alone."""
    doc = DOCS.read_text() if DOCS.exists() else HEADER
    pattern = re.compile(rf"^{re.escape(section)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(doc):
        doc = pattern.sub(lambda _: text.rstrip("\n") + "\n\n", doc)
    else:
        doc = doc.rstrip("\n") + "\n\n" + text
    DOCS.parent.mkdir(parents=True, exist_ok=True)
    DOCS.write_text(doc.rstrip("\n") + "\n")
