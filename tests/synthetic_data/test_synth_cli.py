"""`registry-sync synth`: --days writes rising sequences; a progress bar only when wanted."""

from __future__ import annotations

import io

import pytest

from synthetic_data.progress import council_progress, wants_progress
from synthetic_data.writer import CouncilCounts
from transforms.cli import main


def synth(tmp_path, *extra: str) -> int:
    args = ["--home", str(tmp_path), "synth", "--children", "300", "--councils", "2"]
    return main([*args, *extra])


def test_when_days_given_then_each_day_is_the_next_sequence(tmp_path, capsys):
    assert synth(tmp_path, "--days", "2", "--no-progress") == 0
    names = sorted(p.name for p in (tmp_path / "landing" / "E08000003").glob("children_*.csv"))
    assert names == [
        "children_20261125_0001.csv",
        "children_20261126_0002.csv",
        "children_20261127_0003.csv",
    ]
    assert sorted(p.name for p in (tmp_path / "truth").glob("children*.parquet")) == [
        "children.parquet",
        "children_20261126.parquet",
        "children_20261127.parquet",
    ]
    out = capsys.readouterr().out
    assert "2026-11-27 (sequence 3)" in out and "changes since the day before" in out


def test_same_seed_through_the_cli_gives_identical_files(tmp_path):
    for name in ("a", "b"):
        assert synth(tmp_path / name, "--days", "1", "--seed", "5") == 0
    a = {p.relative_to(tmp_path / "a"): p.read_bytes() for p in (tmp_path / "a").rglob("*.*")}
    b = {p.relative_to(tmp_path / "b"): p.read_bytes() for p in (tmp_path / "b").rglob("*.*")}
    assert a and a == b


def test_when_stderr_is_not_a_terminal_then_no_progress_unless_asked(tmp_path, capsys):
    assert synth(tmp_path / "quiet") == 0
    assert capsys.readouterr().err == ""
    assert synth(tmp_path / "loud", "--progress", "--days", "1") == 0
    err = capsys.readouterr().err
    assert "synth" in err and "4/4" in err and "council" in err


@pytest.mark.parametrize(
    ("asked", "tty", "shown"),
    [(None, True, True), (None, False, False), (True, False, True), (False, True, False)],
)
def test_progress_follows_the_flag_else_the_terminal(asked, tty, shown):
    stream = io.StringIO()
    stream.isatty = lambda: tty  # type: ignore[method-assign]
    assert wants_progress(asked, stream) is shown


def test_progress_bar_counts_councils_and_rows_only():
    stream = io.StringIO()
    counts = CouncilCounts("E08000035", "Leeds", 1200, 1190, 20, 5, 30, 40)
    with council_progress(2, True, stream) as step:
        assert step is not None
        step(counts)
        step(counts)
    text = stream.getvalue()
    assert "2/2" in text and "2,400 rows" in text and "Leeds" not in text
    with council_progress(2, False, stream) as step:
        assert step is None


def test_when_all_councils_at_real_sizes_then_every_council_in_proportion(tmp_path, capsys):
    args = ["--home", str(tmp_path), "synth", "--children", "2000", "--councils", "all"]
    assert main([*args, "--sizes", "real", "--no-progress"]) == 0
    folders = {p.name for p in (tmp_path / "landing").iterdir()}
    assert len(folders) == 154 and "national" in folders  # 153 councils and the national register
    rows = {
        line.split()[0]: int(line.split()[-6])
        for line in capsys.readouterr().out.splitlines()
        if line.startswith("E")
    }
    assert rows["E10000016"] > rows["E08000035"] > rows["E06000017"]  # Kent > Leeds > Rutland


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (("--days", "-1"), "--days must be 0 or more"),
        (("--defect-rate", "2"), "defect_rate"),
        (("--children", "1000000", "--nhs-range", "test"), "nhs_range to 'auto' or 'extended'"),
    ],
)
def test_when_arguments_wrong_then_exit_2_with_what_to_fix(tmp_path, capsys, extra, message):
    assert synth(tmp_path, *extra) == 2
    assert message in capsys.readouterr().err
