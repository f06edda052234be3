"""Retention: archive at 18 (25 for care leavers), purge 6 years later, audited with counts only.

Index tests run on the embedded SQLite index and on PostgreSQL (`index_url` fixture).
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from conftest import TEST_KEY_HEX, empty_index

from transforms.cli import main
from transforms.identifiers import nhs_check_digit
from transforms.load import INDEX_TABLES, IndexStore, StagedFile
from transforms.lookup import audit_entries, lookup_child
from transforms.minimise import KEY_COLUMNS, RETENTION_COLUMNS
from transforms.pseudonymise import PseudonymKey, pseudonymise_nhs_numbers
from transforms.retention import (
    PURGED_MARKER,
    apply_retention,
    archive_months,
    effective_archive_month,
)

A, B = "E08000035", "E08000003"
ROOT = Path(__file__).parents[1]
DAGS = ROOT / "dags"
DAY = dt.date.fromisoformat

# The version of the tests' key (`key` in conftest): look-ups check the index is under it.
KEY_VERSION = PseudonymKey(bytes.fromhex(TEST_KEY_HEX)).version


def nhs_numbers(n: int) -> list[str]:
    """Valid NHS numbers from the 999 test range."""
    out, body = [], 999_000_100
    while len(out) < n:
        check = nhs_check_digit(str(body))
        if check is not None:
            out.append(f"{body}{check}")
        body += 1
    return out


@pytest.fixture(scope="module")
def children(key):
    """Five children: (NHS number, pseudonym) pairs, pseudonyms as the pipeline makes them."""
    numbers = nhs_numbers(5)
    pseudonyms = pseudonymise_nhs_numbers(pd.Series(numbers, dtype="string"), key).tolist()
    return list(zip(numbers, pseudonyms, strict=True))


def rows(policy, council, kids, shielded=(), care_leaver=()):
    """Staged rows as `minimise` + `strip_shielded` make them; kids: {pseudonym: archive_on}."""
    out = []
    for p, archive_on in kids.items():
        row = {
            "child_pseudonym": p,
            "pseudonym_kind": "nhs",
            "key_version": KEY_VERSION,
            "council_code": council,
            "shielded": p in shielded,
            "year_of_birth": 2009,
            "sex": "F",
            "postcode_district": "LS6",
            "school_urn": "107000",
            "gp_practice_code": "B86001",
            "services": "EH",
            "other_service_involved": False,
            "care_leaver": p in care_leaver,
            "archive_on": archive_on,
        }
        if p in shielded:
            row.update({f.name: None for f in policy.fields if f.shielded == "drop"})
        out.append(row)
    return pd.DataFrame(out, columns=[*KEY_COLUMNS, *policy.field_names, *RETENTION_COLUMNS])


def staged(frame, council, sha, created="2026-11-25", seq=1, kind="children"):
    return StagedFile(
        council,
        f"{kind}_{sha}.csv",
        sha.ljust(64, "0"),
        kind,
        "snapshot",
        seq,
        created + "T06:00:00Z",
        frame,
    )


def optouts(pseudonyms, scope, sha, created="2026-11-25"):
    frame = pd.DataFrame({"child_pseudonym": list(pseudonyms)})
    return staged(frame, scope, sha, created, kind="optout")


def everywhere(store: IndexStore, value: str) -> list[str]:
    """Return the tables in which any column of any row holds `value`."""
    found = []
    with store.engine.connect() as conn:
        for name, tbl in store.t.items():
            for row in conn.execute(sa.select(tbl)):
                if any(value in str(v) for v in row):
                    found.append(name)
                    break
    return found


def files_holding(store: IndexStore, value: str, sqlite_dir: Path) -> list[str] | None:
    """Return the database files whose raw bytes hold `value` (None: not readable here).

    SQLite: the file and any -wal/-journal beside it. PostgreSQL: the data file of every table
    and index of the test schema, after a CHECKPOINT (needs a superuser, as in the tests).
    """
    needle = value.encode()
    if store.engine.dialect.name == "sqlite":
        store.engine.dispose()
        files = sorted(sqlite_dir.glob("index.sqlite*"))
        assert files
        return [f.name for f in files if needle in f.read_bytes()]
    relations = sa.text(
        "SELECT c.relname, pg_relation_filepath(c.oid) FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'i')"
    )
    try:
        with store.engine.connect() as conn:
            conn.exec_driver_sql("CHECKPOINT")
            hits = []
            for name, path in conn.execute(relations).all():
                data = conn.execute(sa.text("SELECT pg_read_binary_file(:p)"), {"p": path})
                if needle in bytes(data.scalar()):
                    hits.append(name)
            return hits
    except sa.exc.ProgrammingError:  # not a superuser: the server's files are out of reach
        return None


def in_index(store: IndexStore) -> set[str]:
    return set(store.index_frame()["child_pseudonym"])


@pytest.mark.parametrize(
    ("date_of_birth", "care_leaver", "expected"),
    [
        ("2008-12-15", "N", "2026-12"),  # turns 18 on 15 Dec: archived from 1 Dec
        ("2008-12-01", "N", "2026-12"),
        ("2008-12-31", "Y", "2033-12"),  # a care leaver: 25
        ("2004-02-29", "N", "2022-02"),  # a leap-day birthday: February, never March
        ("2010-01-05", "", "2028-01"),  # blank flag: not a care leaver
        ("", "N", None),
        ("2010-13-05", "N", None),
    ],
)
def test_archive_month_is_the_month_of_the_18th_or_25th_birthday(
    date_of_birth, care_leaver, expected
):
    got = archive_months(
        pd.Series([date_of_birth], dtype="string"), pd.Series([care_leaver], dtype="string")
    ).iloc[0]
    assert (None if pd.isna(got) else got) == expected


@pytest.mark.parametrize(
    ("contributions", "expected"),
    [
        ([("2026-12", False)], "2026-12"),
        ([("2026-12", False), ("2026-10", False)], "2026-10"),  # councils disagree: earliest
        ([("2026-12", False), ("2033-12", True)], "2033-12"),  # one council's care leaver: 25
        ([("2033-12", True), ("2033-10", True), ("2026-09", None)], "2033-10"),
        ([(None, False)], None),
    ],
)
def test_a_childs_archive_month_depends_only_on_the_set_of_contributions(contributions, expected):
    for order in itertools.permutations(contributions):
        assert effective_archive_month(list(order)) == expected


def test_when_a_child_turns_18_then_archived_and_look_up_says_not_found(
    index_url, policy, key, children
):
    (n1, p1), (n2, p2) = children[:2]
    store = IndexStore.from_url(index_url, policy)
    store.load(staged(rows(policy, A, {p1: "2026-12", p2: "2027-05"}, shielded={p1}), A, "a1"))

    before = apply_retention(store, DAY("2026-11-30"))
    assert before.archived == 0 and in_index(store) == {p1, p2}
    assert lookup_child(store, key, n1, "test: before the 18th")["result"] == "shielded"

    outcome = apply_retention(store, DAY("2026-12-01"))
    assert (outcome.archived, outcome.archived_shielded, outcome.shields_removed) == (1, 1, 1)
    assert in_index(store) == {p2}
    assert lookup_child(store, key, n1, "test: after the 18th")["result"] == "not found"
    assert lookup_child(store, key, n2, "test: still a child")["result"] == "found"
    snap = store.snapshot()
    assert [r[0] for r in snap["council_record"]] == [p2]
    assert snap["shield"] == []
    arc = store.t["archive"]
    with store.engine.connect() as conn:
        archived = conn.execute(sa.select(arc)).mappings().all()
    assert [dict(r) for r in archived] == [
        {
            "child_pseudonym": p1,
            "pseudonym_kind": "nhs",
            "key_version": KEY_VERSION,
            "responsible_council": A,
            "shielded": True,
            "archive_on": "2026-12",
            "archived_on": "2026-12-01",
            "purge_on": "2032-12",
        }
    ]
    # The same day again: nothing left to do, nothing changes.
    assert apply_retention(store, DAY("2026-12-01")).archived == 0
    assert store.snapshot() == snap


def test_care_leaver_is_kept_to_25_and_one_councils_flag_is_enough(index_url, policy, children):
    (_, p1), (_, p2) = children[:2]
    store = IndexStore.from_url(index_url, policy)
    # A knows p1 as a child (18 in Dec 2026); B knows p1 as a care leaver (25 in Dec 2033).
    store.load(staged(rows(policy, A, {p1: "2026-12", p2: "2026-12"}), A, "a1"))
    store.load(staged(rows(policy, B, {p1: "2033-12"}, care_leaver={p1}), B, "b1"))

    outcome = apply_retention(store, DAY("2026-12-01"))
    assert (outcome.archived, outcome.archived_care_leavers) == (1, 0)
    assert in_index(store) == {p1}
    assert outcome.council_records_expired == 1  # A's row: an adult by A's data
    assert store.index_frame().iloc[0]["responsible_council"] == B
    # A's next extract still lists p1, but its row is for an adult: dropped, counted.
    later = store.load(
        staged(rows(policy, A, {p1: "2026-12"}), A, "a2", created="2026-12-02", seq=2)
    )
    assert (later.archived, later.loaded) == (1, 0)
    assert in_index(store) == {p1}
    with store.engine.connect() as conn:
        rec = store.t["council_record"]
        councils = set(conn.execute(sa.select(rec.c.council_code)).scalars())
    assert councils == {B}

    assert apply_retention(store, DAY("2033-11-30")).archived == 0
    outcome = apply_retention(store, DAY("2033-12-01"))
    assert (outcome.archived, outcome.archived_care_leavers) == (1, 1)
    assert in_index(store) == set()


def test_a_later_extract_does_not_bring_an_archived_child_back(index_url, policy, children):
    (_, p1), (_, p2), (_, p3) = children[:3]
    store = IndexStore.from_url(index_url, policy)
    store.load(staged(rows(policy, A, {p1: "2026-12", p2: "2030-01"}), A, "a1"))
    apply_retention(store, DAY("2026-12-01"))
    # A corrected date of birth, another council, a care-leaver flag: still archived.
    outcome = store.load(
        staged(
            rows(policy, B, {p1: "2033-12", p2: "2030-01", p3: "2026-12"}, care_leaver={p1}),
            B,
            "b1",
            created="2026-12-05",
        )
    )
    # p1 is archived; p3 turns 18 this month (by the extract's own month): neither loads.
    assert (outcome.archived, outcome.loaded) == (2, 1)
    assert in_index(store) == {p2}
    assert not {p1, p3} & {r[0] for r in store.snapshot()["council_record"]}
    ledger = store.t["file_ledger"]
    with store.engine.connect() as conn:
        counts = json.loads(
            conn.execute(sa.select(ledger.c.counts).where(ledger.c.council_code == B)).scalar()
        )
    assert counts["archived"] == 2


def test_a_load_in_the_archive_month_archives_before_the_days_run(index_url, policy, children):
    (_, p1), (_, p2) = children[:2]
    store = IndexStore.from_url(index_url, policy)
    store.load(staged(rows(policy, A, {p1: "2026-12", p2: "2027-05"}), A, "a1"))
    # December's extract arrives before the retention run of 1 December: p1 is archived, not
    # merely dropped from A's snapshot.
    outcome = store.load(
        staged(rows(policy, A, {p1: "2026-12", p2: "2027-05"}), A, "a2", "2026-12-01", seq=2)
    )
    assert (outcome.archived, outcome.loaded) == (1, 1)
    assert in_index(store) == {p2}
    assert [(r[0], r[6]) for r in store.snapshot()["archive"]] == [(p1, "2026-12-01")]
    assert apply_retention(store, DAY("2026-12-01")).archived == 0
    events = [e for e in audit_entries(store) if e["event"] == "retention_archive"]
    assert [(e["trigger"], e["archived"]) for e in events] == [("load", 1), ("retention", 0)]


def test_purge_after_6_years_removes_every_trace(index_url, policy, key, children, tmp_path):
    (n1, p1), (_, p2) = children[:2]
    store = IndexStore.from_url(index_url, policy)
    # Several snapshots, so earlier loads have deleted (without scrubbing) copies of p1's rows.
    for seq in (1, 2, 3):
        frame = rows(policy, A, {p1: "2026-12", p2: "2040-01"}, shielded={p1} if seq > 1 else ())
        store.load(staged(frame, A, f"a{seq}", created=f"2026-11-2{seq}", seq=seq))
    lookup_child(store, key, n1, "test: asked about while a child")
    apply_retention(store, DAY("2026-12-01"))
    lookup_child(store, key, n1, "test: asked about once archived")
    store.load(optouts([p1], "national", "n1"))  # a register can still list them
    assert set(everywhere(store, p1)) == {"archive", "optout", "access_log"}
    log = store.t["access_log"]
    with store.engine.connect() as conn:
        looked_up = conn.execute(sa.select(sa.func.count()).select_from(log)).scalar()
    assert files_holding(store, p1, tmp_path) != []  # the check below can see deleted rows

    assert apply_retention(store, DAY("2032-11-30")).purged == 0
    outcome = apply_retention(store, DAY("2032-12-01"))

    assert (outcome.purged, outcome.access_log_blanked) == (1, 2)
    assert everywhere(store, p1) == []
    with store.engine.connect() as conn:
        blanked = conn.execute(sa.select(log).where(log.c.child_pseudonym == PURGED_MARKER))
        blanked = blanked.mappings().all()
        assert conn.execute(sa.select(sa.func.count()).select_from(log)).scalar() == looked_up
    assert {(r["reason"], r["outcome"]) for r in blanked} == {
        (PURGED_MARKER, "shielded"),
        (PURGED_MARKER, "not found"),
    }
    assert in_index(store) == {p2}  # nobody else touched
    # Not in free pages either: earlier snapshots' deleted rows and the archive's are scrubbed.
    assert files_holding(store, p1, tmp_path) in ([], None)
    assert files_holding(store, p1[:32], tmp_path) in ([], None)
    assert files_holding(store, p2, tmp_path)


def test_audit_events_carry_counts_only(index_url, policy, children):
    (_, p1), (_, p2) = children[:2]
    store = IndexStore.from_url(index_url, policy)
    store.load(staged(rows(policy, A, {p1: "2026-12"}, care_leaver=()), A, "a1"))
    store.load(staged(rows(policy, B, {p2: "2026-12"}), B, "b1"))
    apply_retention(store, DAY("2026-12-01"))
    apply_retention(store, DAY("2032-12-01"))
    events = [e for e in audit_entries(store) if e["event"].startswith("retention_")]
    assert [e["event"] for e in events] == [
        "retention_archive",
        "retention_purge",
        "retention_archive",
        "retention_purge",
    ]
    assert events[0]["archived"] == 2 and events[0]["by_council"] == {A: 1, B: 1}
    assert events[3]["purged"] == 2 and events[3]["access_log_blanked"] == 0
    for event in events:
        assert event["council"] is None
        for name, value in event.items():
            if name in ("at", "event", "council", "as_of", "trigger"):
                continue
            assert isinstance(value, int) or (
                name == "by_council" and all(isinstance(v, int) for v in value.values())
            ), name
    ledger = store.t["audit_event"]
    with store.engine.connect() as conn:
        text = " ".join(conn.execute(sa.select(ledger.c.detail)).scalars())
    assert p1 not in text and p2 not in text


def test_any_arrival_order_then_retention_gives_the_same_index(index_url, policy, children):
    (_, p1), (_, p2), (_, p3), (_, p4), (_, p5) = children[:5]
    C = "E09000001"
    files = [
        staged(
            rows(policy, A, {p1: "2033-12", p2: "2027-03"}, care_leaver={p1}), A, "a1", "2026-11-24"
        ),
        staged(rows(policy, B, {p1: "2033-10", p3: "2026-12"}, care_leaver={p1}), B, "b1"),
        staged(
            rows(policy, A, {p1: "2033-12", p4: "2026-11"}, shielded={p4}, care_leaver={p1}),
            A,
            "a2",
            created="2026-11-25",
            seq=2,
        ),
        optouts([p2], A, "o1"),
        # December: archives p3 when it loads after B's file, or the run does; p1's row is an
        # adult's (C does not know the care leaver), dropped.
        staged(rows(policy, C, {p1: "2026-12", p5: "2030-01"}), C, "c1", created="2026-12-02"),
    ]
    orders = list(itertools.permutations(range(len(files))))
    random.Random(5).shuffle(orders)
    snapshots = []
    for n, order in enumerate(orders[:12]):
        store = empty_index(index_url.replace("index.sqlite", f"index{n}.sqlite"), policy)
        for i in order:
            store.load(files[i])
        # Before the run, whether p3 is archived yet depends on whether C's file came after
        # B's; after it, the index and the archive are the same whatever the order.
        apply_retention(store, DAY("2026-12-01"))
        snapshots.append(store.snapshot())
        store.engine.dispose()
    assert all(s == snapshots[0] for s in snapshots)
    retained = snapshots[0]
    assert {r[0] for r in retained["child_index"]} == {p1, p5}  # the care leaver stays
    assert {r[0] for r in retained["archive"]} == {p3}
    assert {r[0] for r in retained["council_record"] if r[1] == C} == {p5}


def test_an_index_made_before_retention_gains_the_column(tmp_path, policy):
    url = f"sqlite:///{tmp_path / 'old.sqlite'}"
    store = IndexStore.from_url(url, policy)
    with store.engine.begin() as conn:
        conn.exec_driver_sql("DROP INDEX ix_council_record_archive_on")
        conn.exec_driver_sql("ALTER TABLE council_record DROP COLUMN archive_on")
    store.engine.dispose()
    store = IndexStore.from_url(url, policy)
    columns = {c["name"] for c in sa.inspect(store.engine).get_columns("council_record")}
    assert "archive_on" in columns
    assert "archive_on" not in {
        c["name"] for c in sa.inspect(store.engine).get_columns("child_index")
    }


def test_cli_retention_prints_counts(tmp_path, policy, children, capsys):
    (_, p1), _ = children[:2]
    url = f"sqlite:///{tmp_path / 'index.sqlite'}"
    store = IndexStore.from_url(url, policy)
    store.load(staged(rows(policy, A, {p1: "2026-12"}), A, "a1"))
    store.engine.dispose()
    args = ["--home", str(tmp_path), "retention", "--index-url", url]
    assert main([*args, "--today", "2026-12-01"]) == 0
    out = capsys.readouterr().out
    assert "archived=1" in out and "purged=0" in out and p1 not in out
    assert main([*args, "--today", "01/12/2026"]) == 2
    assert "--today must be a date YYYY-MM-DD" in capsys.readouterr().err


# -- key rotation carries the archive over -------------------------------------------------------


def test_when_rotated_then_the_archive_is_rekeyed_and_months_kept(index_url, tmp_path, key, policy):
    from synthetic_data.population import PopulationConfig
    from synthetic_data.writer import write_population
    from transforms.pipeline import SyncPaths, sync_drop_zone
    from transforms.pseudonymise import PseudonymKey
    from transforms.rotation import rotate_key

    new_key = PseudonymKey(bytes.fromhex("ee" * 32))
    paths = SyncPaths(tmp_path / "home")
    write_population(
        PopulationConfig(children=160, councils=2, seed=33), paths.landing, tmp_path / "truth"
    )
    store = IndexStore.from_url(index_url, policy)
    sync_drop_zone(paths, key, policy, store, run_id="day0")
    outcome = apply_retention(store, DAY("2028-01-01"))
    assert outcome.archived >= 3
    before = store.snapshot()
    rec = store.t["council_record"]

    def months() -> list[str]:
        with store.engine.connect() as conn:
            return sorted(conn.execute(sa.select(rec.c.archive_on)).scalars())

    months_before = months()
    assert months_before and all(m > "2028-01" for m in months_before)

    rotate_key(store, paths.landing, paths.processed, key, new_key)

    after = store.snapshot()
    old_archived = {r[0] for r in before["archive"]}
    assert len(after["archive"]) == len(before["archive"])
    assert not old_archived & {r[0] for r in after["archive"]}
    # Every column but the pseudonym and its key version is kept.
    assert sorted(r[3:] for r in after["archive"]) == sorted(r[3:] for r in before["archive"])
    assert {r[2] for r in after["archive"]} == {new_key.version}
    assert months() == months_before
    for name in INDEX_TABLES:
        assert not old_archived & {r[0] for r in after[name]}, name
    store.engine.dispose()


# -- the DAG -------------------------------------------------------------------------------------


def test_retention_dag_is_daily_thin_and_imports_cleanly():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS / "retention.py"))
    assert bag.import_errors == {}
    dag = bag.dags["retention"]
    assert dag.doc_md and "retention" in dag.doc_md
    assert {"registry", "privacy", "retention"} <= set(dag.tags)
    assert dag.max_active_runs == 1 and not dag.catchup
    assert set(dag.task_ids) == {"apply_retention"}
    assert all(t.retries >= 1 for t in dag.tasks)
    code = (
        f"import sys, runpy; runpy.run_path({str(DAGS / 'retention.py')!r}); "
        "print(sorted(m for m in ('pandas', 'pyarrow', 'transforms') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"


@pytest.mark.airflow
def test_dag_run_archives_as_of_the_logical_date_and_returns_counts_only(
    tmp_path, policy, children
):
    (_, p1), (_, p2) = children[:2]
    url = f"sqlite:///{tmp_path / 'index.sqlite'}"
    store = IndexStore.from_url(url, policy)
    store.load(staged(rows(policy, A, {p1: "2026-12", p2: "2027-01"}), A, "a1"))
    store.engine.dispose()
    airflow = str(Path(sys.executable).with_name("airflow"))
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(tmp_path / "airflow-home"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
        "PYTHONPATH": str(ROOT),
        "REGISTRY_SYNC_HOME": str(tmp_path / "home"),
        "REGISTRY_SYNC_INDEX_URL": url,
    }
    subprocess.run(
        [airflow, "db", "migrate"], env=env, check=True, capture_output=True, timeout=300
    )
    out = subprocess.run(
        [airflow, "dags", "test", "retention", "2026-12-01"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    log = out.stdout + out.stderr
    assert out.returncode == 0, log[-3000:]
    store = IndexStore.from_url(url, policy)
    assert in_index(store) == {p2}
    assert {r[0] for r in store.snapshot()["archive"]} == {p1}
    store.engine.dispose()
    assert p1 not in log
    airflow_db = (tmp_path / "airflow-home" / "airflow.db").read_bytes()
    assert p1.encode() not in airflow_db and b"archived" in airflow_db
    shutil.rmtree(tmp_path / "airflow-home", ignore_errors=True)


def test_the_postgres_scrub_waits_for_snapshots_older_than_the_purge(postgres_url, policy):
    """VACUUM FULL keeps rows an older snapshot can see: the scrub waits for it, or says so."""
    from transforms.retention import scrub_free_space

    store = IndexStore.from_url(postgres_url, policy)
    reader = sa.create_engine(postgres_url)
    with reader.connect() as conn:
        conn.exec_driver_sql("BEGIN ISOLATION LEVEL REPEATABLE READ")
        conn.exec_driver_sql("SELECT 1").scalar()  # takes the snapshot, locks no table
        assert scrub_free_space(store, wait_seconds=0.3) is False
        conn.exec_driver_sql("COMMIT")
    assert scrub_free_space(store, wait_seconds=5) is True
    reader.dispose()
    store.engine.dispose()
