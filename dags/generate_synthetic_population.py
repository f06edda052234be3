"""Drop a synthetic population into the drop zone, on demand (generate_synthetic_population).

### generate_synthetic_population

Triggered by hand (no schedule), with parameters: how many **children**, how many **councils**
(taken in order from `synthetic_data.councils.COUNCILS`; 153 is every English council with
children's services), **sizes** (`equal`, or `real`: in proportion to each council's approximate
number of children), the **seed**, the reference **day** (YYYY-MM-DD; the files are named from
it, the clock is never read), the **defect_rate** per defect kind and row, the
**missing_nhs_rate**, **nhs_range** (`auto`, `test` or `extended`; see below) and **days**: how
many following days to write as well (births, moves, deaths, corrections, opt-outs, shields),
each as the next sequence. England is 12,000,000 children, 153 councils, sizes `real`.

One task, **write_population_files**, writes every council's children extract and opt-out
register with their manifests into `REGISTRY_SYNC_HOME/landing/`, the national register into
`landing/national/`, and the ground truth into `REGISTRY_SYNC_HOME/truth/` (never inside the drop
zone). The same parameters write byte-identical files, so a re-run changes nothing; the next
`registry_sync` run picks the extracts up.

Nobody in the population is real: NHS numbers come from the 999 test range (with `nhs_range`
`auto`, a population too big for it also gets numbers starting 986-998, never issued to patients
but not reserved), phone numbers from Ofcom's drama ranges. Even so XCom carries counts only:
rows, children, opt-outs, shielded, movers and defects per council and day.
"""

from __future__ import annotations

import datetime as dt

import pendulum
from airflow.sdk import Param, dag, task


@dag(
    dag_id="generate_synthetic_population",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["registry", "synthetic", "test-data"],
    default_args={"retries": 1, "retry_delay": dt.timedelta(minutes=1)},
    doc_md=__doc__,
    params={
        "children": Param(3000, type="integer", minimum=0, description="children in all councils"),
        "councils": Param(
            3, type="integer", minimum=1, maximum=153, description="councils (153: all)"
        ),
        "sizes": Param(
            "equal",
            type="string",
            enum=["equal", "real"],
            description="children split equally, or in proportion to each council's real size",
        ),
        "seed": Param(1, type="integer", minimum=0, description="same seed, same files"),
        "day": Param(
            "2026-11-25",
            type="string",
            format="date",
            description="reference date YYYY-MM-DD: names the files; the clock is never read",
        ),
        "days": Param(
            0, type="integer", minimum=0, maximum=366, description="following days to write too"
        ),
        "defect_rate": Param(
            0.003,
            type="number",
            minimum=0,
            maximum=1,
            description="per defect kind and row; 0.01 makes files the pipeline refuses",
        ),
        "missing_nhs_rate": Param(
            0.03,
            type="number",
            minimum=0,
            maximum=1,
            description="children without an NHS number",
        ),
        "nhs_range": Param(
            "auto",
            type="string",
            enum=["auto", "test", "extended"],
            description="999 test range; auto adds synthetic 986-998 numbers when it is too small",
        ),
    },
)
def generate_synthetic_population():
    """Drop a synthetic population into the drop zone, and its ground truth beside it."""

    @task
    def write_population_files(params: dict | None = None) -> dict:
        """Write the population's files; return counts per council and day, never values."""
        from synthetic_data.population import PopulationConfig
        from synthetic_data.writer import write_days
        from transforms.settings import home_from_environment

        params = params or {}
        home = home_from_environment().resolve()
        config = PopulationConfig(
            children=int(params["children"]),
            councils=int(params["councils"]),
            seed=int(params["seed"]),
            reference_date=dt.date.fromisoformat(params["day"]),
            defect_rate=float(params["defect_rate"]),
            missing_nhs_rate=float(params["missing_nhs_rate"]),
            sizes=str(params.get("sizes", "equal")),
            nhs_range=str(params.get("nhs_range", "auto")),
        )
        summaries = write_days(config, int(params["days"]), home / "landing", home / "truth")
        for summary in summaries:
            print(f"{summary.reference_date} (sequence {summary.sequence})\n{summary}")
        return {
            "days": [
                {
                    "date": s.reference_date.isoformat() if s.reference_date else "",
                    "sequence": s.sequence,
                    "rows": s.rows,
                    "national_optouts": s.national_optouts,
                    "councils": [
                        {k: v for k, v in vars(c).items() if k != "council_name"}
                        for c in s.councils
                    ],
                    "events": dict(s.events),
                }
                for s in summaries
            ]
        }

    write_population_files()


generate_synthetic_population()
