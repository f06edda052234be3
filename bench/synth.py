"""Benchmark: synthetic population speed and memory, against a naive Faker loop in the same run.

Run with `python -m bench.synth [--children N]` (default 1,000,000 children in 4 councils, with
`missing_nhs_rate` 0.1, since the 999 test range holds only 909,091 valid NHS numbers). Each
measurement runs in its own subprocess so its peak memory (`ru_maxrss`) is its own:

- vectorised: `generate_population` alone, and `write_population` (CSV extracts, registers,
  manifests and the Parquet truth), at N children;
- daily: `first_day` plus one `next_day(..., release=True)` at N children, as `write_days` runs
  them (councils kept in Arrow files in a spill folder, one in memory at a time), with
  `missing_nhs_rate` at least 0.12: at 0.1, 1,000,000 children and the national register's extra
  entries leave under 100 test numbers for births, and day 1 would run out;
- naive: a per-row Faker loop making the same 18 extract fields and writing them with
  `csv.writer`, on `--naive-children` (default 20,000), its rate extrapolated to N. It writes
  the extracts only (no truth, registers or defects), so the comparison flatters it.

Figures are counts, seconds, rates and MiB, never a value from a population; they are printed and
kept in bench/results/synth.json.
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
SEED = 7
DAILY_MISSING_NHS_RATE = 0.12  # leaves test NHS numbers for the newborns of day 1


def _peak_mib() -> float:
    # Linux reports ru_maxrss in KiB (macOS in bytes; this benchmark runs on Linux).
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _config(children: int, councils: int, missing_nhs_rate: float):
    from synthetic_data.population import PopulationConfig

    return PopulationConfig(
        children=children, councils=councils, seed=SEED, missing_nhs_rate=missing_nhs_rate
    )


def measure_vectorised(
    children: int, councils: int, missing_nhs_rate: float, workdir: Path
) -> dict:
    """Time generating the population in memory, then generating and writing it."""
    from synthetic_data.population import generate_population
    from synthetic_data.writer import write_population

    config = _config(children, councils, missing_nhs_rate)
    started = time.perf_counter()
    rows = sum(batch.tables[0].num_rows for batch in generate_population(config))
    generate_seconds = time.perf_counter() - started
    started = time.perf_counter()
    summary = write_population(config, workdir / "landing", workdir / "truth")
    write_seconds = time.perf_counter() - started
    size = sum(p.stat().st_size for p in workdir.rglob("*") if p.is_file())
    return {
        "rows": rows,
        "written_rows": summary.rows,
        "generate_seconds": round(generate_seconds, 2),
        "write_seconds": round(write_seconds, 2),
        "bytes_written": size,
        "peak_mib": _peak_mib(),
    }


def measure_daily(children: int, councils: int, missing_nhs_rate: float, workdir: Path) -> dict:
    """Time making day 0 and day 1 from it as `write_days` does (spilled, released)."""
    from synthetic_data.daily import first_day, next_day

    config = _config(children, councils, missing_nhs_rate)
    spill = workdir / "spill"
    spill.mkdir()
    started = time.perf_counter()
    day0 = first_day(config, spill=spill)
    first_seconds = time.perf_counter() - started
    started = time.perf_counter()
    day1 = next_day(day0, release=True, spill=spill)
    next_seconds = time.perf_counter() - started
    return {
        "rows_day1": sum(cd.truth.num_rows for cd in day1.councils),
        "events_day1": day1.events.num_rows,
        "first_day_seconds": round(first_seconds, 2),
        "next_day_seconds": round(next_seconds, 2),
        "peak_mib": _peak_mib(),
    }


def measure_naive(children: int, councils: int, missing_nhs_rate: float, workdir: Path) -> dict:
    """Time a per-row Faker loop making the extract's 18 fields and writing them as CSV."""
    from synthetic_data.councils import COUNCILS
    from synthetic_data.population import service_codes
    from synthetic_data.providers import make_faker
    from transforms import contract

    fake = make_faker(SEED)
    codes = [code for code, _ in service_codes()]
    used: set[str] = set()
    started = time.perf_counter()
    for c in range(councils):
        council = COUNCILS[c]
        n = children // councils + (c < children % councils)
        folder = workdir / council.gss_code
        folder.mkdir(parents=True)
        with open(folder / "children.csv", "w", newline="", encoding="utf-8") as out:
            writer = csv.writer(out, lineterminator="\n")
            writer.writerow(contract.CHILDREN_COLUMNS)
            for i in range(n):
                nhs = ""
                if fake.random.random() >= missing_nhs_rate:
                    nhs = fake.nhs_number()
                    while nhs in used:  # one number per child, as the real generator keeps
                        nhs = fake.nhs_number()
                    used.add(nhs)
                dob = fake.date_of_birth(minimum_age=0, maximum_age=17)
                male = fake.random.random() < 0.5
                writer.writerow(
                    (
                        f"{council.id_prefix}{i + 1:08d}",
                        nhs,
                        fake.upn(la_number=council.dfe_la_number) if dob.year < 2022 else "",
                        fake.first_name_male() if male else fake.first_name_female(),
                        fake.last_name(),
                        fake.last_name() if fake.random.random() < 0.03 else "",
                        dob.isoformat(),
                        "M" if male else "F",
                        fake.street_address().replace("\n", ", "),
                        fake.council_postcode(council),
                        fake.name(),
                        f"07700 900{fake.random_int(0, 999):03d}",
                        fake.school_urn() if dob.year < 2022 else "",
                        fake.gp_practice_code(council),
                        ";".join(
                            fake.random_elements(codes, length=fake.random_int(0, 2), unique=True)
                        ),
                        "Y" if fake.random.random() < 0.005 else "N",
                        "Y" if fake.random.random() < 0.01 else "N",
                        fake.sentence() if fake.random.random() < 0.3 else "",
                    )
                )
    seconds = time.perf_counter() - started
    return {"rows": children, "seconds": round(seconds, 2), "peak_mib": _peak_mib()}


WORKERS = {"vectorised": measure_vectorised, "daily": measure_daily, "naive": measure_naive}


def _run_worker(kind: str, children: int, councils: int, missing_nhs_rate: float) -> dict:
    """Run one measurement in a fresh interpreter and return its figures."""
    command = [
        sys.executable,
        "-m",
        "bench.synth",
        "--worker",
        kind,
        "--children",
        str(children),
        "--councils",
        str(councils),
        "--missing-nhs-rate",
        str(missing_nhs_rate),
    ]
    out = subprocess.run(  # noqa: S603 (our own interpreter and module, fixed arguments)
        command, capture_output=True, text=True, check=True, cwd=Path(__file__).parents[1]
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def machine() -> str:
    """Describe the machine the figures come from, in one line."""
    import os

    return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def run(children: int, naive_children: int, councils: int, missing_nhs_rate: float) -> dict:
    """Measure all three in subprocesses and return the figures, with rates and the ratio."""
    fast = _run_worker("vectorised", children, councils, missing_nhs_rate)
    daily_missing = max(missing_nhs_rate, DAILY_MISSING_NHS_RATE)
    daily = _run_worker("daily", children, councils, daily_missing)
    naive = _run_worker("naive", naive_children, councils, missing_nhs_rate)
    naive_rate = naive_children / naive["seconds"]
    write_rate = children / fast["write_seconds"]
    return {
        "machine": machine(),
        "children": children,
        "councils": councils,
        "missing_nhs_rate": missing_nhs_rate,
        "rows_with_movers_and_duplicates": fast["written_rows"],
        "generate_seconds": fast["generate_seconds"],
        "generate_children_per_second": round(children / fast["generate_seconds"]),
        "generate_and_write_seconds": fast["write_seconds"],
        "generate_and_write_children_per_second": round(write_rate),
        "written_mib": round(fast["bytes_written"] / 2**20, 1),
        "peak_mib_generate_and_write": fast["peak_mib"],
        "first_day_in_memory_seconds": daily["first_day_seconds"],
        "daily_missing_nhs_rate": daily_missing,
        "next_day_seconds": daily["next_day_seconds"],
        "next_day_events": daily["events_day1"],
        "peak_mib_first_and_next_day": daily["peak_mib"],
        "naive_children_measured": naive_children,
        "naive_seconds": naive["seconds"],
        "naive_children_per_second": round(naive_rate),
        "naive_seconds_extrapolated_to_children": round(children / naive_rate),
        "naive_peak_mib": naive["peak_mib"],
        "speedup_generate_and_write_vs_naive": round(write_rate / naive_rate, 1),
    }


def main() -> None:
    """Parse arguments, run (or be one worker), print the figures, keep them in results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--children", type=int, default=1_000_000)
    parser.add_argument("--naive-children", type=int, default=20_000)
    parser.add_argument("--councils", type=int, default=4)
    parser.add_argument("--missing-nhs-rate", type=float, default=0.1)
    parser.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        workdir = Path(tempfile.mkdtemp(prefix="registry-bench-synth-"))
        try:
            figures = WORKERS[args.worker](
                args.children, args.councils, args.missing_nhs_rate, workdir
            )
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        print(json.dumps(figures))
        return
    figures = run(args.children, args.naive_children, args.councils, args.missing_nhs_rate)
    width = max(len(k) for k in figures)
    for name, value in figures.items():
        print(
            f"{name:<{width}}  {value:,}" if isinstance(value, int) else f"{name:<{width}}  {value}"
        )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "synth.json").write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
