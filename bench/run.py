"""Benchmarks: the pipeline's throughput against an I/O floor measured in the same run.

Run with `make bench` (or `python -m bench.run --children N`). The floor is DuckDB reading the
same CSV extracts and writing them as Parquet: no pipeline can move the data faster than that on
this machine, so the ratio says how much our phases cost on top of plain I/O. Output holds
counts, seconds and ratios only, never a value from the population.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import duckdb

from synthetic_data.population import PopulationConfig
from synthetic_data.writer import write_population
from transforms.load import IndexStore
from transforms.pipeline import SyncPaths, default_workers, sync_drop_zone
from transforms.policy import load_policy
from transforms.pseudonymise import PseudonymKey

RESULTS = Path(__file__).parent / "results"


def settle() -> None:
    """Write every dirty page out before a measurement, so it never pays for the last one's.

    The index commits with fsync, and on ext4 a commit can wait for other files' data that the
    step before wrote (a population, the next snapshots, the floor's Parquet).
    """
    os.sync()


def io_floor(landing: Path, out: Path) -> float:
    """Seconds DuckDB takes to read every children extract as text and write it as Parquet.

    The Parquet files in `out` are removed once timed: nothing reads them, and a re-sync
    benchmark's ten rounds would otherwise leave a copy of the population each.
    """
    out.mkdir(parents=True, exist_ok=True)
    settle()
    started = time.perf_counter()
    con = duckdb.connect()
    for n, csv_path in enumerate(sorted(landing.glob("*/children_*.csv"))):
        con.execute(
            "COPY (SELECT * FROM read_csv(?, all_varchar=true, header=true)) TO ? (FORMAT parquet)",
            [str(csv_path), str(out / f"{n}.parquet")],
        )
    con.close()
    seconds = time.perf_counter() - started
    shutil.rmtree(out)
    return seconds


def machine() -> str:
    """Describe the machine the figures come from, in one line."""
    return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def run(children: int, councils: int, workdir: Path) -> dict:
    """Generate a population, time the floor and the pipeline over it, and return the figures."""
    home = workdir / "home"
    config = PopulationConfig(children=children, councils=councils, seed=7)
    started = time.perf_counter()
    write_population(config, home / "landing", workdir / "truth")
    synth_seconds = time.perf_counter() - started

    floor_seconds = io_floor(home / "landing", workdir / "floor")

    policy = load_policy()
    store = IndexStore.from_url(f"sqlite:///{workdir / 'index.sqlite'}", policy)
    key = PseudonymKey(secrets.token_bytes(32))  # a throwaway key for this run only
    workers = default_workers()  # as `registry-sync run` does
    settle()
    started = time.perf_counter()
    reports = sync_drop_zone(SyncPaths(home), key, policy, store, run_id="bench", workers=workers)
    pipeline_seconds = time.perf_counter() - started
    rows = sum(r.counts["received"] for r in reports if r.file_kind == "children")
    loaded = sum(r.counts["loaded"] for r in reports)
    return {
        "machine": machine(),
        "children_requested": children,
        "councils": councils,
        "workers": workers,
        "rows_received": rows,
        "rows_loaded": loaded,
        "synth_seconds": round(synth_seconds, 2),
        "synth_children_per_second": round(children / synth_seconds),
        "floor_seconds": round(floor_seconds, 2),
        "pipeline_seconds": round(pipeline_seconds, 2),
        "pipeline_children_per_second": round(rows / pipeline_seconds),
        "pipeline_to_floor_ratio": round(pipeline_seconds / floor_seconds, 1),
    }


def bench_main(
    measure: Callable[[int, int, Path], dict], description: str, children: int, result: str
) -> None:
    """Parse --children/--councils, measure in a throwaway folder, print and keep the figures.

    Args:
        measure: run(children, councils, workdir) -> figures (counts, seconds, ratios only).
        description: the command's one-line description.
        children: the default population size.
        result: the file name under bench/results/ that keeps the figures as JSON.
    """
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--children", type=int, default=children)
    parser.add_argument("--councils", type=int, default=4)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="registry-bench-"))
    try:
        figures = measure(args.children, args.councils, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    width = max(len(k) for k in figures)
    for name, value in figures.items():
        print(f"{name:<{width}}  {value}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / result).write_text(json.dumps(figures, indent=2) + "\n")


def main() -> None:
    """Run the pipeline benchmark; the figures go to bench/results/latest.json."""
    bench_main(run, __doc__.splitlines()[0], 200_000, "latest.json")


if __name__ == "__main__":
    main()
