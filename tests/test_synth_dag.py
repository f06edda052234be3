"""The generate_synthetic_population DAG: cheap to import, its params, and one real run."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from synthetic_data.population import PopulationConfig
from synthetic_data.writer import write_population

ROOT = Path(__file__).parents[1]
DAGS = ROOT / "dags"
DAG_ID = "generate_synthetic_population"
AIRFLOW = str(Path(sys.executable).with_name("airflow"))
HEAVY = ("pandas", "pyarrow", "numpy", "faker", "synthetic_data", "transforms")


@pytest.fixture(scope="module")
def dag():
    from airflow.dag_processing.dagbag import DagBag

    dagbag = DagBag(dag_folder=str(DAGS / f"{DAG_ID}.py"))
    assert dagbag.import_errors == {}
    return dagbag.dags[DAG_ID]


def test_dag_is_manual_with_docs_tags_and_one_retrying_task(dag):
    assert dag.schedule is None or str(dag.timetable.summary) in ("None", "")
    assert dag.doc_md and DAG_ID in dag.doc_md
    assert {"registry", "synthetic"} <= set(dag.tags)
    assert not dag.catchup and dag.max_active_runs == 1
    assert dag.task_ids == ["write_population_files"]
    assert dag.get_task("write_population_files").retries >= 1


def test_params_default_to_the_demo_population(dag):
    defaults = {name: dag.params[name] for name in dag.params}
    assert defaults == {
        "children": 3000,
        "councils": 3,
        "seed": 1,
        "day": "2026-11-25",
        "days": 0,
        "defect_rate": 0.003,
        "missing_nhs_rate": 0.03,
        "sizes": "equal",
        "nhs_range": "auto",
    }
    config = PopulationConfig()  # the DAG's defaults are the config's
    assert (config.children, config.councils, config.seed) == (3000, 3, 1)
    assert (config.defect_rate, config.missing_nhs_rate) == (0.003, 0.03)
    assert (config.sizes, config.nhs_range) == ("equal", "auto")
    assert config.reference_date.isoformat() == "2026-11-25"


@pytest.mark.parametrize(
    ("name", "bad"),
    [
        ("children", -1),
        ("councils", 0),
        ("councils", 154),
        ("defect_rate", 1.5),
        ("days", -2),
        ("sizes", "huge"),
        ("nhs_range", "live"),
    ],
)
def test_params_refuse_out_of_range_values(dag, name, bad):
    from airflow.sdk.exceptions import ParamValidationError

    params = copy.deepcopy(dag.params)
    with pytest.raises(ParamValidationError, match=name):
        params[name] = bad


def test_parsing_the_dag_file_imports_nothing_heavy():
    code = (
        f"import sys, runpy; runpy.run_path({str(DAGS / f'{DAG_ID}.py')!r}); "
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r})))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"


@pytest.mark.airflow
def test_dag_run_writes_the_population_and_returns_counts_only(tmp_path):
    airflow_home = tmp_path / "airflow-home"
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(airflow_home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
        "PYTHONPATH": str(ROOT),
        "REGISTRY_SYNC_HOME": str(tmp_path / "home"),
    }
    subprocess.run(
        [AIRFLOW, "db", "migrate"], env=env, check=True, capture_output=True, timeout=300
    )
    conf = {"children": 400, "councils": 2, "seed": 3, "days": 1}
    out = subprocess.run(
        [AIRFLOW, "dags", "test", DAG_ID, "-c", json.dumps(conf)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    log = out.stdout + out.stderr
    assert out.returncode == 0, log[-3000:]

    # The same files as the library writes for the same parameters, truth outside landing.
    expected = tmp_path / "expected"
    config = PopulationConfig(children=400, councils=2, seed=3)
    write_population(config, expected / "landing", expected / "truth")
    landing = tmp_path / "home" / "landing"
    for path in (expected / "landing").rglob("*.csv"):
        assert (landing / path.relative_to(expected / "landing")).read_bytes() == path.read_bytes()
    assert len(list(landing.rglob("children_20261126_0002.csv"))) == 2
    truth_dir = tmp_path / "home" / "truth"
    assert (truth_dir / "children.parquet").read_bytes() == (
        expected / "truth" / "children.parquet"
    ).read_bytes()
    assert (truth_dir / "events_20261126.parquet").is_file()

    # Nothing from the population reached the task log or the XCom table.
    truth = pd.read_parquet(truth_dir / "children.parquet")
    airflow_db = (airflow_home / "airflow.db").read_bytes()
    raw = {
        "nhs_number": [v for v in truth["nhs_number"] if v],
        "full_name": [f"{g} {f}" for g, f in zip(truth.given_name, truth.family_name, strict=True)],
        "postcode": list(truth["postcode"]),
        "carer_phone": [v for v in truth["carer_phone"] if v],
    }
    for kind, values in raw.items():
        for name, blob in (("log", log.encode()), ("airflow metadata", airflow_db)):
            assert not [v for v in values if v.encode() in blob], f"{kind} in {name}"
    assert b'"rows"' in airflow_db or b"rows" in airflow_db  # the counts are in XCom
