"""Key rotation: every pseudonym re-keyed, no child lost or duplicated, shields and opt-outs kept,
and a load arriving during the rotation creates no duplicates.

A small synthetic population is synced for real (`sync_drop_zone`) under the test key, then the
index is rotated to a second key. Every test runs on SQLite and PostgreSQL (`index_url`).
"""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from synthetic_data.population import PopulationConfig
from synthetic_data.writer import write_population
from transforms import rotation
from transforms.cli import main
from transforms.load import INDEX_TABLES, IndexStore, KeyVersionMismatch, StagedFile
from transforms.lookup import LookupRefused, lookup_child
from transforms.minimise import KEY_COLUMNS
from transforms.pipeline import SyncPaths, sync_drop_zone
from transforms.pseudonymise import PseudonymKey, pseudonymise_local_ids, pseudonymise_nhs_numbers
from transforms.rotation import RETIRED_MARKER, RotationRefused, rotate_key

CONFIG = PopulationConfig(children=160, councils=2, seed=33, shielded_rate=0.04)
NEW_KEY = PseudonymKey(bytes.fromhex("ff" * 16 + "0123456789abcdef" * 2))
OUTSIDER = "E09000001"  # a council with no file in the population


def true_pseudonyms(truth: pd.DataFrame, key: PseudonymKey) -> pd.Series:
    """The pseudonym each truth row should have under `key` (national, else council-scoped)."""
    national = pseudonymise_nhs_numbers(truth["nhs_number"].astype("string"), key)
    local = pd.Series(
        [
            pseudonymise_local_ids(c, pd.Series([i], dtype="string"), key).iloc[0]
            for c, i in zip(truth.council_code, truth.local_child_id, strict=True)
        ],
        index=truth.index,
        dtype="string",
    )
    return national.fillna(local)


@pytest.fixture(scope="module")
def population(tmp_path_factory, key):
    """The population's drop zone (copied per test) and its truth with both keys' pseudonyms."""
    root = tmp_path_factory.mktemp("population")
    write_population(CONFIG, root / "landing", root / "truth")
    truth = pd.read_parquet(root / "truth" / "children.parquet")
    truth["old"] = true_pseudonyms(truth, key)
    truth["new"] = true_pseudonyms(truth, NEW_KEY)
    return root / "landing", truth


@pytest.fixture
def synced(population, index_url, tmp_path, key, policy):
    landing, truth = population
    paths = SyncPaths(tmp_path / "home")
    shutil.copytree(landing, paths.landing)
    store = IndexStore.from_url(index_url, policy)
    sync_drop_zone(paths, key, policy, store, run_id="day0")
    yield paths, store, truth
    store.engine.dispose()


def all_pseudonyms(store: IndexStore) -> dict[str, set[str]]:
    return {name: {row[0] for row in rows} for name, rows in store.snapshot().items()}


def children_by_identity(store: IndexStore, truth: pd.DataFrame, column: str) -> set[str]:
    in_index = set(store.index_frame()["child_pseudonym"])
    return set(truth.loc[truth[column].isin(in_index), "true_child_id"])


def test_when_rotated_then_no_old_pseudonym_remains_and_children_are_the_same(synced, key, policy):
    paths, store, truth = synced
    known = truth.loc[truth["nhs_number"].str.len() == 10].iloc[0]["nhs_number"]
    lookup_child(store, key, known, "test: known child")
    lookup_child(store, key, "9434765919", "test: a child no council holds")
    before = store.snapshot()
    old = set().union(*all_pseudonyms(store).values())
    children_before = children_by_identity(store, truth, "old")
    assert len(children_before) > 0.8 * truth["true_child_id"].nunique()
    assert before["shield"] and before["optout"]

    outcome = rotate_key(store, paths.landing, paths.processed, key, NEW_KEY)

    assert outcome.status == "rotated"
    assert store.key_version() == NEW_KEY.version
    after = all_pseudonyms(store)
    for name in INDEX_TABLES:
        assert not (after[name] & old), name
        assert len(store.snapshot()[name]) == len(before[name]), name
    for name in ("child_index", "council_record"):
        with store.engine.connect() as conn:
            versions = set(conn.execute(sa.select(store.t[name].c.key_version)).scalars())
        assert versions == {NEW_KEY.version}, name
    # The same children, by true identity, recomputed under the new key; none twice.
    assert children_by_identity(store, truth, "new") == children_before
    index = store.index_frame()
    assert index["child_pseudonym"].is_unique
    # Shields and opt-outs are the same children's, re-keyed (the national register also holds
    # children no council extract has, so not every one is in the truth file).
    translate = dict(zip(truth["old"], truth["new"], strict=True))
    for name in ("shield", "optout"):
        moved = {(translate[r[0]], *r[1:]) for r in before[name] if r[0] in translate}
        assert len(moved) > 0.5 * len(before[name]), name
        assert moved <= set(store.snapshot()[name]), name
    # The access log: the known child's look-up re-keyed, the unknown one's retired.
    with store.engine.connect() as conn:
        logged = set(conn.execute(sa.select(store.t["access_log"].c.child_pseudonym)).scalars())
    assert not (logged & old)
    assert RETIRED_MARKER + key.version in logged
    assert {e for e, _ in store.snapshot_audit()} >= {"key_rotation"}

    # Under the new key, a later extract neither unshields nor brings back an opted-out child.
    shielded = sorted(after["shield"])[0]
    opted = sorted(after["optout"] - after["shield"])[0]
    rows = pd.DataFrame(
        [
            {
                "child_pseudonym": p,
                "pseudonym_kind": "nhs",
                "key_version": NEW_KEY.version,
                "council_code": OUTSIDER,
                "shielded": False,
                "year_of_birth": 2015,
                "sex": "F",
                "postcode_district": "LS6",
            }
            for p in (shielded, opted)
        ],
        columns=[*KEY_COLUMNS, *policy.field_names],
    )
    store.load(
        StagedFile(OUTSIDER, "c.csv", "e" * 64, "children", "snapshot", 1, "2026-12-01", rows)
    )
    index = store.index_frame().set_index("child_pseudonym")
    assert opted not in index.index
    assert bool(index.loc[shielded, "shielded"]) and pd.isna(
        index.loc[shielded, "postcode_district"]
    )

    # A retry of the rotation is harmless; rotating on needs the key the index is under.
    assert rotate_key(store, paths.landing, paths.processed, key, NEW_KEY).status == (
        "already_rotated"
    )
    third = PseudonymKey(bytes.fromhex("ab" * 32))
    with pytest.raises(RotationRefused, match="give the key the index was loaded with"):
        rotate_key(store, paths.landing, paths.processed, key, third)


def test_when_a_source_is_missing_then_rotation_refuses_and_changes_nothing(
    synced, key, key_hex, monkeypatch, capsys
):
    paths, store, _truth = synced
    before = store.snapshot()
    council = sorted(p for p in paths.processed.iterdir() if p.name != "national")[0]
    aside = paths.home / "aside"
    shutil.move(str(council), str(aside))

    with pytest.raises(RotationRefused, match="no source extract"):
        rotate_key(store, paths.landing, paths.processed, key, NEW_KEY)

    assert store.snapshot() == before
    assert store.key_version() == key.version

    # With the source restored, the command line rotates; a repeat is recognised.
    shutil.move(str(aside), str(council))
    key_file = paths.home / "new.key"
    key_file.write_text(NEW_KEY.secret.hex() + "\n")
    monkeypatch.setenv("REGISTRY_SYNC_KEY", key_hex)
    monkeypatch.delenv("REGISTRY_SYNC_KEY_FILE", raising=False)
    url = store.engine.url.render_as_string(hide_password=False)
    argv = ["--home", str(paths.home), "rotate-key", "--new-key-file", str(key_file)]
    assert main([*argv, "--index-url", url]) == 0
    assert "rotated key version" in capsys.readouterr().out
    assert store.key_version() == NEW_KEY.version
    assert main([*argv, "--index-url", url]) == 0
    assert "already under key version" in capsys.readouterr().out
    assert NEW_KEY.secret.hex() not in capsys.readouterr().out


def test_when_a_load_arrives_during_rotation_then_it_is_refused_and_no_duplicate_appears(
    synced, key, policy, monkeypatch
):
    paths, store, truth = synced
    index_before = store.index_frame()
    children_before = children_by_identity(store, truth, "old")
    # A late file from another council holding children the index already has, pseudonymised
    # under the old key before the rotation: loading it afterwards would add duplicates.
    present = truth.loc[truth["old"].isin(set(index_before["child_pseudonym"]))]
    present = present.drop_duplicates("true_child_id").head(5)

    def late_file(column: str, version: str) -> StagedFile:
        rows = pd.DataFrame(
            {
                "child_pseudonym": present[column].tolist(),
                "pseudonym_kind": "nhs",
                "key_version": version,
                "council_code": OUTSIDER,
                "shielded": False,
            },
            columns=[*KEY_COLUMNS, *policy.field_names],
        )
        return StagedFile(
            OUTSIDER, "late.csv", "d" * 64, "children", "snapshot", 1, "2026-12-01", rows
        )

    locked, release = threading.Event(), threading.Event()
    real_build = rotation.build_translation

    def slow_build(*args, **kwargs):
        locked.set()  # the rotation holds the key-state lock from here until it commits
        assert release.wait(20)
        return real_build(*args, **kwargs)

    monkeypatch.setattr(rotation, "build_translation", slow_build)
    results: dict[str, object] = {}

    def run(name, fn):
        try:
            results[name] = fn()
        except Exception as exc:  # the outcome is what the test checks
            results[name] = exc

    rotator = threading.Thread(
        target=run,
        args=("rotation", lambda: rotate_key(store, paths.landing, paths.processed, key, NEW_KEY)),
    )
    rotator.start()
    assert locked.wait(20)
    other = IndexStore(sa.create_engine(store.engine.url), policy)  # another process's engine
    loader = threading.Thread(
        target=run, args=("load", lambda: other.load(late_file("old", key.version)))
    )
    loader.start()
    time.sleep(0.5)
    assert loader.is_alive()  # the load waits for the rotation
    release.set()
    rotator.join(30)
    loader.join(30)
    other.engine.dispose()

    assert getattr(results["rotation"], "status", None) == "rotated", results["rotation"]
    # Refused outright (the new key version) or, on SQLite past its busy timeout, "locked".
    assert isinstance(results["load"], KeyVersionMismatch | sa.exc.OperationalError), results
    index = store.index_frame()
    assert len(index) == len(index_before) and index["child_pseudonym"].is_unique
    assert not (set(index["child_pseudonym"]) & set(truth["old"]))
    assert children_by_identity(store, truth, "new") == children_before

    # The retry, processed under the new key, links to the same children: still no duplicate.
    assert store.load(late_file("new", NEW_KEY.version)).status == "loaded"
    index = store.index_frame()
    assert len(index) == len(index_before) and index["child_pseudonym"].is_unique
    assert set(present["new"]) <= set(index["child_pseudonym"])


def test_rotate_pseudonym_key_dag_is_manual_thin_and_imports_cleanly():
    from airflow.dag_processing.dagbag import DagBag

    dags = Path(__file__).parents[1] / "dags"
    bag = DagBag(dag_folder=str(dags / "rotate_pseudonym_key.py"))
    assert bag.import_errors == {}
    dag = bag.dags["rotate_pseudonym_key"]
    assert dag.schedule is None and dag.max_active_runs == 1 and not dag.catchup
    assert {"privacy", "maintenance"} <= set(dag.tags)
    assert dag.doc_md and "registry_sync_pseudonym_key_new" in dag.doc_md
    assert set(dag.task_ids) == {"rotate_key"}


def test_after_rotation_a_look_up_with_the_old_key_is_refused_not_answered(synced, key):
    paths, store, truth = synced
    known = truth.loc[truth["nhs_number"].str.len() == 10].iloc[0]["nhs_number"]
    rotate_key(store, paths.landing, paths.processed, key, NEW_KEY)
    logged = len(store.snapshot_audit())
    with pytest.raises(LookupRefused, match="a key rotation has run"):
        lookup_child(store, key, known, "test: with the retired key")
    with store.engine.connect() as conn:
        assert (
            conn.execute(sa.select(sa.func.count()).select_from(store.t["access_log"])).scalar()
            == 0
        )
    assert len(store.snapshot_audit()) == logged
    assert lookup_child(store, NEW_KEY, known, "test: with the current key")["result"] != "refused"
