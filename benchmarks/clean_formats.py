"""vaekit clean on one table written as CSV and as Parquet: what reading a CSV file record by record costs.

``vaekit clean`` splits a CSV file into records (a record that does not parse is garbage with its
reason, and kept records are written back byte for byte; the plain records are parsed by Arrow's CSV
reader, the others by Python's csv module), where a Parquet file is read by Arrow as it is.
Generates N rows x 32 numeric columns (as benchmarks/scale.py: rows near a 4-dimensional linear
manifold plus noise, 1% of them off it) written with 6 significant digits to a CSV file, and the
same values to a Parquet file; times ``vaekit clean FILE -o DIR --quiet`` on each under
``/usr/bin/time -v`` (end to end: starting Python, reading, training, scoring, writing the outputs
and the report), and, for scale, how long pandas' ``read_csv`` and Arrow's ``read_table`` take to
read the file alone.

    .venv/bin/python benchmarks/clean_formats.py                # 200,000 rows, docs/benchmarks.md
    .venv/bin/python benchmarks/clean_formats.py --rows 20000 --no-write
"""

from __future__ import annotations

import argparse
import datetime
import tempfile
import time
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
from report import machine, write_section  # benchmarks/report.py: run as a script
from scale import VAEKIT, make_file, timed

SECTION = "## vaekit clean: CSV against Parquet"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--no-write", action="store_true", help="print the table, leave the docs alone")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        make_file(tmp / "made.parquet", args.rows)
        table = pd.read_parquet(tmp / "made.parquet")
        files = {"CSV": tmp / "data.csv", "Parquet": tmp / "data.parquet"}
        table.to_csv(files["CSV"], index=False, float_format="%.6g")
        pd.read_csv(files["CSV"]).to_parquet(files["Parquet"], index=False)  # the same values
        for kind, path in files.items():
            started = time.perf_counter()
            pd.read_csv(path) if kind == "CSV" else pq.read_table(path)
            reading = time.perf_counter() - started
            seconds, peak = timed([*VAEKIT, "clean", str(path), "-o", str(tmp / f"out-{kind}"), "--quiet"])
            flagged = int(pd.read_csv(tmp / f"out-{kind}" / "scores.csv")["garbage"].sum())
            rows.append((kind, path.stat().st_size / 1e6, seconds, peak, reading, flagged))
            print(f"{kind}: {seconds:.1f} s, peak {peak:,.0f} MB, read alone {reading:.2f} s", flush=True)
    lines = [
        SECTION,
        "",
        f"`vaekit clean FILE -o DIR --quiet` on {args.rows:,} rows x 32 numeric columns written as CSV "
        "(6 significant digits) and as Parquet (the same values), defaults otherwise. Seconds and rows/s "
        "end to end (starting Python, reading, training the detector with its garbage classifier, "
        "scoring, writing the outputs and the report); peak memory from `/usr/bin/time -v`. "
        "\"read alone\": pandas' `read_csv` of the CSV file, Arrow's `read_table` of the Parquet file, "
        "for scale: `vaekit clean` splits a CSV file into records so that a record that does not "
        "parse is garbage with its reason and kept records are written back byte for byte (the plain "
        "records, without quotes and with the header's number of fields, parsed by Arrow's CSV reader).",
        "",
        "| format | file MB | seconds | rows/s | peak memory MB | read alone s | rows flagged |",
        "|---|---|---|---|---|---|---|",
    ]
    for kind, size, seconds, peak, reading, flagged in rows:
        lines.append(
            f"| {kind} | {size:,.0f} | {seconds:.1f} | {args.rows / seconds:,.0f} | {peak:,.0f} | "
            f"{reading:.2f} | {flagged:,} |"
        )
    lines += [
        "",
        f"{machine(2)}; {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC.",
        "Command: `python benchmarks/clean_formats.py`",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if not args.no_write:
        write_section(SECTION, text)


if __name__ == "__main__":
    main()
