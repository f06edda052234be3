"""Council feedback: CSV for systems, HTML for people, refused rows kept byte for byte, and the
pre-flight check printing the same report without Airflow, key or index."""

from __future__ import annotations

import csv
import html
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from test_bad_extracts import BAD, GOOD, NAME, csv_bytes, drop, filler, new_store, nhs, row

from transforms.cli import main
from transforms.feedback import (
    PIPELINE_RULES,
    REFUSED,
    Feedback,
    RowLine,
    RuleLine,
    feedback_csv,
    format_html,
    format_text,
    shown_id,
    spreadsheet_safe,
)
from transforms.ingest import ExtractRef
from transforms.pipeline import SyncPaths, process_extract, sync_drop_zone

ROOT = Path(__file__).parents[1]
INVALID_NHS = "9434765910"  # fails Modulus 11: a critical rule


@pytest.mark.parametrize("lead", ["=", "+", "-", "@", "\t", "\r"])
def test_cell_starting_like_a_formula_gets_a_quote(lead):
    assert spreadsheet_safe(lead + "1+1") == "'" + lead + "1+1"


@pytest.mark.parametrize("text", ["L1", "a=b", "", "12", "'=already"])
def test_ordinary_cells_are_unchanged(text):
    assert spreadsheet_safe(text) == text


def _feedback(local_id="L<1>", reason="the <b>file</b> & more") -> Feedback:
    return Feedback(
        folder=BAD,
        file_name="children_<x>.csv",
        verdict=REFUSED,
        reason=reason,
        received=3,
        refused_rows=1,
        rules=(RuleLine("nhs_number_mod11", "nhs_number", "critical", 1, "Fix <it> & go."),),
        rows=(RowLine(3, local_id, ("nhs_number_mod11",)),),
    )


def test_html_escapes_every_string():
    page = format_html(_feedback("<script>alert(1)</script>"))
    assert "<script>" not in page and "<b>" not in page and "<x>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "the &lt;b&gt;file&lt;/b&gt; &amp; more" in page
    assert "Fix &lt;it&gt; &amp; go." in page
    assert "default-src 'none'" in page  # no script would run even if one slipped through


def test_csv_neutralises_formulas_in_ids_and_reasons():
    text = feedback_csv(_feedback("=HYPERLINK(1)", reason="-reason"))
    records = list(csv.reader(io.StringIO(text)))
    assert records[1][7] == "'-reason"
    assert [r[6] for r in records if r[0] == "row"] == ["'=HYPERLINK(1)"]


@pytest.mark.parametrize(
    ("value", "shown"),
    [("L1", "L1"), ("", ""), ("x" * 65, "(not shown)"), ("a\nb", "(not shown)"), (None, "")],
)
def test_only_id_like_local_ids_are_echoed(value, shown):
    assert shown_id(value) == shown


def test_long_reports_cap_the_rows_shown_but_the_csv_lists_all():
    fb = _feedback()
    many = Feedback(
        **{**fb.__dict__, "rows": tuple(RowLine(i, f"L{i}", ("x",)) for i in range(300))}
    )
    assert "and 100 more" in format_text(many) and "and 100 more" in format_html(many)
    assert feedback_csv(many).count("\nrow,") == 300


# --- through the pipeline ------------------------------------------------------------------------

CRLF_NOTE = '"first line\r\nsecond, with a comma and ""quotes"""'


def _mixed_extract(eol="\n") -> bytes:
    """41 rows: row 3 (L2) fails Modulus 11 and holds a quoted line break; row 42 has no sex."""
    note = CRLF_NOTE if eol == "\r\n" else CRLF_NOTE.replace("\r\n", "\n")
    rows = [row("L1", nhs(10)), row("L2", INVALID_NHS, notes=note), *filler(38)]
    rows.append(row("L3", "", sex=""))
    return csv_bytes(rows, eol=eol)


@pytest.mark.parametrize("eol", ["\n", "\r\n"])
def test_refused_rows_of_an_accepted_file_are_kept_byte_for_byte(tmp_path, key, policy, eol):
    data = _mixed_extract(eol)
    drop(tmp_path / "landing", data, row_count=41)
    reports = sync_drop_zone(SyncPaths(tmp_path), key, policy, new_store(tmp_path, policy), "r1")
    assert reports[0].status == "loaded" and reports[0].counts["rejected"] == 2

    folder = tmp_path / "quarantine" / BAD / Path(NAME).stem
    lines = data.split(eol.encode())
    header, l2_first, l2_second, last = lines[0], lines[2], lines[3], lines[-2]
    e = eol.encode()
    expected = header + e + l2_first + e + l2_second + e + last + e
    assert (folder / "rejected_rows.csv").read_bytes() == expected
    reason = json.loads((folder / "reason.json").read_text())
    assert reason["rows"] == [
        {"row_number": 3, "lines": [3, 4], "rules": ["nhs_number_mod11"]},
        {"row_number": 42, "lines": [43, 43], "rules": ["sex_missing"]},
    ]
    assert reason["sha256"] == reports[0].sha256
    # the original file itself was loaded and archived intact
    assert [p.read_bytes() for p in (tmp_path / "processed" / BAD).glob(f"*/{NAME}")] == [data]


def test_set_aside_reason_lists_each_row_as_json_writes_it_one_a_line():
    from transforms.pipeline import _json_rows_per_line, _row_items

    refused = {1: "nhs_number_mod11", 40: "sex_missing;nhs_number_mod11", 7: "sex_missing"}
    spans = [(3, 4), (42, 42), (9, 9)]
    record = {"file": NAME, "kind": "rows", "reason": "3 row(s) broke critical rules"}
    text = _json_rows_per_line(record, _row_items(refused, spans))
    rows = [
        {"row_number": p + 2, "lines": list(span), "rules": rules.split(";")}
        for (p, rules), span in zip(refused.items(), spans, strict=True)
    ]
    assert json.loads(text) == {**record, "rows": rows}
    assert [json.dumps(row) for row in rows] == [
        line.strip().rstrip(",") for line in text.splitlines() if '"row_number"' in line
    ]
    assert json.loads(_json_rows_per_line(record, [])) == {**record, "rows": []}


def test_feedback_html_shows_verdict_rules_with_fixes_and_refused_rows(tmp_path, key, policy):
    drop(tmp_path / "landing", _mixed_extract(), row_count=41)
    sync_drop_zone(SyncPaths(tmp_path), key, policy, new_store(tmp_path, policy), "r1")
    page = (tmp_path / "outbox" / BAD / f"{NAME}.feedback.html").read_text()
    rules = yaml.safe_load((ROOT / "expectations" / "rules.yaml").read_text())
    fix = rules["suites"]["children_extract"]["rules"]["nhs_number_mod11"]["fix"]
    assert "ACCEPTED" in page and html.escape(fix) in page
    cells = [html.unescape(c) for c in re.findall(r"<td>(.*?)</td>", page)]
    assert cells[-6:-3] == ["3", "L2", "nhs_number_mod11"]
    assert cells[-3:] == ["42", "L3", "sex_missing"]
    for value in ("Zebedee", "Quixley", INVALID_NHS, "first line", "LS6 2AB"):
        assert value not in page


def test_each_council_gets_only_its_own_feedback(tmp_path, key, policy):
    drop(tmp_path / "landing", _mixed_extract(), row_count=41)
    drop(tmp_path / "landing", csv_bytes([row("OTHER1", INVALID_NHS), *filler(19)]), folder=GOOD)
    sync_drop_zone(SyncPaths(tmp_path), key, policy, new_store(tmp_path, policy), "r1")
    mine = " ".join(p.read_text() for p in (tmp_path / "outbox" / BAD).iterdir())
    theirs = " ".join(p.read_text() for p in (tmp_path / "outbox" / GOOD).iterdir())
    assert "OTHER1" not in mine and "OTHER1" in theirs
    assert "L2" in mine and "L2" not in theirs


def test_same_child_twice_is_reported_and_set_aside(tmp_path, key, policy):
    data = csv_bytes([row("D1", nhs(20)), row("D2", nhs(20)), *filler(18)])
    drop(tmp_path / "landing", data)
    reports = sync_drop_zone(SyncPaths(tmp_path), key, policy, new_store(tmp_path, policy), "r1")
    assert reports[0].rules == {"duplicate_child_in_file": 2}
    feedback = (tmp_path / "outbox" / BAD / f"{NAME}.feedback.csv").read_text()
    assert PIPELINE_RULES["duplicate_child_in_file"][2] in feedback
    assert [r[5:7] for r in csv.reader(io.StringIO(feedback)) if r[0] == "row"] == [
        ["2", "D1"],
        ["3", "D2"],
    ]
    rejected = (tmp_path / "quarantine" / BAD / Path(NAME).stem / "rejected_rows.csv").read_bytes()
    assert rejected == b"".join(data.splitlines(keepends=True)[:3])


def test_processing_the_same_file_again_reuses_its_rejected_rows_folder(tmp_path, key, policy):
    drop(tmp_path / "landing", _mixed_extract(), row_count=41)
    ref = ExtractRef(BAD, NAME, NAME + ".manifest.json")
    paths = SyncPaths(tmp_path)
    process_extract(paths, ref, key, policy, "r1")
    process_extract(paths, ref, key, policy, "r1")  # a retried task
    assert [p.name for p in (tmp_path / "quarantine" / BAD).iterdir()] == [Path(NAME).stem]


# --- the pre-flight check ------------------------------------------------------------------------


def test_check_extract_of_a_good_file_exits_zero(tmp_path, capsys):
    path = drop(tmp_path, csv_bytes([row("L1", nhs(10)), *filler(3)]), row_count=4)
    assert main(["check-extract", str(path)]) == 0
    out = capsys.readouterr().out
    assert "Verdict: ACCEPTED" in out and "Manifest: present" in out


def test_check_extract_of_a_broken_file_exits_one_with_the_reason(tmp_path, capsys):
    path = drop(tmp_path, csv_bytes([row()], sep=";"))
    assert main(["check-extract", str(path), "--council", BAD]) == 1
    out = capsys.readouterr().out
    assert "Verdict: REFUSED" in out and "not comma-separated" in out
    assert "Zebedee" not in out


def test_check_extract_without_manifest_exits_one_and_says_so(tmp_path, capsys):
    path = tmp_path / BAD / NAME
    path.parent.mkdir()
    path.write_bytes(csv_bytes([row()]))
    assert main(["check-extract", str(path)]) == 1
    assert "no manifest beside the file" in capsys.readouterr().out


def test_check_extract_outside_a_council_folder_needs_the_council(tmp_path, capsys):
    path = drop(tmp_path, csv_bytes([row()]), folder="exports")
    assert main(["check-extract", str(path)]) == 1
    assert "give --council CODE" in capsys.readouterr().out


def test_check_extract_prints_the_report_the_pipeline_writes(tmp_path, key, policy, capsys):
    data = csv_bytes([row("D1", nhs(20)), row("D2", nhs(20)), *filler(17), row("B1", INVALID_NHS)])
    drop(tmp_path / "landing", data)
    assert main(["check-extract", str(tmp_path / "landing" / BAD / NAME)]) == 0
    printed = capsys.readouterr().out

    sync_drop_zone(SyncPaths(tmp_path), key, policy, new_store(tmp_path, policy), "r1")
    page = (tmp_path / "outbox" / BAD / f"{NAME}.feedback.html").read_text()
    body = html.unescape(re.sub(r"<[^>]+>", " ", page))
    printed_rows = re.findall(r"row (\d+)  local id (\S+)  (\S+)", printed)
    assert printed_rows == [
        ("2", "D1", "duplicate_child_in_file"),
        ("3", "D2", "duplicate_child_in_file"),
        ("21", "B1", "nhs_number_mod11"),
    ]
    for number, local_id, rules in printed_rows:
        assert f"<td>{number}</td><td>{local_id}</td><td>{rules}</td>" in page
    for line in printed.splitlines():
        if line.startswith(("Verdict:", "Reason:", "Rows received:")):
            assert line.split(": ", 1)[1] in body
        if line.startswith("  critical"):
            assert line.rsplit(". ", 1)[-1].strip() in body  # the fix sentence


def test_check_extract_needs_no_airflow_key_or_index(tmp_path):
    path = drop(tmp_path / "landing", csv_bytes([row("L1", nhs(10))]), row_count=1)
    script = (
        "import sys\n"
        "from transforms.cli import main\n"
        f"code = main(['check-extract', {str(path)!r}])\n"
        "assert not [m for m in sys.modules if m.split('.')[0] == 'airflow'], 'airflow imported'\n"
        "assert 'transforms.load' not in sys.modules, 'the index module was imported'\n"
        "sys.exit(code)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REGISTRY_SYNC", "AIRFLOW"))}
    env["REGISTRY_SYNC_HOME"] = str(tmp_path / "home")
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Verdict: ACCEPTED" in done.stdout
    assert not (tmp_path / "home").exists()


# --- the guide for councils ----------------------------------------------------------------------


def test_every_rule_is_explained_in_the_councils_guide():
    guide = (ROOT / "docs" / "for-councils.md").read_text()
    rules = yaml.safe_load((ROOT / "expectations" / "rules.yaml").read_text())
    names = {name for suite in rules["suites"].values() for name in suite["rules"]}
    names |= set(PIPELINE_RULES)
    missing = sorted(n for n in names if f"`{n}`" not in guide)
    assert not missing, f"docs/for-councils.md does not explain {missing}"
