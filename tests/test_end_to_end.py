"""End to end: a synthetic population through the real registry_sync DAG (`airflow dags test`).

Runs on the embedded SQLite index and on PostgreSQL. Checks what the index must never hold
(opted-out children, shielded children's location, any raw identifier of the ground truth), that
a broken council file is refused without stopping the others, and that a second run with the same
files leaves the index identical.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from synthetic_data.population import PopulationConfig
from synthetic_data.writer import write_population
from transforms.load import IndexStore
from transforms.pseudonymise import pseudonymise_local_ids, pseudonymise_nhs_numbers

pytestmark = pytest.mark.airflow

ROOT = Path(__file__).parents[1]
AIRFLOW = str(Path(sys.executable).with_name("airflow"))
CONFIG = PopulationConfig(children=1500, councils=3, seed=21)
BROKEN_COUNCIL = "E09000007"


@pytest.fixture(scope="module")
def airflow_env(tmp_path_factory):
    """An Airflow home with a migrated metadata database, shared by this module's runs."""
    home = tmp_path_factory.mktemp("airflow-home")
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "GX_ANALYTICS_ENABLED": "False",
        "PYTHONPATH": str(ROOT),
    }
    subprocess.run(
        [AIRFLOW, "db", "migrate"], env=env, check=True, capture_output=True, timeout=300
    )
    return env


def run_dag(env: dict, home: Path, index_url: str, key_hex: str) -> str:
    conn = json.dumps({"conn_type": "generic", "password": key_hex})
    env = {
        **env,
        "REGISTRY_SYNC_HOME": str(home),
        "REGISTRY_SYNC_INDEX_URL": index_url,
        "AIRFLOW_CONN_REGISTRY_SYNC_PSEUDONYM_KEY": conn,
    }
    env.pop("REGISTRY_SYNC_KEY", None)
    env.pop("REGISTRY_SYNC_KEY_FILE", None)
    out = subprocess.run(
        [AIRFLOW, "dags", "test", "registry_sync"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    text = out.stdout + out.stderr
    assert out.returncode == 0, text[-3000:]
    assert "state=success" in text or "DagRun Finished" in text
    return text


def drop_population(home: Path, truth: Path) -> None:
    write_population(CONFIG, home / "landing", truth)
    broken = home / "landing" / BROKEN_COUNCIL
    broken.mkdir(parents=True)
    source = next((home / "landing").glob("E08000035/children_*.csv"))
    (broken / source.name).write_bytes(source.read_bytes())
    manifest = json.loads(source.with_name(source.name + ".manifest.json").read_text())
    manifest.update(council_code=BROKEN_COUNCIL, sha256="0" * 64)
    (broken / (source.name + ".manifest.json")).write_text(json.dumps(manifest))


def raw_values(truth: pd.DataFrame) -> dict[str, list[str]]:
    def present(col):
        return [v for v in truth[col].astype(str) if v and v != "nan"]

    return {
        "nhs_number": present("nhs_number"),
        "postcode": present("postcode"),
        "full_name": [f"{g} {f}" for g, f in zip(truth.given_name, truth.family_name, strict=True)],
        "carer_phone": present("carer_phone"),
    }


def index_text(url: str, policy) -> bytes:
    """Every index and audit table dumped as text (for PostgreSQL, where there is no file)."""
    store = IndexStore(sa.create_engine(url), policy)
    parts = []
    with store.engine.connect() as conn:
        for name in store.metadata.tables:
            parts += [repr(tuple(r)) for r in conn.execute(sa.select(store.t[name]))]
    store.engine.dispose()
    return "\n".join(parts).encode()


def expected_pseudonyms(truth: pd.DataFrame, key) -> pd.Series:
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


@pytest.fixture
def synced(index_url, airflow_env, tmp_path, key, key_hex, policy):
    home, truth_dir = tmp_path / "home", tmp_path / "truth"
    drop_population(home, truth_dir)
    log = run_dag(airflow_env, home, index_url, key_hex)
    truth = pd.read_parquet(truth_dir / "children.parquet")
    truth["pseudonym"] = expected_pseudonyms(truth, key)
    store = IndexStore(sa.create_engine(index_url), policy)
    yield {
        "home": home,
        "truth_dir": truth_dir,
        "truth": truth,
        "store": store,
        "log": log,
        "url": index_url,
        "env": airflow_env,
        "key_hex": key_hex,
    }
    store.engine.dispose()


def test_dag_run_keeps_privacy_promises_and_is_idempotent(synced, policy):
    truth, store, home = synced["truth"], synced["store"], synced["home"]
    index = store.index_frame()
    in_index = set(index["child_pseudonym"])
    assert len(index) > 0.8 * truth["true_child_id"].nunique()

    # No opted-out child, from any register, is anywhere in the index tables.
    opted = set(truth.loc[truth["opted_out_council"] | truth["opted_out_national"], "pseudonym"])
    assert opted and not (opted & in_index)
    records = {row[0] for row in store.snapshot()["council_record"]}
    assert not (opted & records)

    # Every clean, not-opted-out child is there.
    clean = truth[
        (truth["defects"] == "") & ~truth["opted_out_council"] & ~truth["opted_out_national"]
    ]
    assert set(clean["pseudonym"]) <= in_index

    # Shielded children carry no location, contact, school, GP or service fields.
    shielded = index[index["child_pseudonym"].isin(set(truth.loc[truth["shielded"], "pseudonym"]))]
    assert len(shielded) > 0 and shielded["shielded"].all()
    for f in policy.fields:
        if f.shielded == "drop":
            assert shielded[f.name].isna().all(), f.name

    # No raw identifier of the ground truth appears in the index, the DAG's output or XCom.
    index_bytes = (
        Path(synced["url"].removeprefix("sqlite:///")).read_bytes()
        if synced["url"].startswith("sqlite")
        else index_text(synced["url"], policy)
    )
    airflow_db = (Path(synced["env"]["AIRFLOW_HOME"]) / "airflow.db").read_bytes()
    for kind, values in raw_values(truth).items():
        for name, blob in (
            ("index", index_bytes),
            ("dag output", synced["log"].encode()),
            ("airflow metadata", airflow_db),
        ):
            leaked = sum(1 for v in values if v.encode() in blob)
            assert leaked == 0, f"{leaked} {kind} value(s) found in the {name}"

    # The broken council's file is refused, kept intact in quarantine, with a reason.
    kept = list((home / "quarantine" / BROKEN_COUNCIL).rglob("children_*.csv"))
    assert len(kept) == 1
    reason = json.loads((kept[0].parent / "reason.json").read_text())["reason"]
    assert "sha256" in reason
    assert not any(index["responsible_council"] == BROKEN_COUNCIL)

    # The same files again change nothing.
    before = store.snapshot()
    write_population(CONFIG, home / "landing", synced["truth_dir"])
    log = run_dag(synced["env"], home, synced["url"], synced["key_hex"])
    assert store.snapshot() == before
    run = sorted((home / "runs").glob("*.json"), key=lambda p: p.stat().st_mtime)[-1]
    statuses = {f["status"] for f in json.loads(run.read_text())["files"]}
    assert statuses == {"already_loaded"}
    for values in raw_values(truth).values():
        assert not any(v in log for v in values)

    # The leak audit: no ground-truth identifier in any artefact the runs left behind (index,
    # Airflow's database and task logs, run summaries, feedback, staging, the DAG output).
    from transforms.leaks import Artefact, audit_leaks, collect_artefacts

    artefacts = collect_artefacts(
        home, Path(synced["env"]["AIRFLOW_HOME"]), synced["url"], exclude=[synced["truth_dir"]]
    )
    artefacts += [
        Artefact.from_bytes("dag output, run 1", synced["log"], text=True),
        Artefact.from_bytes("dag output, run 2", log, text=True),
    ]
    names = [a.name for a in artefacts]
    assert any(":: table xcom" in n for n in names) and any("home/runs/" in n for n in names)
    assert any(n.startswith("index ") and ":: table " in n for n in names)
    report = audit_leaks(artefacts, truth)
    print(report.format())
    assert report.clean, report.format()
