"""The day after: a population's births, moves, leavers, deaths, corrections, opt-outs and shields.

Day 0 is `generate_population(config)`. Day k is day k-1 after one day of `DailyChanges`, every
draw coming from a generator seeded by (config.seed, k). Nothing is read back from files: any day
is re-derived from its config by replaying days 1..k in memory, so a day can be made again exactly
after the pipeline has moved earlier extracts out of the drop zone, and no day depends on files
someone may have edited. The cost is memory: a multi-day run holds every council of one day at
once (day 0 alone streams, through `write_population`), unless told otherwise:
`next_day(..., release=True)` lets each of yesterday's councils go as soon as today's is made, and
`spill=folder` keeps each council in an Arrow file, memory-mapped when read, so `write_days` holds
one council at a time.

    >>> day0 = first_day(PopulationConfig(children=60, councils=2))
    >>> day1 = next_day(day0)
    >>> (day1.sequence, day1.created_at)
    (2, '2026-11-26T06:00:00Z')
"""

from __future__ import annotations

import dataclasses
import datetime
import numbers
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from synthetic_data import _arrow as A
from synthetic_data.councils import Council
from synthetic_data.population import (
    _STREAM_COUNCIL,
    TRUTH_SCHEMA,
    Block,
    CouncilBatch,
    PopulationConfig,
    _council_pools,
    _home_children,
    _local_ids,
    _make_plan,
    _Plan,
    _practices,
    _render_council,
    _rng,
    _schools,
    _street_addresses,
    generate_population,
    national_optouts_table,
)
from transforms import contract

_STREAM_DAY = 1_000_000  # day k draws from SeedSequence([seed, _STREAM_DAY, k])

# What happened to whom, one row per child and council, in today's events table.
EVENT_KINDS: tuple[str, ...] = (
    "aged_out",  # turned 18 (25 for care leavers): every council drops the child
    "died",  # every council drops the child
    "moved_away",  # left every council of the population (abroad, or elsewhere in England)
    "moved_out",  # left this council for `other_council`, where it arrives as `moved_in`
    "moved_in",  # the new council knows the child afresh: new local id, no defects, shielded N
    "born",  # a newborn registered with this council
    "corrected",  # the council fixed every defect of the child's record (duplicates removed)
    "opted_out_council",  # added to this council's opt-out register
    "opted_out_national",  # added to the national register
    "shielded",  # this council now sends the child shielded (the whole household)
)
EVENT_SCHEMA = pa.schema(
    [
        ("true_child_id", A.STRING),
        ("council_code", A.STRING),
        ("event", A.STRING),
        ("other_council", A.STRING),  # moved_out: where to; moved_in: where from; else ""
    ]
)
# Extract columns a correction copies from the truth (every defect kind lives in one of them).
_CORRECTED_COLUMNS = (
    "nhs_number",
    "upn",
    "given_name",
    "family_name",
    "date_of_birth",
    "sex",
    "postcode",
)


@dataclass(frozen=True)
class DailyChanges:
    """How much happens in a day; rates are per child per day unless said otherwise.

    The defaults are England's orders of magnitude (about 600,000 births a year for 12 million
    children, a few thousand child deaths, a few per cent of children moving council a year). At
    those rates a small population sees nothing most days, so `min_per_council` (default 1) makes
    every kind happen at least that often in every council each day, as far as there are children
    it can happen to; set it to 0 for the plain rates.
    """

    birth_rate: float = 0.00014
    death_rate: float = 0.000001
    move_rate: float = 0.00005  # to another council of the population
    leave_rate: float = 0.00003  # away from every council of the population
    correction_rate: float = 0.05  # share of yesterday's defective children corrected today
    optout_rate: float = 0.00005  # new entries on the council's register
    national_optout_rate: float = 0.00003
    shield_rate: float = 0.00001  # households newly shielded, per child
    min_per_council: int = 1
    registration_days: int = 42  # births are registered 0 to this many days after the birth

    def __post_init__(self) -> None:
        problems = []
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name in ("min_per_council", "registration_days"):
                if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 0:
                    problems.append(f"{f.name} must be a whole number 0 or more, not {value!r}")
            elif (
                not isinstance(value, numbers.Real)
                or isinstance(value, bool)
                or not 0 <= value <= 1
            ):
                problems.append(f"{f.name} must be a number from 0 to 1, not {value!r}")
        if problems:
            raise ValueError("invalid DailyChanges:\n- " + "\n- ".join(problems))


@dataclass
class CouncilDay:
    """One council on one day: its children extract, opt-out register and truth (row-aligned)."""

    council: Council
    extract: pa.Table  # contract.CHILDREN_COLUMNS
    optouts: pa.Table  # contract.OPTOUT_COLUMNS, cumulative: nobody leaves the register
    truth: pa.Table  # population.TRUTH_SCHEMA
    issued_local_ids: int  # local ids 1..this have been given out; new children get the next

    def to_batch(self) -> CouncilBatch:
        """Return the council as a `CouncilBatch` (pandas frames over the same tables)."""
        return CouncilBatch(council=self.council, tables=(self.extract, self.optouts, self.truth))


class SpilledCouncilDay:
    """A `CouncilDay` whose extract and truth wait in Arrow files, memory-mapped at each read.

    Reading costs no copy: the table's buffers are the file's pages, mapped while the table is
    used and let go with it, so a day of these holds one council in memory at a time.
    """

    def __init__(self, day: CouncilDay, folder: Path, tag: str) -> None:
        self.council = day.council
        self.optouts = day.optouts  # registers are small (a few per cent of rows) and grow
        self.issued_local_ids = day.issued_local_ids
        self._paths = {}
        for name, table in (("extract", day.extract), ("truth", day.truth)):
            path = folder / f"{tag}_{day.council.gss_code}_{name}.arrow"
            with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, table.schema) as out:
                out.write_table(table)
            self._paths[name] = path

    def _read(self, name: str) -> pa.Table:
        with pa.memory_map(str(self._paths[name])) as source:
            return pa.ipc.open_file(source).read_all()

    @property
    def extract(self) -> pa.Table:
        """contract.CHILDREN_COLUMNS, read from its file."""
        return self._read("extract")

    @property
    def truth(self) -> pa.Table:
        """population.TRUTH_SCHEMA, read from its file."""
        return self._read("truth")

    def to_batch(self) -> CouncilBatch:
        """Return the council as a `CouncilBatch` (tables read into memory)."""
        return CouncilDay(
            self.council, self.extract, self.optouts, self.truth, self.issued_local_ids
        ).to_batch()


def _spill(day: CouncilDay, folder: Path, tag: object) -> SpilledCouncilDay:
    return SpilledCouncilDay(day, folder, str(tag))


@dataclass
class PopulationDay:
    """A whole population on one day: every council, the national register and the day's events."""

    config: PopulationConfig
    changes: DailyChanges
    day: int  # 0 for the generated population, k for k days later
    councils: tuple[CouncilDay | SpilledCouncilDay, ...]
    national: pa.Table  # the national opt-out register, cumulative, sorted by NHS number
    events: pa.Table  # EVENT_SCHEMA: what changed since the day before (empty on day 0)
    issued_child_ids: int  # true child ids T000000001..this exist
    used_nhs_numbers: int  # numbers of the config's test-number pool given out, in pool order
    plan: _Plan = field(repr=False, compare=False, default=None)  # type: ignore[assignment]

    @property
    def date(self) -> datetime.date:
        """The day's date: the config's reference date plus `day` days."""
        return self.config.reference_date + datetime.timedelta(days=self.day)

    @property
    def sequence(self) -> int:
        """The extracts' sequence number: 1 on day 0, one more each day."""
        return self.day + 1

    @property
    def created_at(self) -> str:
        """The extracts' creation time: 06:00 UTC of the day (the clock is never read)."""
        return f"{self.date.isoformat()}T06:00:00Z"

    def event_counts(self) -> dict[str, int]:
        """Return how many children each kind of event touched today, in EVENT_KINDS order."""
        kinds = self.events["event"].to_pylist()
        return {kind: kinds.count(kind) for kind in EVENT_KINDS if kind in kinds}


def first_day(
    config: PopulationConfig, changes: DailyChanges | None = None, *, spill: Path | None = None
) -> PopulationDay:
    """Return day 0: `generate_population(config)` held in memory, ready for `next_day`.

    Args:
        config: the population.
        changes: what `next_day` applies each day (default `DailyChanges()`).
        spill: a folder to keep the councils in as Arrow files instead of memory (see
            `SpilledCouncilDay`); the caller removes it when done.

    Returns:
        The population on `config.reference_date`, with sequence 1.
    """
    plan = _make_plan(config)
    councils: list[CouncilDay | SpilledCouncilDay] = []
    for batch in generate_population(config):
        extract, optouts, truth = batch.tables
        issued = pc.count_distinct(truth["true_child_id"]).as_py()
        made = CouncilDay(batch.council, extract, optouts, truth, issued)
        councils.append(_spill(made, spill, 0) if spill else made)
    return PopulationDay(
        config=config,
        changes=changes or DailyChanges(),
        day=0,
        councils=tuple(councils),
        national=national_optouts_table(config),
        events=EVENT_SCHEMA.empty_table(),
        issued_child_ids=int(plan.id_offsets[-1]),
        used_nhs_numbers=int(plan.nhs_offsets[-1]) + len(plan.national_extra),
        plan=plan,
    )


def population_on_day(
    config: PopulationConfig, day: int, changes: DailyChanges | None = None
) -> PopulationDay:
    """Return the population `day` days after the reference date, replaying every day before it."""
    state = first_day(config, changes)
    for _ in range(day):
        state = next_day(state, release=True)  # the days before are not returned
    return state


# --- helpers over Arrow columns ---------------------------------------------------------------


def _ids(truth: pa.Table) -> np.ndarray:
    """Return the true child ids ("T000000123") as integers."""
    digits = pc.utf8_slice_codeunits(truth["true_child_id"], 1, 20)
    return pc.cast(digits, pa.int64()).to_numpy()


def _bools(table: pa.Table, name: str) -> np.ndarray:
    return table[name].to_numpy(zero_copy_only=False).astype(bool)


def _dates(table: pa.Table, name: str) -> np.ndarray:
    return pc.cast(table[name], pa.date32()).to_numpy(zero_copy_only=False).astype("datetime64[D]")


def _column(table: pa.Table, name: str) -> pa.Array:
    return table[name].combine_chunks()


def _birthday(dob: np.ndarray, years: int) -> np.ndarray:
    """Return each date of birth's `years`th birthday (29 February's falls on 1 March)."""
    month = dob.astype("datetime64[M]")
    return (month + 12 * years).astype("datetime64[D]") + (dob - month.astype("datetime64[D]"))


def _first_rows(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return the distinct ids, ascending, and the row where each first appears."""
    return np.unique(ids, return_index=True)


def _count(rate: float, population: int, eligible: int, minimum: int) -> int:
    return min(eligible, max(minimum, round(rate * population)))


def _choose(rng: np.random.Generator, pool: np.ndarray, k: int) -> np.ndarray:
    return np.sort(rng.choice(pool, k, replace=False)) if k else pool[:0]


def _set(table: pa.Table, name: str, values: pa.Array | np.ndarray) -> pa.Table:
    position = table.schema.get_field_index(name)
    kind = table.schema.field(position).type
    array = values if isinstance(values, pa.Array) else pa.array(values, type=kind)
    return table.set_column(position, table.schema.field(position), array)


def _where(table: pa.Table, name: str, mask: np.ndarray, value) -> pa.Table:
    """Return `table` with column `name` set to `value` (a scalar or aligned array) where `mask`."""
    if not mask.any():
        return table
    column = _column(table, name)
    replacement = pa.scalar(value, column.type) if not isinstance(value, pa.Array) else value
    return _set(table, name, pc.if_else(pa.array(mask), replacement, column))


class _Events:
    def __init__(self) -> None:
        self.parts: list[tuple[np.ndarray, str, str, str | pa.Array]] = []

    def add(self, ids: np.ndarray, council: str, event: str, other: str | pa.Array = "") -> None:
        if len(ids):
            self.parts.append((np.asarray(ids), council, event, other))

    def table(self) -> pa.Table:
        if not self.parts:
            return EVENT_SCHEMA.empty_table()
        columns: dict[str, list[pa.Array]] = {name: [] for name in EVENT_SCHEMA.names}
        for ids, council, event, other in self.parts:
            n = len(ids)
            columns["true_child_id"].append(A.concat("T", A.digits(ids, width=9)))
            columns["council_code"].append(A.repeat(council, n))
            columns["event"].append(A.repeat(event, n))
            columns["other_council"].append(
                other if isinstance(other, pa.Array) else A.repeat(other, n)
            )
        return pa.Table.from_arrays(
            [pa.concat_arrays(columns[name]) for name in EVENT_SCHEMA.names], schema=EVENT_SCHEMA
        )


# --- one day ----------------------------------------------------------------------------------


def next_day(
    yesterday: PopulationDay,
    changes: DailyChanges | None = None,
    *,
    release: bool = False,
    spill: Path | None = None,
) -> PopulationDay:
    """Return the population one day later, its extracts as the next snapshot of every council.

    In order: children who turned 18 (care leavers 25), died or moved away leave every council;
    movers leave one council and arrive in another (new local id, address, school and GP; the new
    council sends them unshielded and without defects); councils correct some defective records
    (every defect of the child; a duplicate row goes); newborns are registered; then councils add
    children to their opt-out registers, the national register grows, and some households become
    shielded. The truth follows: flags are set on every council's rows of the child.

    Args:
        yesterday: the population the day before (`first_day` or an earlier `next_day`).
        changes: what happens today; default `yesterday.changes`.
        release: hand yesterday's councils over: each is dropped as soon as today's is made and
            `yesterday` is left with none, so memory peaks at one day and one council instead of
            two days. For callers that move on and never look back (`write_days`).
        spill: a folder to keep today's councils in as Arrow files (see `SpilledCouncilDay`);
            with `release`, yesterday's files there are removed once today is made. The caller
            removes the folder when done.

    Returns:
        Today's population; `events` says who changed and how.

    Raises:
        ValueError: births need more NHS numbers than the population's ranges have left.
    """
    olds: list[CouncilDay | None] = list(yesterday.councils)
    if release:
        yesterday.councils = ()
    today = _next_day(yesterday, changes, olds, spill)
    if release and spill is not None:
        del olds
        for path in spill.glob(f"{yesterday.day}_*.arrow"):
            path.unlink()
    return today


def _next_day(
    yesterday: PopulationDay,
    changes: DailyChanges | None,
    olds: list[CouncilDay | None],
    spill: Path | None = None,
) -> PopulationDay:
    """`next_day`, reading yesterday's councils from `olds` and emptying it as it goes.

    With `spill`, every council made (halfway and at the end) is written to an Arrow file in that
    folder and read back from it when used (`SpilledCouncilDay`), so one council is in memory at
    a time, not a day.
    """
    config = yesterday.config
    changes = changes or yesterday.changes
    day = yesterday.day + 1
    today = config.reference_date + datetime.timedelta(days=day)
    ref = np.datetime64(today, "D")
    rng = np.random.default_rng(np.random.SeedSequence([config.seed, _STREAM_DAY, day]))
    plan = yesterday.plan if yesterday.plan is not None else _make_plan(config)
    events = _Events()
    minimum = changes.min_per_council
    codes = [cd.council.gss_code for cd in olds]
    ids = [_ids(cd.truth) for cd in olds]

    # 1. Who leaves every council, and who moves from one council to another.
    leaving: set[int] = set()
    for cd, row_ids in zip(olds, ids, strict=True):
        dob = _dates(cd.truth, "date_of_birth")
        leaver = _bools(cd.truth, "care_leaver")
        adult = np.where(leaver, _birthday(dob, 25), _birthday(dob, 18)) <= ref
        leaving.update(np.unique(row_ids[adult]).tolist())
    aged_out = np.array(sorted(leaving), dtype=np.int64)
    died: list[np.ndarray] = []
    away: list[np.ndarray] = []
    moves: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # (ids, first rows, destination)
    for c, (cd, row_ids) in enumerate(zip(olds, ids, strict=True)):
        unique, first = _first_rows(row_ids)
        population = len(unique)
        staying = ~np.isin(unique, np.concatenate([aged_out, *died, *away]))
        k = _count(changes.death_rate, population, int(staying.sum()), minimum)
        died.append(_choose(rng, unique[staying], k))
        staying &= ~np.isin(unique, died[-1])
        k = _count(changes.leave_rate, population, int(staying.sum()), minimum)
        away.append(_choose(rng, unique[staying], k))
        staying &= ~np.isin(unique, away[-1])
        movable = (
            staying
            & (pc.not_equal(cd.truth["nhs_number"], "").to_numpy(zero_copy_only=False)[first])
        )
        movable &= ~_bools(cd.truth, "is_mover")[first]
        k = (
            _count(changes.move_rate, population, int(movable.sum()), minimum)
            if len(olds) > 1
            else 0
        )
        chosen = np.sort(rng.choice(np.flatnonzero(movable), k, replace=False)) if k else first[:0]
        dest = (c + rng.integers(1, len(olds), k)) % len(olds) if k else chosen
        moves.append((unique[chosen], first[chosen], dest))
    gone = np.concatenate([aged_out, *died, *away])
    # Movers' rows are taken now, so each council of yesterday can go once today's is made.
    movers = [
        (cd.extract.take(pa.array(first_rows)), cd.truth.take(pa.array(first_rows)))
        for cd, (_, first_rows, _) in zip(olds, moves, strict=True)
    ]

    # 2. Per council: leavers out, corrections, arrivals, births.
    used_nhs, issued_children = yesterday.used_nhs_numbers, yesterday.issued_child_ids
    middle: list[CouncilDay | None] = []
    for c, row_ids in enumerate(ids):
        cd = olds[c]
        olds[c] = None
        code = cd.council.gss_code
        moving_out, _, dest = moves[c]
        for kind, who in (
            ("aged_out", aged_out),
            ("died", np.concatenate(died)),
            ("moved_away", np.concatenate(away)),
        ):
            events.add(np.intersect1d(row_ids, who), code, kind)
        events.add(moving_out, code, "moved_out", A.take(A.strings(codes), dest))
        keep = ~np.isin(row_ids, gone) & ~np.isin(row_ids, moving_out)
        extract, truth = cd.extract.filter(pa.array(keep)), cd.truth.filter(pa.array(keep))
        extract, truth = _correct(rng, changes, extract, truth, code, events)

        pools = _council_pools(_rng(config, _STREAM_COUNCIL + c), cd.council, int(plan.sizes[c]))
        issued_local = cd.issued_local_ids
        parts_e, parts_t = [extract], [truth]
        arriving = [
            (s, np.flatnonzero(moves[s][2] == c), moves[s][0][moves[s][2] == c])
            for s in range(len(olds))
        ]
        for s, rows, who in arriving:
            if len(rows) == 0:
                continue
            e, t = _arrive(rng, movers[s], rows, cd.council, pools, ref, issued_local)
            issued_local += len(rows)
            parts_e.append(e)
            parts_t.append(t)
            events.add(who, code, "moved_in", codes[s])

        population = len(np.unique(row_ids))
        k = _count(changes.birth_rate, population, population + 1, minimum)
        if k:
            e, t, o, used_nhs = _births(
                config,
                plan,
                c,
                rng,
                k,
                used_nhs,
                issued_children,
                issued_local,
                pools,
                ref,
                changes,
            )
            events.add(issued_children + np.arange(1, k + 1), code, "born")
            issued_children += k
            issued_local += k
            parts_e.append(e)
            parts_t.append(t)
            optouts = pa.concat_tables([cd.optouts, o])
        else:
            optouts = cd.optouts
        made = CouncilDay(
            cd.council, pa.concat_tables(parts_e), optouts, pa.concat_tables(parts_t), issued_local
        )
        middle.append(_spill(made, spill, f"{day}-middle") if spill else made)
        del cd, extract, truth, parts_e, parts_t, made

    # 3. New opt-outs (council and national) and new shields, then flags on every council's rows.
    new_council_optouts: list[np.ndarray] = []
    new_national: list[np.ndarray] = []
    shield_rows: list[np.ndarray] = []
    shielded_now: list[np.ndarray] = []
    for cd in middle:
        code = cd.council.gss_code
        truth = cd.truth  # a spilled council reads its file at each access: read it once
        row_ids = _ids(truth)
        unique, first = _first_rows(row_ids)
        population = len(unique)
        candidates = ~_bools(truth, "opted_out_council")[first]
        k = _count(changes.optout_rate, population, int(candidates.sum()), minimum)
        chosen = _choose(rng, np.flatnonzero(candidates), k)
        new_council_optouts.append(unique[chosen])
        events.add(unique[chosen], code, "opted_out_council")
        listed = truth.take(pa.array(first[chosen]))
        has_nhs = pc.not_equal(listed["nhs_number"], "")
        register = pa.table(
            {
                "nhs_number": listed["nhs_number"],
                "local_child_id": pc.if_else(
                    has_nhs, pa.scalar("", A.STRING), listed["local_child_id"]
                ),
            }
        ).select(list(contract.OPTOUT_COLUMNS))
        cd.optouts = pa.concat_tables([cd.optouts, register])

        nhs = pc.not_equal(truth["nhs_number"], "").to_numpy(zero_copy_only=False)
        candidates = (nhs & ~_bools(truth, "opted_out_national"))[first]
        candidates &= ~np.isin(unique, np.concatenate([np.zeros(0, np.int64), *new_national]))
        k = _count(changes.national_optout_rate, population, int(candidates.sum()), minimum)
        chosen = _choose(rng, np.flatnonzero(candidates), k)
        new_national.append(unique[chosen])
        events.add(unique[chosen], code, "opted_out_national")

        shielded = _bools(truth, "shielded")
        candidates = ~shielded[first]
        k = _count(changes.shield_rate, population, int(candidates.sum()), minimum)
        chosen = _choose(rng, np.flatnonzero(candidates), k)
        household = A.concat(
            truth["address"].combine_chunks(),
            "|",
            _column(truth, "postcode"),
            "|",
            _column(truth, "family_name"),
        )
        homes = A.take(household, first[chosen])
        rows = pc.is_in(household, value_set=homes).to_numpy(zero_copy_only=False) & ~shielded
        shield_rows.append(rows)
        shielded_now.append(np.unique(row_ids[rows]))
        events.add(shielded_now[-1], code, "shielded")
        del truth, household

    national_ids = np.concatenate([np.zeros(0, np.int64), *new_national])
    optout_ids = np.concatenate([national_ids, *new_council_optouts])
    shielded_ids = np.concatenate([np.zeros(0, np.int64), *shielded_now])
    national_numbers = []
    councils = []
    for c, (own, rows) in enumerate(zip(new_council_optouts, shield_rows, strict=True)):
        cd = middle[c]
        middle[c] = None
        before = cd.truth
        row_ids = _ids(before)
        truth = _where(before, "opted_out_council", np.isin(row_ids, own), True)
        national = np.isin(row_ids, national_ids)
        truth = _where(truth, "opted_out_national", national, True)
        truth = _where(truth, "opted_out_any", np.isin(row_ids, optout_ids), True)
        truth = _where(truth, "shielded", np.isin(row_ids, shielded_ids), True)
        truth = _set(truth, "row_number", np.arange(1, truth.num_rows + 1, dtype=np.int64))
        extract = _where(cd.extract, "shielded", rows, "Y")
        national_numbers.append(
            _column(truth, "nhs_number").filter(
                pa.array(national & ~_bools(before, "opted_out_national"))
            )
        )
        today_council = CouncilDay(cd.council, extract, cd.optouts, truth, cd.issued_local_ids)
        councils.append(_spill(today_council, spill, day) if spill else today_council)
        del cd, before, truth, extract
    added = pc.unique(pa.concat_arrays([A.strings([]), *national_numbers]))
    register = pa.concat_tables(
        [
            yesterday.national,
            pa.table({"nhs_number": added, "local_child_id": A.repeat("", len(added))}).select(
                list(contract.OPTOUT_COLUMNS)
            ),
        ]
    )
    register = register.take(pc.sort_indices(register, [("nhs_number", "ascending")]))
    if spill is not None:
        for path in spill.glob(f"{day}-middle_*.arrow"):
            path.unlink()
    return PopulationDay(
        config=config,
        changes=changes,
        day=day,
        councils=tuple(councils),
        national=register,
        events=events.table(),
        issued_child_ids=issued_children,
        used_nhs_numbers=used_nhs,
        plan=plan,
    )


def _correct(
    rng: np.random.Generator,
    changes: DailyChanges,
    extract: pa.Table,
    truth: pa.Table,
    code: str,
    events: _Events,
) -> tuple[pa.Table, pa.Table]:
    """Correct every defect of some defective children: truth values in, duplicate rows out."""
    defects = _column(truth, "defects")
    fixable = pc.and_(pc.not_equal(defects, ""), pc.not_equal(defects, "missing_nhs_number"))
    fixable = fixable.to_numpy(zero_copy_only=False)
    row_ids = _ids(truth)
    defective = np.unique(row_ids[fixable])
    k = _count(changes.correction_rate, len(defective), len(defective), changes.min_per_council)
    chosen = _choose(rng, defective, k)
    if not len(chosen):
        return extract, truth
    events.add(chosen, code, "corrected")
    rows = np.isin(row_ids, chosen)
    for name in _CORRECTED_COLUMNS:
        extract = _where(extract, name, rows, _column(truth, name))
    missing = pc.equal(_column(truth, "nhs_number"), "")
    clean = pc.if_else(missing, pa.scalar("missing_nhs_number", A.STRING), pa.scalar("", A.STRING))
    truth = _where(truth, "defects", rows, clean)
    first = np.zeros(len(row_ids), dtype=bool)
    first[_first_rows(row_ids)[1]] = True
    keep = pa.array(~(rows & ~first))
    return extract.filter(keep), truth.filter(keep)


def _arrive(
    rng: np.random.Generator,
    source: tuple[pa.Table, pa.Table],
    rows: np.ndarray,
    council: Council,
    pools: dict,
    ref: np.datetime64,
    issued_local: int,
) -> tuple[pa.Table, pa.Table]:
    """Return extract and truth rows of children arriving from `source` (its rows `rows`).

    `source` is the (extract, truth) rows of the children leaving another council today.

    Each keeps its true identity and gets a new local id, address, school and GP here; the new
    council sends it unshielded (it has not been told), with no notes and no defects.
    """
    m = len(rows)
    old_e, old_t = source[0].take(pa.array(rows)), source[1].take(pa.array(rows))
    address, street = _street_addresses(rng, m, pools)
    postcode = A.take(pools["postcode"], street)
    practice = _practices(rng, m, pools)
    dob = _dates(old_t, "date_of_birth")
    school = _schools(rng, (ref - dob).astype(np.int64), len(pools["urn"]))
    local = _local_ids(council, issued_local + np.arange(m))
    clean = {name: _column(old_t, name) for name in _CORRECTED_COLUMNS}
    extract = {
        **{name: _column(old_e, name) for name in contract.CHILDREN_COLUMNS},
        **clean,
        "local_child_id": local,
        "address": address,
        "postcode": postcode,
        "carer_name": _column(old_t, "carer_name"),
        "carer_phone": _column(old_t, "carer_phone"),
        "school_urn": A.where(school >= 0, A.take(pools["urn"], np.maximum(school, 0)), ""),
        "gp_practice_code": practice,
        "shielded": A.repeat("N", m),
        "notes": A.repeat("", m),
    }
    truth = {
        **{name: _column(old_t, name) for name in TRUTH_SCHEMA.names},
        "council_code": A.repeat(council.gss_code, m),
        "local_child_id": local,
        "address": address,
        "postcode": postcode,
        "note_emails": A.repeat("", m),
        "notes_pii_spans": A.repeat("[]", m),
        "opted_out_council": pa.array(np.zeros(m, dtype=bool)),
        "is_mover": pa.array(np.zeros(m, dtype=bool)),
        "defects": A.repeat("", m),
    }
    return (
        pa.table({name: extract[name] for name in contract.CHILDREN_COLUMNS}),
        pa.Table.from_arrays([truth[name] for name in TRUTH_SCHEMA.names], schema=TRUTH_SCHEMA),
    )


def _births(
    config: PopulationConfig,
    plan: _Plan,
    c: int,
    rng: np.random.Generator,
    k: int,
    used_nhs: int,
    issued_children: int,
    issued_local: int,
    pools: dict,
    ref: np.datetime64,
    changes: DailyChanges,
) -> tuple[pa.Table, pa.Table, pa.Table, int]:
    """Extract, truth and opt-out rows of `k` newborns of council `c`; and the NHS numbers used."""
    missing = round(k * config.missing_nhs_rate)
    with_nhs = k - missing
    numbers = plan.nhs_pool[used_nhs : used_nhs + with_nhs]
    if len(numbers) < with_nhs:
        raise ValueError(
            f"births need {with_nhs:,} more NHS numbers but the population's ranges have only "
            f"{len(numbers):,} left: nhs_range 'extended' (test range and synthetic prefixes), "
            "fewer children, fewer days, or a higher missing_nhs_rate"
        )
    councils = len(plan.councils)
    sizes = np.zeros(councils, dtype=np.int64)
    sizes[c] = k
    missing_counts = np.zeros(councils, dtype=np.int64)
    missing_counts[c] = missing
    nhs_offsets = np.zeros(councils + 1, dtype=np.int64)
    nhs_offsets[c + 1 :] = with_nhs
    id_offsets = np.zeros(councils + 1, dtype=np.int64)
    id_offsets[c] = issued_children
    births = dataclasses.replace(
        plan,
        sizes=sizes,
        missing=missing_counts,
        nhs_offsets=nhs_offsets,
        id_offsets=id_offsets,
        nhs_pool=numbers,
        national=np.zeros(with_nhs, dtype=bool),
    )
    people: Block = _home_children(
        config, births, c, rng, ref, pools, newborn_days=changes.registration_days
    )
    extract, truth, optouts = _render_council(
        config, rng, plan.councils[c], people, pools, ref, first_local=issued_local
    )
    return extract, truth, optouts, used_nhs + with_nhs
