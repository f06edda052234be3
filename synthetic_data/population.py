"""Synthetic populations of children, streamed one council at a time, with their ground truth.

Clean master records come first (households of siblings sharing a name, address and carer), then
corruptions, each row keeping its true labels. Every random draw comes from a numpy Generator seeded
from `PopulationConfig.seed` and the council's position, never from the clock, so a config always
gives the same population. Columns are built vectorised over Arrow arrays; see `vocab` for the word
lists and `notes` for the free-text notes.

    >>> batches = list(generate_population(PopulationConfig(children=30, councils=2)))
    >>> [len(b.truth) == len(b.extract) for b in batches]
    [True, True]
"""

from __future__ import annotations

import datetime
import functools
import numbers
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib import resources

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import yaml

from synthetic_data import _arrow as A
from synthetic_data.councils import COUNCILS, MOBILE_DRAMA_PREFIX, Council
from synthetic_data.notes import Notes, NoteValues, build_notes, choose_notes
from synthetic_data.providers import POSTCODE_INWARD_LETTERS
from synthetic_data.vocab import (
    EMAIL_DOMAINS,
    FIRST_NAMES_FEMALE,
    FIRST_NAMES_MALE,
    LAST_NAME_WEIGHTS,
    LAST_NAMES,
    STREET_SUFFIXES,
)
from transforms import contract
from transforms.identifiers import NHS_WEIGHTS, UPN_LETTERS, UPN_POSITION_WEIGHTS

# Defect kinds, in the order they are listed in the truth's `defects` column.
DEFECT_KINDS: tuple[str, ...] = (
    "missing_nhs_number",  # blank NHS number (at missing_nhs_rate, not defect_rate)
    "invalid_nhs_checksum",  # last digit wrong, so Modulus 11 fails
    "implausible_dob",  # in the future, or older than the contract's maximum age
    "day_month_swapped",  # YYYY-DD-MM: a wrong but valid date when the day is 12 or less
    "malformed_postcode",  # fails the Royal Mail format even after normalising
    "unknown_sex_code",  # not one of contract.SEX_CODES
    "whitespace_case",  # stray spaces or changed case in a name or postcode; normalises clean
    "wrong_upn_check_letter",
    "duplicate_row",  # this row and another of the same extract are identical (both labelled)
)
_BIT = {kind: 1 << i for i, kind in enumerate(DEFECT_KINDS)}
UNKNOWN_SEX_VALUES = ("1", "2", "9", "B", "G", "Male", "Female", "?")

TRUTH_COLUMNS: tuple[str, ...] = (
    "true_child_id",  # the same child has the same id in every council's extract
    "council_code",
    "row_number",  # 1-based data row of the extract file
    "local_child_id",
    "nhs_number",  # clean 10 digits; "" when the child has no NHS number
    "upn",  # clean UPN; "" when the child has none
    "given_name",
    "family_name",
    "former_family_name",
    "date_of_birth",
    "sex",
    "address",
    "postcode",
    "carer_name",
    "carer_phone",
    "carer_date_of_birth",  # "" for care leavers, who have no carer listed
    "note_emails",  # e-mail addresses placed in the notes, ';'-joined
    "notes_pii_spans",  # JSON list of {"type", "start", "end"} into the extract's notes
    "shielded",  # the child is shielded (an arriving mover's new council may not know yet)
    "care_leaver",
    "opted_out_council",  # on this council's opt-out register
    "opted_out_national",  # on the national opt-out register
    "opted_out_any",  # on the national register or any council's register that lists the child
    "is_mover",  # the child appears in two councils' extracts
    "defects",  # DEFECT_KINDS present in this row, ';'-joined, "" for a clean row
)
_BOOL_TRUTH = (
    "shielded",
    "care_leaver",
    "opted_out_council",
    "opted_out_national",
    "opted_out_any",
    "is_mover",
)
TRUTH_SCHEMA = pa.schema(
    [
        (
            name,
            pa.int64() if name == "row_number" else pa.bool_() if name in _BOOL_TRUTH else A.STRING,
        )
        for name in TRUTH_COLUMNS
    ]
)

NHS_TEST_PREFIX = 999  # PDS's test range 999 000 0000-999 999 9999: never issued to a patient
NHS_TEST_FIRST = NHS_TEST_PREFIX * 1_000_000  # first nine digits of the lowest test NHS number
# Used only when a population outgrows the test range (England has about 12 million children;
# the range holds 909,091 valid numbers). Synthetic, not reserved: nothing sets these aside for
# testing, but no patient is issued one. England and Wales issue 400-499 and 600-799 (England
# lately 3xx too), Scotland's CHI numbers run 010-311 (a date of birth first), Northern Ireland
# has 320-399; 9xx is outside all of them. NHS test environments do use 9xx numbers for their own
# synthetic patients, who are not real either. The truth file marks every child synthetic anyway.
SYNTHETIC_NHS_PREFIXES: tuple[int, ...] = tuple(range(986, 999))  # 13 prefixes, ~11.8 million
_SYNTHETIC_PREFIX_RANGE = range(900, 999)  # a configured prefix must lie here
NHS_RANGES = ("auto", "test", "extended")
COUNCIL_SIZES = ("equal", "real")
CARE_LEAVER_SHARE = 0.01  # share of each council's children who are care leavers aged 18-24
DAYS_PER_YEAR = 365.25
_MAX_CHILD_DAYS = 6570  # just under 18 years
_LEAVER_DAYS = (6580, 9125)  # 18 to just under 25 years
_STREAM_PLAN, _STREAM_COUNCIL = 0, 1000


@dataclass(frozen=True)
class PopulationConfig:
    """What population to generate; validated on creation, reporting every problem at once.

    Children with an NHS number get distinct numbers; never two children the same one.
    `nhs_range` says from where: "test" only from the test range 999 000 0000-999 999 9999,
    which holds 909,091 valid numbers (above about 937,000 children raise `missing_nhs_rate`);
    "extended" from the test range and the `synthetic_nhs_prefixes` (986-998 by default: never
    issued to patients, but not reserved either, see SYNTHETIC_NHS_PREFIXES); "auto" (default)
    from the test range while the population fits in it, as "extended" when it does not. A config
    whose numbers cannot fit is refused, naming what to change.

    `sizes` "equal" splits the children evenly between the councils; "real" in proportion to
    each council's approximate number of children (`Council.children_approx`), so
    `PopulationConfig(children=12_000_000, councils=len(COUNCILS), sizes="real")` is England.
    """

    children: int = 3000
    councils: int = 3  # how many councils, taken in order from councils.COUNCILS (153: all)
    seed: int = 1
    reference_date: datetime.date = datetime.date(2026, 11, 25)  # "today"; the clock is never read
    optout_rate: float = 0.02  # per-council opt-out register
    national_optout_rate: float = 0.01
    shielded_rate: float = 0.005
    mover_rate: float = 0.02  # children in two councils' extracts (same NHS number, new local id)
    missing_nhs_rate: float = 0.03
    notes_rate: float = 0.3  # share of rows with a non-empty notes cell
    notes_pii_rate: float = 0.3  # share of non-empty notes that carry personal data
    defect_rate: float = 0.003  # per defect kind, per row: ~2% of rows, under the 5% file limit
    sizes: str = "equal"  # COUNCIL_SIZES: "equal" or "real" (in proportion to real councils)
    nhs_range: str = "auto"  # NHS_RANGES: "auto", "test" (999 only) or "extended"
    synthetic_nhs_prefixes: tuple[int, ...] = SYNTHETIC_NHS_PREFIXES  # for "extended" (or "auto")

    def __post_init__(self) -> None:
        problems = _config_problems(self)
        if problems:
            raise ValueError("invalid PopulationConfig:\n- " + "\n- ".join(problems))


@dataclass
class CouncilBatch:
    """One council's extract, opt-out register and ground truth (one truth row per extract row).

    The Arrow tables are the batch; the pandas frames are made from them on first use (and kept),
    so the writer, which uses only the tables, never pays for them.
    """

    council: Council
    tables: tuple[pa.Table, pa.Table, pa.Table] = field(repr=False)  # (extract, optouts, truth)

    @functools.cached_property
    def extract(self) -> pd.DataFrame:
        """contract.CHILDREN_COLUMNS, all str, blanks as ""."""
        return self.tables[0].to_pandas()

    @functools.cached_property
    def optouts(self) -> pd.DataFrame:
        """contract.OPTOUT_COLUMNS."""
        return self.tables[1].to_pandas()

    @functools.cached_property
    def truth(self) -> pd.DataFrame:
        """TRUTH_COLUMNS, aligned row by row with `extract`."""
        return self.tables[2].to_pandas()


def _config_problems(config: PopulationConfig) -> list[str]:
    problems = []
    whole = {}
    for name in ("children", "councils", "seed"):
        value = getattr(config, name)
        if isinstance(value, numbers.Integral) and not isinstance(value, bool):
            whole[name] = int(value)
        else:
            problems.append(f"{name} must be an integer, not {value!r}")
    if whole.get("children", 0) < 0:
        problems.append(f"children must be 0 or more, not {config.children}")
    if not 1 <= whole.get("councils", 1) <= len(COUNCILS):
        problems.append(f"councils must be between 1 and {len(COUNCILS)}, not {config.councils}")
    if whole.get("seed", 0) < 0:
        problems.append(f"seed must be 0 or more, not {config.seed}")
    date = config.reference_date
    if not isinstance(date, datetime.date) or isinstance(date, datetime.datetime):
        problems.append(f"reference_date must be a datetime.date, not {date!r}")
    for name in (
        "optout_rate",
        "national_optout_rate",
        "shielded_rate",
        "mover_rate",
        "missing_nhs_rate",
        "notes_rate",
        "notes_pii_rate",
        "defect_rate",
    ):
        value = getattr(config, name)
        if not isinstance(value, numbers.Real) or isinstance(value, bool) or not 0 <= value <= 1:
            problems.append(f"{name} must be a number from 0 to 1, not {value!r}")
    if config.sizes not in COUNCIL_SIZES:
        problems.append(f"sizes must be one of {', '.join(COUNCIL_SIZES)}, not {config.sizes!r}")
    if config.nhs_range not in NHS_RANGES:
        problems.append(
            f"nhs_range must be one of {', '.join(NHS_RANGES)}, not {config.nhs_range!r}"
        )
    problems.extend(_prefix_problems(config.synthetic_nhs_prefixes))
    if not problems:
        needed = _needed_nhs_numbers(config)
        prefixes = nhs_prefixes(config)
        capacity = sum(count_valid_nhs_numbers(p) for p in prefixes)
        if needed > capacity:
            where = ", ".join(f"{p}" for p in prefixes)
            fix = (
                "set nhs_range to 'auto' or 'extended', "
                if config.nhs_range == "test"
                else "add synthetic_nhs_prefixes (900-998), "
            )
            problems.append(
                f"{needed:,} children need an NHS number but the ranges starting {where} hold "
                f"only {capacity:,} valid numbers, and no number is ever given twice: {fix}"
                "lower children or raise missing_nhs_rate"
            )
    return problems


def _prefix_problems(prefixes: object) -> list[str]:
    if not isinstance(prefixes, tuple) or not all(
        isinstance(p, numbers.Integral) and not isinstance(p, bool) for p in prefixes
    ):
        return [f"synthetic_nhs_prefixes must be a tuple of 3-digit integers, not {prefixes!r}"]
    problems = []
    outside = [p for p in prefixes if p not in _SYNTHETIC_PREFIX_RANGE]
    if outside:
        problems.append(
            f"synthetic_nhs_prefixes must lie in 900-998, outside every range issued to patients "
            f"and apart from the 999 test range, not {outside}"
        )
    if len(set(prefixes)) != len(prefixes):
        problems.append(f"synthetic_nhs_prefixes must not repeat a prefix: {prefixes}")
    return problems


def _needed_nhs_numbers(config: PopulationConfig) -> int:
    sizes = _council_sizes(config)
    return int((sizes - _missing_counts(config, sizes)).sum())


def nhs_prefixes(config: PopulationConfig) -> tuple[int, ...]:
    """Return the first three digits of the NHS numbers `config` draws from, test range first.

    "auto" adds the synthetic prefixes only when the children needing a number outnumber the
    test range's valid numbers, so every population that fits keeps the test range alone.
    """
    extended = (NHS_TEST_PREFIX, *config.synthetic_nhs_prefixes)
    if config.nhs_range == "extended":
        return extended
    if config.nhs_range == "auto":
        fits = _needed_nhs_numbers(config) <= count_valid_nhs_numbers(NHS_TEST_PREFIX)
        return (NHS_TEST_PREFIX,) if fits else extended
    return (NHS_TEST_PREFIX,)


@functools.cache
def count_valid_nhs_numbers(prefix: int) -> int:
    """Return how many valid NHS numbers start with the three digits `prefix` (about 909,000)."""
    return len(_valid_nhs_numbers(prefix))


def _valid_nhs_numbers(prefix: int) -> np.ndarray:
    first_nine = prefix * 1_000_000 + np.arange(1_000_000, dtype=np.int64)
    total = np.zeros(len(first_nine), dtype=np.int64)
    for position, weight in enumerate(NHS_WEIGHTS):
        total += (first_nine // 10 ** (8 - position)) % 10 * weight
    check = 11 - total % 11
    check[check == 11] = 0
    valid = check != 10  # no check digit exists for these nine digits
    return first_nine[valid] * 10 + check[valid]


def nhs_number_pool(config: PopulationConfig) -> np.ndarray:
    """Return every valid NHS number `config` may give out, ascending (see `nhs_prefixes`)."""
    prefixes = sorted(nhs_prefixes(config))
    if prefixes == [NHS_TEST_PREFIX]:
        return test_nhs_numbers()
    return np.concatenate([_valid_nhs_numbers(p) for p in prefixes])


@functools.cache
def test_nhs_numbers() -> np.ndarray:
    """Return every valid NHS number of the test range 999 000 0000 to 999 999 9999, ascending."""
    numbers = _valid_nhs_numbers(NHS_TEST_PREFIX)
    numbers.setflags(write=False)
    return numbers


@functools.cache
def service_codes() -> tuple[tuple[str, bool], ...]:
    """Return the policy's service codes and whether each is sensitive, in the policy's order."""
    text = resources.files("transforms").joinpath("config/policy.yaml").read_text("utf-8")
    services = yaml.safe_load(text)["services"]
    return tuple((code, bool(spec.get("sensitive", False))) for code, spec in services.items())


# How often each service is involved and for which ages (years, inclusive); unknown codes get
# the default. Sensitive services (CAMHS, SH, SM) are kept on purpose: the index must hide them.
_SERVICE_RATES: dict[str, tuple[float, int, int]] = {
    "EH": (0.06, 0, 17),
    "CSC": (0.04, 0, 17),
    "CP": (0.01, 0, 17),
    "LAC": (0.008, 0, 17),
    "SEN": (0.08, 2, 24),
    "HV": (0.5, 0, 4),
    "SN": (0.05, 5, 17),
    "YJ": (0.01, 10, 17),
    "EWS": (0.03, 5, 16),
    "CAMHS": (0.03, 5, 17),
    "SH": (0.02, 13, 24),
    "SM": (0.01, 12, 24),
}
_DEFAULT_SERVICE_RATE = (0.01, 0, 24)


# --- the plan: everything decided across councils before any council is generated -----------


@dataclass(frozen=True)
class _Plan:
    councils: tuple[Council, ...]
    sizes: np.ndarray  # unique children whose home is each council
    missing: np.ndarray  # of which have no NHS number
    nhs_offsets: np.ndarray  # council c takes nhs_pool[nhs_offsets[c]:nhs_offsets[c + 1]]
    id_offsets: np.ndarray  # true child ids of council c start after id_offsets[c]
    nhs_pool: np.ndarray  # the test numbers in a seeded order; each is used at most once
    national: np.ndarray  # per allocated NHS number: on the national opt-out register
    national_extra: np.ndarray  # register entries for children in no extract
    movers_out: np.ndarray  # movers leaving each council for a later one


def _rng(config: PopulationConfig, stream: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([config.seed, stream]))


def _council_sizes(config: PopulationConfig) -> np.ndarray:
    if config.sizes == "real":
        weights = [c.children_approx for c in COUNCILS[: config.councils]]
        return _largest_remainder(config.children, np.array(weights, dtype=np.float64))
    base, extra = divmod(config.children, config.councils)
    return np.array([base + (c < extra) for c in range(config.councils)], dtype=np.int64)


def _missing_counts(config: PopulationConfig, sizes: np.ndarray) -> np.ndarray:
    return np.round(sizes * config.missing_nhs_rate).astype(np.int64)


def _largest_remainder(total: int, weights: np.ndarray) -> np.ndarray:
    if total == 0 or weights.sum() == 0:
        return np.zeros(len(weights), dtype=np.int64)
    exact = total * weights / weights.sum()
    counts = np.floor(exact).astype(np.int64)
    order = np.argsort(-(exact - counts), kind="stable")
    counts[order[: total - counts.sum()]] += 1
    return counts


def _make_plan(config: PopulationConfig) -> _Plan:
    rng = _rng(config, _STREAM_PLAN)
    sizes = _council_sizes(config)
    missing = _missing_counts(config, sizes)
    with_nhs = sizes - missing
    nhs_offsets = np.concatenate([[0], np.cumsum(with_nhs)])
    pool = rng.permutation(nhs_number_pool(config))
    allocated = int(nhs_offsets[-1])
    national = rng.random(allocated) < config.national_optout_rate
    spare = pool[allocated:]
    national_extra = np.sort(spare[: min(int(national.sum()), len(spare))])
    movers = np.zeros(config.councils, dtype=np.int64)
    if config.councils > 1:
        total_movers = round(config.mover_rate * config.children)
        movers[:-1] = _largest_remainder(total_movers, sizes[:-1].astype(np.float64))
        movers = np.minimum(movers, with_nhs)
    return _Plan(
        councils=COUNCILS[: config.councils],
        sizes=sizes,
        missing=missing,
        nhs_offsets=nhs_offsets,
        id_offsets=np.concatenate([[0], np.cumsum(sizes)]),
        nhs_pool=pool,
        national=national,
        national_extra=national_extra,
        movers_out=movers,
    )


# --- public entry points ----------------------------------------------------------------------


def generate_population(config: PopulationConfig) -> Iterator[CouncilBatch]:
    """Yield one `CouncilBatch` per council, in council order, holding one council in memory.

    Movers are chosen in an earlier council and appear again in a later one; only their records
    are carried between councils.

    Args:
        config: the population to generate.

    Yields:
        One batch per council; the same config always yields the same batches.
    """
    plan = _make_plan(config)
    pending: dict[int, list[dict[str, np.ndarray | pa.Array]]] = {}
    for c in range(config.councils):
        arriving = pending.pop(c, [])
        batch, leaving = _generate_council(config, plan, c, arriving)
        for dest, records in leaving.items():
            pending.setdefault(dest, []).append(records)
        yield batch


def generate_national_optouts(config: PopulationConfig) -> pd.DataFrame:
    """Return the national opt-out register: NHS numbers of children of any council, and others.

    It lists children from every council of the population plus about as many children who are in
    no extract (the national register covers all of England). It is decided before any council is
    generated, so this does not generate the population.

    Returns:
        contract.OPTOUT_COLUMNS with `local_child_id` blank, sorted by NHS number.
    """
    return national_optouts_table(config).to_pandas()


def national_optouts_table(config: PopulationConfig) -> pa.Table:
    """Return the national opt-out register as an Arrow table (see `generate_national_optouts`)."""
    plan = _make_plan(config)
    allocated = plan.nhs_pool[: int(plan.nhs_offsets[-1])]
    numbers = np.sort(np.concatenate([allocated[plan.national], plan.national_extra]))
    return pa.table(
        {"nhs_number": A.digits(numbers), "local_child_id": A.repeat("", len(numbers))}
    ).select(list(contract.OPTOUT_COLUMNS))


# --- one council ------------------------------------------------------------------------------

Block = dict[str, np.ndarray | pa.Array]


def _generate_council(
    config: PopulationConfig, plan: _Plan, c: int, arriving: list[Block]
) -> tuple[CouncilBatch, dict[int, Block]]:
    council = plan.councils[c]
    rng = _rng(config, _STREAM_COUNCIL + c)
    ref = np.datetime64(config.reference_date, "D")
    pools = _council_pools(rng, council, int(plan.sizes[c]))

    home = _home_children(config, plan, c, rng, ref, pools)
    leaving = _choose_movers(config, plan, c, rng, home)
    people = _join_blocks([home, _arrivals(rng, arriving, pools, ref)])
    extract, truth, optouts = _render_council(config, rng, council, people, pools, ref)
    batch = CouncilBatch(council=council, tables=(extract, optouts, truth))
    return batch, leaving


def _render_council(
    config: PopulationConfig,
    rng: np.random.Generator,
    council: Council,
    people: Block,
    pools: dict,
    ref: np.datetime64,
    first_local: int = 0,
) -> tuple[pa.Table, pa.Table, pa.Table]:
    """Return (extract, truth, opt-out register) of clean `people`: rows, notes and defects.

    Local ids count from `first_local` + 1, so children added on a later day get new ids.
    """
    n = len(people["dob"])
    service_bits = _service_bits(rng, (ref - people["dob"]).astype(np.int64))
    harmless_rows, pii_rows = choose_notes(rng, n, config.notes_rate, config.notes_pii_rate)
    note_values = _note_values(rng, people, pii_rows, pools)

    # One row per child in the order generated: households in random order, siblings together (a
    # family's children are registered at once), arriving movers last. A duplicate row (a defect)
    # lands at a random point. `source` names the child each row shows, and every later random
    # draw is made per child and looked up through it, so a duplicate is an exact copy.
    # Half the rate in pairs, so about `defect_rate` of rows carry the label, like other kinds.
    duplicates = np.flatnonzero(rng.random(n) < config.defect_rate / 2)
    keys = np.concatenate([2 * np.arange(n), 2 * rng.integers(0, max(n, 1), len(duplicates)) + 1])
    order = np.argsort(keys, kind="stable")
    source = np.concatenate([np.arange(n), duplicates])[order]
    rows = _select(people, source)
    rows["local_child_id"] = _local_ids(council, first_local + source)
    school = rows["school"]
    rows["school_urn"] = A.where(school >= 0, A.take(pools["urn"], np.maximum(school, 0)), "")
    rows["services"] = _labels(service_bits[source], tuple(code for code, _ in service_codes()))
    notes = build_notes(rng, n, harmless_rows, pii_rows, note_values, source)
    defects, columns = _corrupt(config, rng, rows, source, n, pools, ref)
    defects[np.isin(source, duplicates)] |= _BIT["duplicate_row"]  # the copy and its original
    columns["notes"] = notes.text

    extract = pa.table({name: columns[name] for name in contract.CHILDREN_COLUMNS})
    truth = _truth_table(council, rows, notes, defects)
    optouts = _council_optouts(council, people, first_local)
    return extract, truth, optouts


def _local_ids(council: Council, child: np.ndarray) -> pa.Array:
    return A.concat(council.id_prefix, A.digits(child + 1, width=8))


def _council_pools(rng: np.random.Generator, council: Council, n: int) -> dict:
    """Streets (each with a postcode), GP practices and schools, sized to the council's children."""
    n_streets = max(8, n // 12)
    letters = A.strings(list(POSTCODE_INWARD_LETTERS))
    outward = A.take(
        A.strings(council.postcode_districts),
        rng.integers(0, len(council.postcode_districts), n_streets),
    )
    sector = A.digits(rng.integers(0, 10, n_streets))
    unit1 = A.take(letters, rng.integers(0, len(POSTCODE_INWARD_LETTERS), n_streets))
    unit2 = A.take(letters, rng.integers(0, len(POSTCODE_INWARD_LETTERS), n_streets))
    street_words = A.strings(FIRST_NAMES_MALE + FIRST_NAMES_FEMALE + LAST_NAMES)
    street = A.concat(
        A.take(street_words, rng.integers(0, len(street_words), n_streets)),
        " ",
        A.take(A.strings(STREET_SUFFIXES), rng.integers(0, len(STREET_SUFFIXES), n_streets)),
    )

    n_codes = 999 * len(council.ods_prefixes)
    serial = rng.choice(n_codes, min(max(3, n // 1500), n_codes), replace=False)
    practices = A.concat(
        A.take(A.strings(council.ods_prefixes), serial // 999), A.digits(serial % 999 + 1, width=3)
    )

    n_schools = min(max(3, n // 400), 4000)
    urn = 100_000 + 5000 * COUNCILS.index(council) + rng.choice(5000, n_schools, replace=False)
    return {
        "street": street,
        "outward": outward,
        "sector": sector,
        "unit1": unit1,
        "unit2": unit2,
        "postcode": A.concat(outward, " ", sector, unit1, unit2),
        "practices": practices,
        "urn": A.digits(urn),
        "establishment": rng.choice(9000, n_schools, replace=False) + 1000,
        "landline": council.landline_prefix,
        "la_number": council.dfe_la_number,
    }


def _phones(rng: np.random.Generator, n: int, landline_prefix: str) -> pa.Array:
    """Numbers from Ofcom's drama ranges: mostly mobiles, some local landlines."""
    tail = A.digits(rng.integers(0, 1000, n), width=3)
    mobile = rng.random(n) < 0.7
    return A.where(mobile, A.concat(MOBILE_DRAMA_PREFIX, tail), A.concat(landline_prefix, tail))


def _first_names(rng: np.random.Generator, male: np.ndarray) -> pa.Array:
    n = len(male)
    index = np.where(
        male,
        rng.integers(0, len(FIRST_NAMES_MALE), n),
        len(FIRST_NAMES_MALE) + rng.integers(0, len(FIRST_NAMES_FEMALE), n),
    )
    return A.take(A.strings(FIRST_NAMES_MALE + FIRST_NAMES_FEMALE), index)


def _last_names(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.choice(len(LAST_NAMES), n, p=LAST_NAME_WEIGHTS)


def _household_sizes(rng: np.random.Generator, n_kids: int) -> np.ndarray:
    """Children per household (1 to 5) adding up to exactly `n_kids`."""
    values, p = np.arange(1, 6), [0.40, 0.36, 0.17, 0.05, 0.02]
    sizes = np.zeros(0, dtype=np.int64)
    while sizes.sum() < n_kids:
        sizes = np.concatenate([sizes, rng.choice(values, size=n_kids // 2 + 8, p=p)])
    if n_kids == 0:
        return sizes
    cum = np.cumsum(sizes)
    h = int(np.searchsorted(cum, n_kids)) + 1
    sizes = sizes[:h].copy()
    sizes[-1] -= cum[h - 1] - n_kids
    return sizes


def _home_children(
    config: PopulationConfig,
    plan: _Plan,
    c: int,
    rng: np.random.Generator,
    ref: np.datetime64,
    pools: dict,
    newborn_days: int | None = None,
) -> Block:
    """Clean records of the children whose home is council `c`, built household by household.

    With `newborn_days`, every child is a newborn in a household of its own, born 0 to
    `newborn_days` days before `ref` (births registered on a later day).
    """
    n = int(plan.sizes[c])
    n_leavers = 0 if newborn_days is not None else round(n * CARE_LEAVER_SHARE)
    # Households of siblings, then care leavers, each living on their own.
    if newborn_days is not None:
        sizes = np.ones(n, dtype=np.int64)
    else:
        sizes = np.concatenate(
            [_household_sizes(rng, n - n_leavers), np.ones(n_leavers, dtype=np.int64)]
        )
    h = len(sizes)
    leaver_household = np.arange(h) >= h - n_leavers
    household = np.repeat(np.arange(h), sizes)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    first = np.zeros(n, dtype=bool)
    first[starts[sizes > 0]] = True

    # Ages in days: siblings 10 months to 6 years apart, some twins (same birthday), all under 18.
    gap = np.where(rng.random(n) < 0.04, 0, rng.integers(300, 2200, n))
    gap[first] = 0
    running = np.cumsum(gap)
    within = running - running[starts[household]] if n else running
    spread = np.zeros(h, dtype=np.int64)
    np.maximum.at(spread, household, within)
    squeeze = np.minimum(1.0, 5500 / np.maximum(spread, 1))
    within = np.floor(within * squeeze[household]).astype(np.int64)
    spread = np.floor(spread * squeeze).astype(np.int64)
    oldest = (rng.random(h) * (_MAX_CHILD_DAYS - spread + 1)).astype(np.int64) + spread
    oldest = np.where(leaver_household, rng.integers(*_LEAVER_DAYS, h), oldest)
    if newborn_days is not None:
        oldest = rng.integers(0, newborn_days + 1, h)
    age = oldest[household] - within
    is_leaver = leaver_household[household]
    dob = ref - age.astype("timedelta64[D]")

    # Households: family name, carer (sometimes with another surname), contact, address, GP.
    family = _last_names(rng, h)
    last_names = A.strings(LAST_NAMES)
    carer_family = np.where(rng.random(h) < 0.85, family, _last_names(rng, h))
    carer_name = A.concat(
        _first_names(rng, rng.random(h) < 0.25), " ", A.take(last_names, carer_family)
    )
    carer_phone = _phones(rng, h, pools["landline"])
    carer_age = oldest + rng.integers(17 * 365, 45 * 365, h)
    carer_dob = A.dates(ref - carer_age.astype("timedelta64[D]"))
    address, street = _street_addresses(rng, h, pools)
    practice = _practices(rng, h, pools)
    shielded = (rng.random(h) < config.shielded_rate)[household]

    sex_draw = rng.choice(4, n, p=[0.49, 0.49, 0.015, 0.005])  # M, F, U, X
    male_name = np.where(sex_draw < 2, sex_draw == 0, rng.random(n) < 0.5)
    former = _last_names(rng, n)
    former = np.where(former == family[household], (former + 1) % len(LAST_NAMES), former)

    has_nhs = np.ones(n, dtype=bool)
    has_nhs[rng.choice(n, int(plan.missing[c]), replace=False)] = False
    lo, hi = plan.nhs_offsets[c], plan.nhs_offsets[c + 1]
    nhs = np.zeros(n, dtype=np.int64)
    nhs[has_nhs] = plan.nhs_pool[lo:hi]
    national = np.zeros(n, dtype=bool)
    national[has_nhs] = plan.national[lo:hi]

    school = _schools(rng, age, len(pools["urn"]))
    upn, upn_letter = _upns(rng, age, dob, school, pools)
    return {
        "true_child_id": A.concat("T", A.digits(plan.id_offsets[c] + np.arange(1, n + 1), width=9)),
        "nhs": nhs,
        "has_nhs": has_nhs,
        "upn": upn,
        "upn_letter": upn_letter,
        "given_name": _first_names(rng, male_name),
        "family_name": A.take(last_names, family[household]),
        "former_family_name": A.where(rng.random(n) < 0.03, A.take(last_names, former), ""),
        "dob": dob,
        "sex": A.take(A.strings(["M", "F", "U", "X"]), sex_draw),
        "carer_name": A.where(is_leaver, "", A.take(carer_name, household)),
        "carer_phone": A.where(is_leaver, "", A.take(carer_phone, household)),
        "carer_dob": A.where(is_leaver, "", A.take(carer_dob, household)),
        "address": A.take(address, household),
        "street": street[household],
        "postcode": A.take(pools["postcode"], street[household]),
        "gp_practice_code": A.take(practice, household),
        "school": school,
        "care_leaver": is_leaver | ((age >= 16 * DAYS_PER_YEAR) & (rng.random(n) < 0.02)),
        "shielded": shielded,
        "shielded_flag": shielded.copy(),
        "national": national,
        "council_optout": rng.random(n) < config.optout_rate,
        "other_optout": np.zeros(n, dtype=bool),
        "is_mover": np.zeros(n, dtype=bool),
    }


def _street_addresses(rng: np.random.Generator, n: int, pools: dict) -> tuple[pa.Array, np.ndarray]:
    """Return `n` addresses on the council's streets ("12 Mill Lane", some flats), and streets."""
    street = rng.integers(0, len(pools["street"]), n)
    line = A.concat(A.digits(rng.integers(1, 200, n)), " ", A.take(pools["street"], street))
    flat = A.concat("Flat ", A.digits(rng.integers(1, 12, n)), ", ", line)
    return A.where(rng.random(n) < 0.12, flat, line), street


def _practices(rng: np.random.Generator, n: int, pools: dict) -> pa.Array:
    practice = A.take(pools["practices"], rng.integers(0, len(pools["practices"]), n))
    return A.where(rng.random(n) < 0.98, practice, "")


def _schools(rng: np.random.Generator, age_days: np.ndarray, n_schools: int) -> np.ndarray:
    """Return each child's school in the council's pool, or -1 (under 4, over 17, not on roll)."""
    n = len(age_days)
    at_school = (age_days >= 4 * DAYS_PER_YEAR) & (age_days <= _MAX_CHILD_DAYS)
    at_school &= rng.random(n) < 0.96
    return np.where(at_school, rng.integers(0, n_schools, n), -1)


def _upns(
    rng: np.random.Generator,
    age_days: np.ndarray,
    dob: np.ndarray,
    school: np.ndarray,
    pools: dict,
) -> tuple[pa.Array, np.ndarray]:
    """Return UPNs for children aged 4 and over (blank for the rest) and their check-letter index.

    A UPN is issued by the child's school in the year it starts (about age 4) and keeps it for life;
    serial numbers count up within each school and year.
    """
    n = len(age_days)
    has = (age_days >= 4 * DAYS_PER_YEAR) & (rng.random(n) < 0.97)
    issuer = np.where(school >= 0, school, rng.integers(0, len(pools["establishment"]), n))
    year = (dob.astype("datetime64[Y]").astype(np.int64) + 1970 + 4) % 100
    key = np.where(has, issuer * 100 + year, -1)
    order = np.argsort(key, kind="stable")
    sorted_key = key[order]
    group_start = np.ones(n, dtype=bool)
    group_start[1:] = sorted_key[1:] != sorted_key[:-1]
    first = np.maximum.accumulate(np.where(group_start, np.arange(n), 0)) if n else order
    serial = np.empty(n, dtype=np.int64)
    serial[order] = np.arange(n) - first
    body = (
        pools["la_number"] * 10**9
        + pools["establishment"][issuer] * 10**5
        + year * 10**3
        + serial % 999
        + 1
    )
    total = np.zeros(n, dtype=np.int64)
    for position, weight in enumerate(UPN_POSITION_WEIGHTS):
        total += (body // 10 ** (11 - position)) % 10 * weight
    letter = total % 23
    upn = A.concat(A.take(A.strings(list(UPN_LETTERS)), letter), A.digits(body, width=12))
    return A.where(has, upn, ""), np.where(has, letter, -1)


def _choose_movers(
    config: PopulationConfig, plan: _Plan, c: int, rng: np.random.Generator, home: Block
) -> dict[int, Block]:
    """Mark the movers leaving council `c`; return their records keyed by destination council."""
    count = int(plan.movers_out[c])
    if count == 0:
        return {}
    chosen = np.sort(rng.choice(np.flatnonzero(home["has_nhs"]), count, replace=False))
    dest = rng.integers(c + 1, config.councils, count)
    dest_optout = rng.random(count) < config.optout_rate
    home["is_mover"][chosen] = True
    home["other_optout"][chosen] = dest_optout
    records = _select(home, chosen)
    records["other_optout"] = records["council_optout"]
    records["council_optout"] = dest_optout
    # The new council has not been told the child is shielded: shielding must follow the child.
    records["shielded_flag"] = np.zeros(count, dtype=bool)
    return {int(d): _select(records, np.flatnonzero(dest == d)) for d in np.unique(dest)}


def _arrivals(rng: np.random.Generator, arriving: list[Block], pools: dict, ref) -> Block:
    """Movers arriving from earlier councils: same child, new address, school and GP here."""
    if not arriving:
        return {}
    block = _join_blocks(arriving)
    n = len(block["dob"])
    block["address"], block["street"] = _street_addresses(rng, n, pools)
    block["postcode"] = A.take(pools["postcode"], block["street"])
    block["gp_practice_code"] = _practices(rng, n, pools)
    block["school"] = _schools(rng, (ref - block["dob"]).astype(np.int64), len(pools["urn"]))
    return block


def _select(block: Block, index: np.ndarray) -> Block:
    return {k: A.take(v, index) if isinstance(v, pa.Array) else v[index] for k, v in block.items()}


def _join_blocks(blocks: list[Block]) -> Block:
    blocks = [b for b in blocks if b]
    joined: Block = {}
    for key in blocks[0]:
        values = [b[key] for b in blocks]
        if isinstance(values[0], pa.Array):
            joined[key] = pa.concat_arrays(values)
        else:
            joined[key] = np.concatenate(values)
    return joined


def _labels(bits: np.ndarray, names: tuple[str, ...] = DEFECT_KINDS) -> pa.Array:
    """Return each row's set bits as the ';'-joined names of those bits."""
    unique, inverse = np.unique(bits, return_inverse=True)
    labels = [";".join(name for i, name in enumerate(names) if u >> i & 1) for u in unique]
    return A.take(A.strings(labels), inverse.reshape(-1))


def _service_bits(rng: np.random.Generator, age_days: np.ndarray) -> np.ndarray:
    """Return the services involved with each child as bits over the policy's service codes."""
    n = len(age_days)
    years = age_days // DAYS_PER_YEAR
    bits = np.zeros(n, dtype=np.int64)
    for i, (code, _) in enumerate(service_codes()):
        rate, low, high = _SERVICE_RATES.get(code, _DEFAULT_SERVICE_RATE)
        involved = (years >= low) & (years <= high) & (rng.random(n) < rate)
        bits |= involved.astype(np.int64) << i
    return bits


def _note_values(
    rng: np.random.Generator, rows: Block, pii_rows: np.ndarray, pools: dict
) -> NoteValues:
    """Personal data for the PII notes: the row's own people and numbers, and some other people."""
    m = len(pii_rows)
    last_names = A.strings(LAST_NAMES)
    other_given = _first_names(rng, rng.random(m) < 0.5)
    other_family = A.take(last_names, _last_names(rng, m))
    other = A.concat(other_given, " ", other_family)
    carer = A.take(rows["carer_name"], pii_rows)
    carer = A.where(A.lengths(carer) == 0, other, carer)
    child = A.concat(
        A.take(rows["given_name"], pii_rows), " ", A.take(rows["family_name"], pii_rows)
    )

    phone = A.take(rows["carer_phone"], pii_rows)
    phone = A.where(A.lengths(phone) == 0, _phones(rng, m, pools["landline"]), phone)
    style = rng.integers(0, 3, m)
    compact = pc.replace_substring(phone, " ", "")
    international = A.concat("+44 ", pc.utf8_slice_codeunits(phone, 1, 100))
    phone = A.where(style == 1, compact, A.where(style == 2, international, phone))

    local = A.concat(pc.utf8_lower(other_given), ".", pc.utf8_lower(other_family))
    local = pc.replace_substring(local, "'", "")
    number = A.where(rng.random(m) < 0.5, A.digits(rng.integers(1, 100, m)), "")
    domain = A.take(A.strings(EMAIL_DOMAINS), rng.integers(0, len(EMAIL_DOMAINS), m))
    email = A.concat(local, number, "@", domain)

    own = rows["has_nhs"][pii_rows]
    numbers = test_nhs_numbers()
    nhs = np.where(own, rows["nhs"][pii_rows], numbers[rng.integers(0, len(numbers), m)])
    nhs_text = A.digits(nhs)
    address, street = _street_addresses(rng, m, pools)
    return NoteValues(
        carer=carer,
        child=child,
        other=other,
        phone=phone,
        email=email,
        nhs=A.where(rng.random(m) < 0.5, _spaced_nhs(nhs_text), nhs_text),
        address=address,
        postcode=A.take(pools["postcode"], street),
    )


def _spaced_nhs(text: pa.Array) -> pa.Array:
    return A.concat(
        pc.utf8_slice_codeunits(text, 0, 3),
        " ",
        pc.utf8_slice_codeunits(text, 3, 6),
        " ",
        pc.utf8_slice_codeunits(text, 6, 10),
    )


def _corrupt(
    config: PopulationConfig,
    rng: np.random.Generator,
    rows: Block,
    source: np.ndarray,
    n: int,
    pools: dict,
    ref: np.datetime64,
) -> tuple[np.ndarray, dict[str, pa.Array]]:
    """Return each row's defect bits and the extract columns with those defects applied.

    Draws are made per child (`n` of them) and read through `source`, so duplicate rows match.
    """
    bits = np.zeros(len(source), dtype=np.int64)

    def pick(eligible: np.ndarray | bool, kind: str) -> np.ndarray:
        chosen = np.flatnonzero(eligible & (rng.random(n) < config.defect_rate)[source])
        bits[chosen] |= _BIT[kind]
        return chosen

    def per_child(draws: np.ndarray, at: np.ndarray) -> np.ndarray:
        return draws[source[at]]

    has_nhs = rows["has_nhs"]
    bits[~has_nhs] |= _BIT["missing_nhs_number"]
    nhs = rows["nhs"].copy()
    bad = pick(has_nhs, "invalid_nhs_checksum")
    last = nhs[bad] % 10
    nhs[bad] += (last + per_child(rng.integers(1, 10, n), bad)) % 10 - last
    nhs_text = A.digits(nhs)
    spaced = np.flatnonzero((rng.random(n) < 0.1)[source])  # the contract allows "999 123 4567"
    nhs_text = A.replace_at(nhs_text, spaced, _spaced_nhs(A.take(nhs_text, spaced)))
    nhs_text = A.where(has_nhs, nhs_text, "")

    true_dob = rows["dob"]
    dob = true_dob.copy()
    odd = pick(True, "implausible_dob")
    kind = per_child(rng.integers(0, 3, n), odd)
    future = ref + per_child(rng.integers(1, 731, n), odd).astype("timedelta64[D]")
    too_old = ref - per_child(rng.integers(27 * 366, 60 * 365, n), odd).astype("timedelta64[D]")
    sentinel = np.datetime64("1900-01-01")
    dob[odd] = np.where(kind == 0, future, np.where(kind == 1, too_old, sentinel))
    dob_text = A.dates(dob)
    month_start = true_dob.astype("datetime64[M]")
    day = (true_dob - month_start).astype(np.int64) + 1
    month = month_start.astype(np.int64) % 12 + 1
    swapped = pick((day != month) & ((bits & _BIT["implausible_dob"]) == 0), "day_month_swapped")
    year = true_dob[swapped].astype("datetime64[Y]").astype(np.int64) + 1970
    swapped_text = A.concat(
        A.digits(year, 4), "-", A.digits(day[swapped], 2), "-", A.digits(month[swapped], 2)
    )
    dob_text = A.replace_at(dob_text, swapped, swapped_text)

    postcode = rows["postcode"]
    broken = pick(True, "malformed_postcode")
    street = rows["street"][broken]
    out, sector, u1, u2 = (
        A.take(pools[k], street) for k in ("outward", "sector", "unit1", "unit2")
    )
    style = per_child(rng.integers(0, 4, n), broken)
    malformed = A.where(
        style == 0,
        A.concat(out, " ", sector, "C", u2),  # C is never an inward letter
        A.where(
            style == 1,
            A.concat(out, " O", u1, u2),  # the letter O for the digit 0
            A.where(
                style == 2,
                A.concat(out, " ", sector, u1),  # a letter short
                A.concat(out, " ", sector, u1, u2, u1),  # a letter too many
            ),
        ),
    )
    postcode = A.replace_at(postcode, broken, malformed)

    unknown = pick(True, "unknown_sex_code")
    unknown_value = per_child(rng.integers(0, len(UNKNOWN_SEX_VALUES), n), unknown)
    sex = A.replace_at(rows["sex"], unknown, A.take(A.strings(UNKNOWN_SEX_VALUES), unknown_value))

    # Stray spaces or changed case, in a name or (unless it is malformed) the postcode.
    messy = pick(True, "whitespace_case")
    style = per_child(rng.integers(0, 6, n), messy)
    on_broken = (bits[messy] & _BIT["malformed_postcode"]) != 0
    style = np.where((style >= 4) & on_broken, style - 4, style)
    given, family = rows["given_name"], rows["family_name"]
    given = _change(given, messy[style == 0], lambda v: A.concat(" ", v, " "))
    given = _change(given, messy[style == 2], pc.utf8_lower)
    family = _change(family, messy[style == 1], pc.utf8_upper)
    family = _change(family, messy[style == 3], lambda v: A.concat(v, "  "))
    postcode = _change(postcode, messy[style == 4], pc.utf8_lower)
    postcode = _change(postcode, messy[style == 5], lambda v: pc.replace_substring(v, " ", ""))

    wrong = pick(rows["upn_letter"] >= 0, "wrong_upn_check_letter")
    letter = (rows["upn_letter"][wrong] + per_child(rng.integers(1, 23, n), wrong)) % 23
    upn = _change(
        rows["upn"],
        wrong,
        lambda v: A.concat(
            A.take(A.strings(list(UPN_LETTERS)), letter), pc.utf8_slice_codeunits(v, 1, 13)
        ),
    )

    columns = {
        "local_child_id": rows["local_child_id"],
        "nhs_number": nhs_text,
        "upn": upn,
        "given_name": given,
        "family_name": family,
        "former_family_name": rows["former_family_name"],
        "date_of_birth": dob_text,
        "sex": sex,
        "address": rows["address"],
        "postcode": postcode,
        "carer_name": rows["carer_name"],
        "carer_phone": rows["carer_phone"],
        "school_urn": rows["school_urn"],
        "gp_practice_code": rows["gp_practice_code"],
        "services": rows["services"],
        "shielded": A.where(rows["shielded_flag"], "Y", "N"),
        "care_leaver": A.where(rows["care_leaver"], "Y", "N"),
    }
    return bits, columns


def _change(values: pa.Array, index: np.ndarray, how) -> pa.Array:
    """Return `values` with the rows at `index` passed through `how` (a vectorised function)."""
    return A.replace_at(values, index, how(A.take(values, index)))


def _truth_table(council: Council, rows: Block, notes: Notes, defects: np.ndarray) -> pa.Table:
    n = len(rows["dob"])
    columns = {
        "true_child_id": rows["true_child_id"],
        "council_code": A.repeat(council.gss_code, n),
        "row_number": pa.array(np.arange(1, n + 1, dtype=np.int64)),
        "local_child_id": rows["local_child_id"],
        "nhs_number": A.where(rows["has_nhs"], A.digits(rows["nhs"]), ""),
        "upn": rows["upn"],
        "given_name": rows["given_name"],
        "family_name": rows["family_name"],
        "former_family_name": rows["former_family_name"],
        "date_of_birth": A.dates(rows["dob"]),
        "sex": rows["sex"],
        "address": rows["address"],
        "postcode": rows["postcode"],
        "carer_name": rows["carer_name"],
        "carer_phone": rows["carer_phone"],
        "carer_date_of_birth": rows["carer_dob"],
        "note_emails": notes.emails,
        "notes_pii_spans": notes.pii_spans,
        "shielded": pa.array(rows["shielded"]),
        "care_leaver": pa.array(rows["care_leaver"]),
        "opted_out_council": pa.array(rows["council_optout"]),
        "opted_out_national": pa.array(rows["national"]),
        "opted_out_any": pa.array(rows["national"] | rows["council_optout"] | rows["other_optout"]),
        "is_mover": pa.array(rows["is_mover"]),
        "defects": _labels(defects),
    }
    return pa.Table.from_arrays([columns[name] for name in TRUTH_COLUMNS], schema=TRUTH_SCHEMA)


def _council_optouts(council: Council, people: Block, first_local: int = 0) -> pa.Table:
    """Return the council's register: NHS number, or local id for a child without one."""
    listed = np.flatnonzero(people["council_optout"])
    has_nhs = people["has_nhs"][listed]
    columns = {
        "nhs_number": A.where(has_nhs, A.digits(people["nhs"][listed]), ""),
        "local_child_id": A.where(has_nhs, "", _local_ids(council, first_local + listed)),
    }
    return pa.table(
        [columns[name] for name in contract.OPTOUT_COLUMNS], names=list(contract.OPTOUT_COLUMNS)
    )
