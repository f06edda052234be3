"""Sync council extracts into the minimised central index (the registry_sync DAG).

### registry_sync

Once a day (or when triggered) this DAG picks up every **complete** extract in the drop zone
(`landing/<council GSS code>/`; an extract counts as complete once its manifest is beside it):

1. **find_extracts** lists complete extracts (opt-out registers and children extracts).
2. **process_extract**, one mapped task per extract: verify the manifest (checksum, row count,
   schema version, council code); find the lines that changed since the council's last extract
   (keyed line digests kept in the index: unchanged lines are not read again, lines refused last
   time are refused again for the same rules); validate the rest with the Great Expectations
   suite, pseudonymise
   identifiers with a keyed HMAC, scan free-text notes with Presidio and drop them, minimise to
   what `transforms/config/policy.yaml` allows, strip shielded children, and scan every value
   bound for the index once more for personal data. A refused file is moved intact to
   `quarantine/<council>/` with its reason; the council's feedback goes to `outbox/<council>/`.
3. **load_index** applies the staged files to the index, each file in one transaction:
   opt-outs remove children everywhere, shields are sticky, a snapshot replaces what that council
   sent before (rewriting only the children that changed or left), a delta applies only as the
   next in its council's sequence, a file already loaded changes nothing. A file read against a
   state of its council that has since changed is left in the drop zone for the next run.

XCom carries file names, counts and rule names only, never a value from an extract. The
pseudonymisation key comes from the connection `registry_sync_pseudonym_key` (password); the index
from the connection `registry_sync_index` (its URI) or `REGISTRY_SYNC_INDEX_URL`, by default a
SQLite file in `REGISTRY_SYNC_HOME`.
"""

from __future__ import annotations

import datetime as dt
import re

import pendulum
from airflow.sdk import dag, get_current_context, task


def _paths():
    from transforms.pipeline import SyncPaths
    from transforms.settings import home_from_environment

    return SyncPaths(home_from_environment().resolve())


@dag(
    dag_id="registry_sync",
    schedule="@daily",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["registry", "sync", "privacy"],
    default_args={"retries": 2, "retry_delay": dt.timedelta(minutes=1)},
    doc_md=__doc__,
)
def registry_sync():
    """Sync council extracts into the minimised central index."""

    @task
    def find_extracts() -> list[dict]:
        """List the complete extracts in the drop zone (file names only)."""
        from transforms.ingest import discover_extracts

        refs = discover_extracts(_paths().landing)
        print(f"{len(refs)} complete extract(s) in the drop zone")
        return [
            {"folder": r.folder, "file_name": r.file_name, "manifest_name": r.manifest_name}
            for r in refs
        ]

    @task(map_index_template="{{ extract_label }}")
    def process_extract(ref: dict) -> dict:
        """Validate, pseudonymise, minimise and stage one extract, or refuse it."""
        from sqlalchemy import create_engine

        from transforms.ingest import ExtractRef
        from transforms.keys import key_for_airflow_task
        from transforms.load import IndexStore
        from transforms.pipeline import process_extract as run_phase
        from transforms.policy import load_policy
        from transforms.settings import index_url_for_airflow_task

        context = get_current_context()
        context["extract_label"] = f"{ref['folder']}/{ref['file_name']}"  # type: ignore[typeddict-unknown-key]
        run_id = re.sub(r"[^A-Za-z0-9_.-]", "_", context["run_id"])
        paths, policy = _paths(), load_policy()
        # Read only: the lines the council's contribution already holds are skipped.
        store = IndexStore(create_engine(index_url_for_airflow_task(paths.home)), policy)
        report = run_phase(paths, ExtractRef(**ref), key_for_airflow_task(), policy, run_id, store)
        store.engine.dispose()
        print(
            f"{report.status}: {report.counts}" + (f" ({report.reason})" if report.reason else "")
        )
        return report.to_dict()

    @task(trigger_rule="all_done")
    def load_index(reports: list[dict]) -> dict:
        """Load every staged file into the index; return the per-council counts."""
        from transforms.load import IndexStore
        from transforms.pipeline import (
            FileReport,
            format_summary,
            load_staged,
            summarise,
            write_run_summary,
        )
        from transforms.policy import load_policy
        from transforms.settings import index_url_for_airflow_task

        paths = _paths()
        done = [FileReport.from_dict(r) for r in reports if r]
        store = IndexStore.from_url(index_url_for_airflow_task(paths.home), load_policy())
        done = load_staged(paths, done, store)
        run_id = re.sub(r"[^A-Za-z0-9_.-]", "_", get_current_context()["run_id"])
        write_run_summary(paths, run_id, done)
        print(format_summary(done))
        table = summarise(done)
        return {"files": len(done), "councils": table.to_dict("records")}

    load_index(process_extract.expand(ref=find_extracts()))


registry_sync()
