"""bench.resync at a tiny size: every round re-syncs against the council's newest snapshot."""

from __future__ import annotations

import re

from bench.resync import run


def test_rounds_report_medians_each_ratio_and_only_numbers(tmp_path):
    figures = run(children=300, councils=2, workdir=tmp_path, rounds=2)
    assert figures["rounds"] == 2
    for label in ("unchanged", "changed_1pct"):
        ratios = [float(r) for r in figures[f"{label}_round_ratios"].split()]
        assert len(ratios) == 2
        assert min(ratios) <= figures[f"{label}_to_floor_ratio"] <= max(ratios)
        assert figures[f"{label}_rounds_within_target"] == sum(
            r <= figures[f"{label}_target_ratio"] for r in ratios
        )
    assert figures["unchanged_rows_rewritten"] == 0
    # Each 1% snapshot edits 1% of the newest snapshot's lines: had a round started from an
    # older one, the last round would rewrite the edits of the rounds before it as well.
    edited = int(figures["changed_1pct_lines"] * 0.01)
    assert 0 < figures["changed_1pct_rows_rewritten"] <= edited
    # Counts, seconds and ratios only: nothing from the population.
    for name, value in figures.items():
        if name != "machine":
            assert isinstance(value, int | float) or re.fullmatch(r"[0-9. ]+", value), name
