"""Re-key every pseudonym in the index to a new key (the rotate_pseudonym_key DAG, manual only).

### rotate_pseudonym_key

One task, **rotate_key**: reads every extract kept in `processed/<council>/` (and any still in the
drop zone), computes each child's pseudonym under the current key and under the new one, and in
one index transaction rewrites the index, the council contributions, the sticky shields and the
opt-outs through that translation, re-keys the access log, and records the new key version. The
translation is held in memory only. If any child, shield or opt-out cannot be translated (its
source extract is gone) the rotation refuses and changes nothing.

Loads arriving during the rotation wait for it, then refuse files made under the old key; those
files stay in the drop zone and are processed again. Run it again after a failure: it is one
transaction, and a completed rotation is recognised ("already rotated").

Keys: the current key from the connection `registry_sync_pseudonym_key`; the new key from the
connection `registry_sync_pseudonym_key_new` (password = 64 hex characters) or the file named by
`REGISTRY_SYNC_NEW_KEY_FILE`. Never pass a key as a DAG param (params are stored in the metadata
database). Afterwards, put the new key in `registry_sync_pseudonym_key` and delete
`registry_sync_pseudonym_key_new` and the old key; until then every load is refused with a
message that says so. XCom carries counts and key versions (digests, not keys) only.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import dag, task


@dag(
    dag_id="rotate_pseudonym_key",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["registry", "privacy", "maintenance"],
    default_args={"retries": 1, "retry_delay": pendulum.duration(minutes=1)},
    doc_md=__doc__,
)
def rotate_pseudonym_key():
    """Re-key every pseudonym in the index to a new key."""

    @task
    def rotate_key() -> dict:
        """Rotate the index to the new key in one transaction; return counts only."""
        from transforms.keys import key_for_airflow_task, new_key_for_airflow_task
        from transforms.load import IndexStore
        from transforms.pipeline import SyncPaths
        from transforms.policy import load_policy
        from transforms.rotation import rotate_key as run_rotation
        from transforms.settings import home_from_environment, index_url_for_airflow_task

        paths = SyncPaths(home_from_environment().resolve())
        store = IndexStore.from_url(index_url_for_airflow_task(paths.home), load_policy())
        outcome = run_rotation(
            store,
            paths.landing,
            paths.processed,
            key_for_airflow_task(),
            new_key_for_airflow_task(),
        )
        print(f"{outcome.status}: {outcome.old_version} -> {outcome.new_version} {outcome.rows}")
        return {
            "status": outcome.status,
            "old_version": outcome.old_version,
            "new_version": outcome.new_version,
            "sources_read": outcome.sources_read,
            "rows": outcome.rows,
            "access_log_rekeyed": outcome.access_log_rekeyed,
            "access_log_retired": outcome.access_log_retired,
        }

    rotate_key()


rotate_pseudonym_key()
