"""Archive children at 18 (25 for care leavers) and purge archives 6 years later (daily).

### retention

One task, **apply_retention**, runs `transforms.retention.apply_retention` for the run's logical
date, in one index transaction:

- children whose archive month has come (the month they turn 18, or 25 when any council flags a
  care leaver; worked out at load from the full date of birth, which the index does not keep)
  leave `child_index` and `council_record` for the `archive` table, where look-ups cannot see
  them, and lose their shields;
- archive rows 6 years past their archive month are purged from every table; their access-log
  rows keep the time and outcome but lose the pseudonym and the reason;
- one audit event each for archive and purge, with counts only.

After a purge the freed space is scrubbed (SQLite: secure_delete and VACUUM; PostgreSQL:
VACUUM FULL of the touched tables, which locks each while it is rewritten). Re-running a day is
harmless: nothing is left to do. XCom carries counts only.
The index comes from the connection `registry_sync_index` (its URI), `REGISTRY_SYNC_INDEX_URL`,
or the SQLite file in `REGISTRY_SYNC_HOME`.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import dag, get_current_context, task


@dag(
    dag_id="retention",
    schedule="@daily",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["registry", "privacy", "retention"],
    default_args={"retries": 2, "retry_delay": pendulum.duration(minutes=5)},
    doc_md=__doc__,
)
def retention():
    """Archive children at 18 (25 for care leavers) and purge archives 6 years later."""

    @task
    def apply_retention() -> dict:
        """Archive and purge as of the logical date; return counts only."""
        from transforms.load import IndexStore
        from transforms.policy import load_policy
        from transforms.retention import apply_retention as run_retention
        from transforms.settings import home_from_environment, index_url_for_airflow_task

        context = get_current_context()
        # The logical date, so a re-run of a day acts as of that day; a manual run without
        # one acts as of when it was triggered.
        when = context.get("logical_date") or context["dag_run"].run_after
        home = home_from_environment().resolve()
        store = IndexStore.from_url(index_url_for_airflow_task(home), load_policy())
        outcome = run_retention(store, pendulum.instance(when).in_tz("UTC").date())
        counts = outcome.to_dict()
        print(" ".join(f"{k}={v}" for k, v in counts.items()))
        return counts

    apply_retention()


retention()
