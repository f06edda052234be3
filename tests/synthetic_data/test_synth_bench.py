"""bench.synth at a tiny size: every figure is there, and the workers' figures add up."""

from __future__ import annotations

from bench.synth import run


def test_bench_reports_rates_ratio_and_peak_memory_for_each_measurement():
    figures = run(children=3000, naive_children=200, councils=2, missing_nhs_rate=0.1)
    assert figures["children"] == 3000 and figures["naive_children_measured"] == 200
    assert figures["rows_with_movers_and_duplicates"] >= 3000
    for name in (
        "generate_children_per_second",
        "generate_and_write_children_per_second",
        "naive_children_per_second",
        "peak_mib_generate_and_write",
        "peak_mib_first_and_next_day",
        "naive_peak_mib",
        "next_day_events",
    ):
        assert figures[name] > 0, name
    ratio = figures["generate_and_write_children_per_second"] / figures["naive_children_per_second"]
    assert abs(figures["speedup_generate_and_write_vs_naive"] - ratio) < 0.1
