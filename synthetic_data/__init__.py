"""Synthetic populations of children for testers, tests and benchmarks; never real people.

    from synthetic_data import PopulationConfig, write_population
    summary = write_population(PopulationConfig(children=3000), Path("landing"), Path("truth"))
    print(summary)

`generate_population` streams one council at a time (`CouncilBatch`: extract, opt-out register
and ground truth); `write_population` writes them as councils would drop them, with manifests,
plus the national opt-out register, and the ground truth to Parquet outside the landing zone.
`first_day`/`next_day` move a population on by a day (births, moves, leavers, deaths, corrections,
opt-outs, shields) and `write_days` drops day 0 and the following days as rising sequences.
NHS numbers come from the test range starting 999 (a population too big for it also gets synthetic
986-998 numbers, never issued to patients) and phone numbers from Ofcom's drama ranges. `COUNCILS`
holds all 153 English councils with children's services; `sizes="real"` splits a population in
proportion to their numbers of children.
"""

from synthetic_data.councils import COUNCILS, Council, council_by_code
from synthetic_data.daily import (
    EVENT_KINDS,
    DailyChanges,
    PopulationDay,
    first_day,
    next_day,
    population_on_day,
)
from synthetic_data.population import (
    DEFECT_KINDS,
    TRUTH_COLUMNS,
    CouncilBatch,
    PopulationConfig,
    generate_national_optouts,
    generate_population,
)
from synthetic_data.providers import make_faker
from synthetic_data.writer import (
    CouncilCounts,
    SynthSummary,
    write_day,
    write_days,
    write_population,
)

__all__ = [
    "COUNCILS",
    "DEFECT_KINDS",
    "EVENT_KINDS",
    "TRUTH_COLUMNS",
    "Council",
    "CouncilBatch",
    "CouncilCounts",
    "DailyChanges",
    "PopulationConfig",
    "PopulationDay",
    "SynthSummary",
    "council_by_code",
    "first_day",
    "generate_national_optouts",
    "generate_population",
    "make_faker",
    "next_day",
    "population_on_day",
    "write_day",
    "write_days",
    "write_population",
]
