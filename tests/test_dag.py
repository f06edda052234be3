"""The DAG files import cleanly, cheaply, and have the shape the README describes."""

import subprocess
import sys
from pathlib import Path

import pytest

DAGS = Path(__file__).parents[1] / "dags"
HEAVY = (
    "pandas",
    "great_expectations",
    "presidio_analyzer",
    "spacy",
    "faker",
    "transforms.pipeline",
)


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS))


def test_dags_import_without_errors(dagbag):
    assert dagbag.import_errors == {}
    assert "registry_sync" in dagbag.dag_ids


def test_registry_sync_shape(dagbag):
    dag = dagbag.dags["registry_sync"]
    assert dag.doc_md and "registry_sync" in dag.doc_md
    assert {"registry", "privacy"} <= set(dag.tags)
    assert dag.max_active_runs == 1 and not dag.catchup
    assert set(dag.task_ids) == {"find_extracts", "process_extract", "load_index"}
    assert dag.get_task("process_extract").downstream_task_ids == {"load_index"}
    assert dag.get_task("find_extracts").downstream_task_ids == {"process_extract"}
    for task in dag.tasks:
        assert task.retries >= 1, task.task_id
    assert dag.get_task("load_index").trigger_rule == "all_done"


def test_parsing_the_dag_file_imports_nothing_heavy():
    code = (
        f"import sys, runpy; runpy.run_path({str(DAGS / 'registry_sync.py')!r}); "
        f"print([m for m in {HEAVY!r} if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"
