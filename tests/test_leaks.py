"""Leak audit: planted ground-truth values are found in logs, SQLite and JSON, and never printed."""

from __future__ import annotations

import json
import sqlite3

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from transforms.cli import main
from transforms.leaks import (
    ADDRESS,
    EMAIL_ADDRESS,
    LOCAL_CHILD_ID,
    NHS_NUMBER,
    PERSON_NAME,
    PHONE_NUMBER,
    POSTCODE,
    UPN,
    Artefact,
    audit_leaks,
    build_truth_index,
    collect_artefacts,
    database_artefacts,
)

TRUTH = pd.DataFrame(
    {
        "council_code": ["E08000035", "E08000003"],
        "local_child_id": ["LDS00000042", "MAN00000007"],
        "nhs_number": ["9434765919", "9990001228"],
        "upn": ["B801200005001", ""],
        "given_name": ["Rowena", "Tobias"],
        "family_name": ["Quilliam", "O'Farrell"],
        "former_family_name": ["", "Pendleby"],
        "address": ["Flat 4, 61 Birchover Hill", "7 Larkspur Mews"],
        "postcode": ["LS6 2YF", "M13 4GF"],
        "carer_name": ["Imelda Quilliam", "Cormac O'Farrell"],
        "carer_phone": ["07700 900945", "0113 496 0615"],
        "note_emails": ["imelda.q77@example.net", ""],
    }
)
# Every raw value planted below; none may appear in a printed report.
PLANTED = [
    "9434765919",
    "943 476 5919",
    "943-476-5919",
    "999 000 1228",
    "B801200005001",
    "Rowena",
    "Quilliam",
    "Tobias",
    "Farrell",
    "Birchover",
    "LS6 2YF",
    "LS62YF",
    "M13 4GF",
    "07700 900945",
    "07700900945",
    "496 0615",
    "imelda.q77",
    "LDS00000042",
    "MAN00000007",
]
CLEAN_LOG = (
    "2026-11-25T06:00:00Z INFO pii: scanned 300 notes, 88 with personal data: "
    "{'PERSON': 40, 'UK_NHS': 12}\n"
    "run manual__2026-11-25T21_17_22 council E08000035 loaded 970 district LS6 "
    "pseudonym 9f2c4e1b0d3a5c7e9f2c4e1b0d3a5c7e9f2c4e1b0d3a5c7e9f2c4e1b0d3a5c7e\n"
    "epoch 1764100000 sha256 0123456789abcdef; 01/02/2026 took 0.94 s\n"
)


def assert_no_values(text: str) -> None:
    for value in PLANTED:
        assert value not in text, "the report printed a planted value"


def counts(report) -> dict[tuple[str, str], int]:
    return {(f.artefact, f.entity_type): f.occurrences for f in report.leaks}


def test_when_values_planted_in_a_log_then_each_kind_is_counted_and_none_is_printed():
    log = (
        "INFO child 943 476 5919 processed\n"
        "WARNING retry for 943-476-5919 and 9434765919 (upn B801200005001)\n"
        "DEBUG row: Rowena Quilliam, 61 Birchover Hill, LS62YF\n"
        "DEBUG carer QUILLIAM, Imelda on 07700900945 or +44 113 496 0615\n"
        "DEBUG mail imelda.q77@example.net; former name Tobias Pendleby; Tobias O'Farrell's file\n"
        "DEBUG M13 4GF\n"
    )
    report = audit_leaks([Artefact.from_bytes("task.log", log, text=True)], TRUTH, presidio=False)
    assert counts(report) == {
        ("task.log", NHS_NUMBER): 3,
        ("task.log", UPN): 1,
        ("task.log", PERSON_NAME): 4,
        ("task.log", ADDRESS): 1,
        ("task.log", POSTCODE): 2,
        ("task.log", PHONE_NUMBER): 2,
        ("task.log", EMAIL_ADDRESS): 1,
    }
    nhs = next(f for f in report.leaks if f.entity_type == NHS_NUMBER)
    assert nhs.distinct == 1  # one number, three spellings
    assert not report.clean
    assert_no_values(report.format())
    assert_no_values(repr(report))


def test_when_values_sit_in_sqlite_tables_or_deleted_rows_then_found(tmp_path):
    db = tmp_path / "airflow.db"
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA secure_delete = OFF")
        conn.execute("CREATE TABLE xcom (key TEXT, value BLOB)")
        conn.execute("INSERT INTO xcom VALUES ('counts', ?)", (b'{"received": 3}',))
        conn.execute("INSERT INTO xcom VALUES ('row', ?)", (b'{"nhs": "9990001228"}',))
        conn.execute("CREATE TABLE gone (v TEXT)")
        conn.execute("INSERT INTO gone VALUES ('carer 07700 900945')")
        conn.execute("DELETE FROM gone")  # the bytes stay in the file's free pages
    artefacts = collect_artefacts(None, None, None, extra=[db])
    report = audit_leaks(artefacts, TRUTH, presidio=False)
    found = counts(report)
    assert found[(f"{db} :: table xcom", NHS_NUMBER)] == 1
    assert found[(f"{db} (raw bytes)", NHS_NUMBER)] == 1
    assert found[(f"{db} (raw bytes)", PHONE_NUMBER)] == 1
    assert (f"{db} :: table gone", PHONE_NUMBER) not in found
    assert_no_values(report.format())


def test_when_values_are_written_back_to_back_then_still_found():
    # SQLite's record format puts text columns side by side with nothing between them.
    blob = b"\x03E08000035imelda.q77@example.netE08000035\x01LS62YFE08\x02XM13 4GF9"
    report = audit_leaks([Artefact.from_bytes("raw", blob)], TRUTH, presidio=False)
    assert counts(report) == {("raw", EMAIL_ADDRESS): 1, ("raw", POSTCODE): 2}


def test_when_values_in_json_and_parquet_under_home_then_found(tmp_path):
    home = tmp_path / "home"
    (home / "runs").mkdir(parents=True)
    (home / "runs" / "r1.json").write_text(json.dumps({"files": [{"reason": "Rowena Quilliam"}]}))
    (home / "staging" / "r1").mkdir(parents=True)
    pq.write_table(
        pa.table({"pseudonym": ["ab" * 32], "postcode": ["LS6 2YF"]}),
        home / "staging" / "r1" / "x.parquet",
    )
    report = audit_leaks(collect_artefacts(home, None, None), TRUTH, presidio=False)
    assert counts(report) == {
        ("home/runs/r1.json", PERSON_NAME): 1,
        ("home/staging/r1/x.parquet (rows)", POSTCODE): 1,
    }


def test_when_only_clean_artefacts_then_no_leak(tmp_path):
    db = tmp_path / "index.sqlite"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE child_index (p TEXT, yob INT, district TEXT, urn TEXT)")
        conn.execute("INSERT INTO child_index VALUES (?, 2019, 'LS6', '107942')", ("9f" * 32,))
    artefacts = [
        Artefact.from_bytes("task.log", CLEAN_LOG, text=True),
        *collect_artefacts(None, None, f"sqlite:///{db}"),
    ]
    report = audit_leaks(artefacts, TRUTH, presidio=False)
    assert report.clean and report.leaks == () and report.artefacts == 3
    assert "no ground-truth value found" in report.format()


def test_when_raw_extract_folders_and_truth_in_home_then_not_scanned(tmp_path):
    home = tmp_path / "home"
    for folder in ("landing/E08000035", "processed/E08000035", "quarantine/E08000035", "truth"):
        (home / folder).mkdir(parents=True)
        (home / folder / "children.csv").write_text("nhs_number\n9434765919\n")
    (home / "outbox" / "E08000035").mkdir(parents=True)
    (home / "outbox" / "E08000035" / "f.feedback.csv").write_text("row,LDS00000042\n")
    artefacts = collect_artefacts(home, None, None, exclude=[home / "truth"])
    assert [a.name for a in artefacts] == ["home/outbox/E08000035/f.feedback.csv"]
    assert artefacts[0].council == "E08000035"
    assert audit_leaks(artefacts, TRUTH, presidio=False).clean


def test_when_a_local_id_is_in_another_councils_outbox_then_it_is_a_leak(tmp_path):
    home = tmp_path / "home"
    for council in ("E08000035", "E08000003"):
        (home / "outbox" / council).mkdir(parents=True)
        (home / "outbox" / council / "f.feedback.csv").write_text("row,LDS00000042\n")
    report = audit_leaks(collect_artefacts(home, None, None), TRUTH, presidio=False)
    assert counts(report) == {("home/outbox/E08000003/f.feedback.csv", LOCAL_CHILD_ID): 1}


def test_airflow_home_gives_its_database_and_logs_but_not_its_config(tmp_path):
    airflow = tmp_path / "airflow"
    log_dir = airflow / "logs" / "dag_id=registry_sync" / "run_id=r" / "task_id=t"
    log_dir.mkdir(parents=True)
    (log_dir / "attempt=1.log").write_text('{"event": "child 943 476 5919"}\n')
    (airflow / "airflow.cfg").write_text("[core]\n# 9434765919\n")
    with sqlite3.connect(airflow / "airflow.db") as conn:
        conn.execute("CREATE TABLE rendered_task_instance_fields (v TEXT)")
    report = audit_leaks(collect_artefacts(None, airflow, None), TRUTH, presidio=False)
    assert counts(report) == {
        ("airflow home/logs/dag_id=registry_sync/run_id=r/task_id=t/attempt=1.log", NHS_NUMBER): 1
    }
    assert report.artefacts == 3  # one table, the database's raw bytes, the log


def test_when_an_artefact_cannot_be_read_then_the_audit_is_not_clean():
    def broken() -> bytes:
        raise PermissionError("Rowena Quilliam's file")

    report = audit_leaks([Artefact("locked.log", broken)], TRUTH, presidio=False)
    assert not report.clean and report.errors == (("locked.log", "PermissionError"),)
    assert_no_values(report.format())


def test_presidio_reports_personal_data_missing_from_the_truth_as_suspects_only():
    log = CLEAN_LOG + "note: spoke to Margaret Hennessy on 07700 900123 about Tom\n"
    report = audit_leaks([Artefact.from_bytes("task.log", log, text=True)], TRUTH)
    assert report.clean and not report.leaks
    suspects = {f.entity_type for f in report.suspects}
    assert {"PERSON", "PHONE_NUMBER"} <= suspects
    assert "Hennessy" not in report.format() and "900123" not in report.format()


def test_truth_index_scales_to_a_large_population():
    n = 100_000
    truth = pd.DataFrame(
        {
            "nhs_number": [f"{999_000_000 + i:09d}0" for i in range(n)],
            "given_name": ["Rowena"] * n,
            "family_name": [f"Name{i}" for i in range(n)],
            "postcode": ["LS6 2YF"] * n,
        }
    )
    index = build_truth_index(truth)
    text = "\n".join(f"line {i} value {i * 7919:012d} Word Other" for i in range(100_000))
    text += "\nRowena Name99999 moved to ls6 2yf, 999 009 9990"
    report = audit_leaks([Artefact.from_bytes("big.log", text)], index, presidio=False)
    assert report.bytes_scanned > 3_000_000
    assert report.by_entity() == {NHS_NUMBER: 1, PERSON_NAME: 1}  # lower-case postcodes are missed


def test_cli_exit_codes(tmp_path, capsys):
    truth_dir, home = tmp_path / "truth", tmp_path / "home"
    truth_dir.mkdir()
    TRUTH.to_parquet(truth_dir / "children.parquet")
    (home / "runs").mkdir(parents=True)
    (home / "runs" / "r.json").write_text('{"run_id": "r"}\n')
    base = ["audit-leaks", "--truth", str(truth_dir), "--home", str(home), "--no-presidio"]
    base += ["--airflow-home", str(tmp_path / "no-airflow")]

    assert main(base) == 0
    assert "no ground-truth value found" in capsys.readouterr().out

    (home / "runs" / "r.json").write_text('{"reason": "943 476 5919, LS6 2YF"}\n')
    assert main(base) == 1
    out = capsys.readouterr().out
    assert "LEAKS" in out and "NHS_NUMBER" in out and "POSTCODE" in out
    assert_no_values(out)

    assert main(["audit-leaks", "--truth", str(tmp_path / "missing")]) == 2


@pytest.mark.postgres
def test_postgres_tables_are_dumped_and_searched(postgres_url):
    engine = sa.create_engine(postgres_url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE audit_ledger (detail TEXT, n INT)"))
        conn.execute(sa.text("INSERT INTO audit_ledger VALUES ('Quilliam, Rowena', 1)"))
    engine.dispose()
    report = audit_leaks(database_artefacts(postgres_url), TRUTH, presidio=False)
    [finding] = report.leaks
    assert finding.entity_type == PERSON_NAME and finding.artefact.endswith("table audit_ledger")
