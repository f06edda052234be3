r"""Write a synthetic population as councils would drop it: extracts, opt-out registers, manifests.

Layout (extract contract v1), with the reference date 2026-11-25:

    landing/<GSS code>/children_20261125_0001.csv (+ .manifest.json)
    landing/<GSS code>/optout_20261125_0001.csv   (+ .manifest.json)
    landing/national/optout_20261125_0001.csv     (+ .manifest.json)
    truth_dir/children.parquet                    ground truth, never inside landing, marked
                                                  synthetic in its metadata (SYNTHETIC_MARK)

Later days (`write_days`) add the next snapshot of every file, sequence + 1, named from that day
(children_20261126_0002.csv ...), and their truth beside day 0's: children_20261126.parquet and
events_20261126.parquet (who was born, died, moved, was corrected, opted out or was shielded).

CSV is UTF-8, comma-separated, with a header, minimal quoting (as Python's csv.QUOTE_MINIMAL) and
"\\n" line endings. Each manifest is written after its extract is complete.
"""

from __future__ import annotations

import datetime
import hashlib
import os
import tempfile
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from synthetic_data import _arrow as A
from synthetic_data.councils import Council
from synthetic_data.daily import DailyChanges, PopulationDay, first_day, next_day
from synthetic_data.population import (
    TRUTH_SCHEMA,
    CouncilBatch,
    PopulationConfig,
    generate_population,
    national_optouts_table,
)
from transforms import contract

TRUTH_FILE_NAME = "children.parquet"
# In every truth and events file's Parquet metadata: whoever finds the file knows what it holds.
SYNTHETIC_MARK = {
    b"synthetic": b"true: every row is a synthetic child made by synthetic_data, not a real person"
}
_CSV_CHUNK_ROWS = 65_536  # rows encoded at a time: bounds memory and keeps Arrow offsets 32-bit
_COMMA, _NEWLINE, _EMPTY = (pa.scalar(v, A.STRING) for v in (",", "\n", ""))
_QUOTE_TRIGGERS = (",", '"', "\n", "\r")  # a value holding any of these is quoted


@dataclass(frozen=True)
class CouncilCounts:
    """What one council's files hold."""

    council_code: str
    council_name: str
    rows: int  # extract data rows, duplicates included
    children: int  # distinct children in the extract
    optouts: int  # rows of the council's opt-out register
    shielded: int  # rows of shielded children (truth), flagged by the council or not
    movers: int  # rows of children who also appear in another council's extract
    defects: int  # rows with at least one defect

    @classmethod
    def from_batch(cls, batch: CouncilBatch) -> CouncilCounts:
        """Count a generated council's rows, opt-outs, shielded children, movers and defects."""
        return cls.from_tables(batch.council, *batch.tables)

    @classmethod
    def from_tables(
        cls, council: Council, extract: pa.Table, optouts: pa.Table, truth: pa.Table
    ) -> CouncilCounts:
        """Count one council's extract, opt-out register and truth (see `from_batch`)."""
        return cls(
            council_code=council.gss_code,
            council_name=council.name,
            rows=extract.num_rows,
            children=pc.count_distinct(truth["true_child_id"]).as_py(),
            optouts=optouts.num_rows,
            shielded=_count_true(truth["shielded"]),
            movers=_count_true(truth["is_mover"]),
            defects=_count_true(pc.not_equal(truth["defects"], "")),
        )


def _count_true(values: pa.ChunkedArray | pa.Array) -> int:
    return int(pc.sum(pc.cast(values, pa.int64())).as_py() or 0)


@dataclass(frozen=True)
class SynthSummary:
    """What `write_population` wrote: counts per council, the national register and the paths."""

    councils: tuple[CouncilCounts, ...]
    national_optouts: int
    landing: Path
    truth_path: Path
    reference_date: datetime.date | None = None  # the day the files are named from
    sequence: int = 1
    events: Mapping[str, int] = field(default_factory=dict)  # kind: children, for later days

    @property
    def rows(self) -> int:
        """Return the number of extract rows across all councils."""
        return sum(c.rows for c in self.councils)

    def to_table(self) -> str:
        """Return the counts as a small fixed-width text table, one line per council."""
        header = ("council", "name", "rows", "children", "optouts", "shielded", "movers", "defects")
        lines = [
            (c.council_code, c.council_name, *(getattr(c, f) for f in header[2:]))
            for c in self.councils
        ]
        total = tuple(sum(getattr(c, f) for c in self.councils) for f in header[2:])
        lines.append(("total", "", *total))
        lines.append(("national", "opt-out register", "", "", self.national_optouts, "", "", ""))
        cells = [tuple(str(v) for v in line) for line in [header, *lines]]
        widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
        return (
            "\n".join(
                "  ".join(
                    v.ljust(w) if i < 2 else v.rjust(w)
                    for i, (v, w) in enumerate(zip(row, widths, strict=True))
                ).rstrip()
                for row in cells
            )
            + self._events_line()
        )

    def _events_line(self) -> str:
        if not self.events:
            return ""
        return "\nchanges since the day before: " + ", ".join(
            f"{kind} {count}" for kind, count in self.events.items()
        )

    def __str__(self) -> str:
        return self.to_table()


def csv_chunks(table: pa.Table | pd.DataFrame) -> Iterator[bytes | memoryview]:
    """Yield the CSV encoding of `table` (header first) in pieces, without a Python loop per row.

    Every column must hold strings with no nulls. Quoting follows Python's csv.QUOTE_MINIMAL: a
    value is quoted only when it holds a comma, a double quote or a line break, and inner double
    quotes are doubled. (A bare carriage return is quoted too; Python 3.11 leaves it bare.)
    """
    if isinstance(table, pd.DataFrame):
        table = pa.Table.from_pandas(table, preserve_index=False)
    yield (",".join(_quote_text(name) for name in table.column_names) + "\n").encode("utf-8")
    for start in range(0, table.num_rows, _CSV_CHUNK_ROWS):
        part = table.slice(start, _CSV_CHUNK_ROWS).combine_chunks()
        columns = [_quote(part.column(i).combine_chunks()) for i in range(part.num_columns)]
        lines = pc.binary_join_element_wise(*columns, _COMMA)
        yield _string_bytes(pc.binary_join_element_wise(lines, _NEWLINE, _EMPTY))


def _quote_text(value: str) -> str:
    if any(ch in value for ch in ',"\r\n'):
        return '"' + value.replace('"', '""') + '"'
    return value


def _quote(column: pa.Array) -> pa.Array:
    if column.null_count:
        raise ValueError("CSV columns must not hold nulls; write blanks as empty strings")
    column = column.cast(A.STRING)
    needs = pc.match_substring(column, _QUOTE_TRIGGERS[0])
    for trigger in _QUOTE_TRIGGERS[1:]:  # plain searches: several times faster than one regex
        needs = pc.or_(needs, pc.match_substring(column, trigger))
    if not pc.any(needs).as_py():
        return column
    quoted = A.concat('"', pc.replace_substring(column, '"', '""'), '"')
    return pc.if_else(needs, quoted, column)


def _string_bytes(values: pa.Array) -> memoryview:
    """Return the concatenated UTF-8 bytes of a string array without copying them."""
    offsets = values.buffers()[1]
    data = values.buffers()[2]
    width = 8 if pa.types.is_large_string(values.type) else 4
    first = int.from_bytes(
        memoryview(offsets)[values.offset * width : (values.offset + 1) * width], "little"
    )
    end_at = (values.offset + len(values)) * width
    last = int.from_bytes(memoryview(offsets)[end_at : end_at + width], "little")
    return memoryview(data)[first:last] if data is not None else memoryview(b"")


def encode_csv(table: pa.Table | pd.DataFrame) -> bytes:
    """Return the whole CSV encoding of `table` as bytes (see `csv_chunks`)."""
    return b"".join(bytes(chunk) for chunk in csv_chunks(table))


def write_extract(
    table: pa.Table | pd.DataFrame,
    folder: Path,
    *,
    council_code: str,
    file_kind: str,
    created_at: str,
    extract_kind: str = "snapshot",
    sequence: int = 1,
) -> contract.Manifest:
    """Write one extract as CSV, then its manifest beside it.

    Args:
        table: the rows, string columns in the contract's order.
        folder: the council's landing folder (created if missing).
        council_code: GSS code, or "national" for the national opt-out register.
        file_kind: "children" or "optout".
        created_at: ISO 8601 UTC, e.g. "2026-11-25T06:00:00Z"; it names the file.
        extract_kind: "snapshot" or "delta".
        sequence: the extract's number in this council's sequence.

    Returns:
        The manifest written.
    """
    folder.mkdir(parents=True, exist_ok=True)
    name = contract.extract_file_name(file_kind, created_at, sequence)
    digest = hashlib.sha256()
    with open(folder / name, "wb") as out:
        for chunk in csv_chunks(table):
            digest.update(chunk)
            out.write(chunk)
    manifest = contract.Manifest(
        schema_version=contract.SCHEMA_VERSION,
        council_code=council_code,
        file_kind=file_kind,
        extract_kind=extract_kind,
        sequence=sequence,
        created_at=created_at,
        file_name=name,
        row_count=table.num_rows if isinstance(table, pa.Table) else len(table),
        sha256=digest.hexdigest(),
    )
    # The manifest is what makes the extract visible, so it appears whole or not at all.
    manifest_path = folder / contract.manifest_path_for(name)
    partial = manifest_path.with_name(manifest_path.name + ".partial")
    partial.write_bytes(manifest.to_json().encode("utf-8"))
    os.replace(partial, manifest_path)
    return manifest


def _check_truth_outside_landing(landing: Path, truth_dir: Path) -> None:
    landing_abs, truth_abs = landing.resolve(), truth_dir.resolve()
    if truth_abs == landing_abs or landing_abs in truth_abs.parents:
        raise ValueError(
            f"truth_dir {truth_dir} is inside landing {landing}: ground truth must never sit "
            "where the pipeline picks up extracts; choose a folder outside landing"
        )


def _write_council(
    council: Council,
    tables: tuple[pa.Table, pa.Table, pa.Table],
    landing: Path,
    created_at: str,
    sequence: int,
    truth_writer: pq.ParquetWriter,
) -> None:
    extract, optouts, truth = tables
    folder = landing / council.gss_code
    for file_kind, table in (("children", extract), ("optout", optouts)):
        write_extract(
            table,
            folder,
            council_code=council.gss_code,
            file_kind=file_kind,
            created_at=created_at,
            sequence=sequence,
        )
    truth_writer.write_table(truth)


def truth_file_name(day: datetime.date, day_number: int) -> str:
    """Return a day's truth file name: children.parquet, later children_YYYYMMDD.parquet."""
    return TRUTH_FILE_NAME if day_number == 0 else f"children_{day:%Y%m%d}.parquet"


def events_file_name(day: datetime.date) -> str:
    """Return the events file of a later day, e.g. events_20261126.parquet."""
    return f"events_{day:%Y%m%d}.parquet"


def write_population(
    config: PopulationConfig,
    landing: Path,
    truth_dir: Path,
    progress: Callable[[CouncilCounts], None] | None = None,
) -> SynthSummary:
    """Generate a population and write every council's files, the national register and the truth.

    Councils are generated, written and released one at a time; the ground truth is appended to
    one Parquet file as each council is done.

    Args:
        config: the population to write; the same config writes byte-identical files.
        landing: the landing zone root; council folders are created inside it.
        truth_dir: where `children.parquet` goes; must not be inside `landing`.
        progress: called with each council's counts once the council is generated.

    Returns:
        The counts of what was written.

    Raises:
        ValueError: when `truth_dir` is inside `landing`.
    """
    landing, truth_dir = Path(landing), Path(truth_dir)
    _check_truth_outside_landing(landing, truth_dir)
    truth_dir.mkdir(parents=True, exist_ok=True)
    created_at = f"{config.reference_date.isoformat()}T06:00:00Z"
    truth_path = truth_dir / TRUTH_FILE_NAME
    counts = []
    # One thread writes council c while the caller's thread generates council c + 1; Arrow and
    # numpy release the GIL, so two cores are used. At most two councils are held in memory.
    with (
        pq.ParquetWriter(truth_path, TRUTH_SCHEMA.with_metadata(SYNTHETIC_MARK)) as truth_writer,
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="synth-writer") as pool,
    ):
        writing: Future | None = None
        for batch in generate_population(config):
            if writing is not None:
                writing.result()
            writing = pool.submit(
                _write_council, batch.council, batch.tables, landing, created_at, 1, truth_writer
            )
            counts.append(CouncilCounts.from_batch(batch))
            if progress is not None:
                progress(counts[-1])
        if writing is not None:
            writing.result()
    national = national_optouts_table(config)
    write_extract(
        national,
        landing / contract.NATIONAL_FOLDER,
        council_code=contract.NATIONAL_FOLDER,
        file_kind="optout",
        created_at=created_at,
    )
    return SynthSummary(
        councils=tuple(counts),
        national_optouts=national.num_rows,
        landing=landing,
        truth_path=truth_path,
        reference_date=config.reference_date,
    )


def write_day(
    day: PopulationDay,
    landing: Path,
    truth_dir: Path,
    progress: Callable[[CouncilCounts], None] | None = None,
) -> SynthSummary:
    """Write one day of a population: every council's next snapshot, the registers and the truth.

    Files are named from the day's date at 06:00Z with sequence `day.sequence`; day 0 writes the
    same bytes as `write_population`. A later day's truth is `children_YYYYMMDD.parquet`, and what
    changed is `events_YYYYMMDD.parquet`, both in `truth_dir`.

    Args:
        day: the population on that day (`first_day`, `next_day`).
        landing: the landing zone root.
        truth_dir: where the truth goes; must not be inside `landing`.
        progress: called with each council's counts once it is written.

    Returns:
        The counts of what was written.

    Raises:
        ValueError: when `truth_dir` is inside `landing`.
    """
    landing, truth_dir = Path(landing), Path(truth_dir)
    _check_truth_outside_landing(landing, truth_dir)
    truth_dir.mkdir(parents=True, exist_ok=True)
    truth_path = truth_dir / truth_file_name(day.date, day.day)
    counts = []
    with pq.ParquetWriter(truth_path, TRUTH_SCHEMA.with_metadata(SYNTHETIC_MARK)) as truth_writer:
        for cd in day.councils:
            tables = (cd.extract, cd.optouts, cd.truth)
            _write_council(cd.council, tables, landing, day.created_at, day.sequence, truth_writer)
            counts.append(CouncilCounts.from_tables(cd.council, *tables))
            if progress is not None:
                progress(counts[-1])
    write_extract(
        day.national,
        landing / contract.NATIONAL_FOLDER,
        council_code=contract.NATIONAL_FOLDER,
        file_kind="optout",
        created_at=day.created_at,
        sequence=day.sequence,
    )
    if day.day:
        events = day.events.replace_schema_metadata(SYNTHETIC_MARK)
        pq.write_table(events, truth_dir / events_file_name(day.date))
    return SynthSummary(
        councils=tuple(counts),
        national_optouts=day.national.num_rows,
        landing=landing,
        truth_path=truth_path,
        reference_date=day.date,
        sequence=day.sequence,
        events=day.event_counts(),
    )


def write_days(
    config: PopulationConfig,
    days: int,
    landing: Path,
    truth_dir: Path,
    changes: DailyChanges | None = None,
    progress: Callable[[CouncilCounts], None] | None = None,
) -> list[SynthSummary]:
    """Write day 0 and `days` following days into the same landing zone, as rising sequences.

    The pipeline loads them in sequence order, so all days may sit in the drop zone at once. With
    `days` 0 this is `write_population`; otherwise each day's councils wait in Arrow files in a
    temporary folder inside `truth_dir` (removed at the end), so either way about one council is
    in memory at a time, whatever the population's size.

    Args:
        config: the population on day 0.
        days: how many days after day 0 to write.
        landing: the landing zone root.
        truth_dir: where the truth files go; must not be inside `landing`.
        changes: what happens each day (default `DailyChanges()`).
        progress: called with each council's counts once it is written, day after day.

    Returns:
        One summary per day, day 0 first.

    Raises:
        ValueError: when `days` is negative or `truth_dir` is inside `landing`.
    """
    if days < 0:
        raise ValueError(f"days must be 0 or more, not {days}")
    if days == 0:
        return [write_population(config, landing, truth_dir, progress)]
    _check_truth_outside_landing(Path(landing), Path(truth_dir))
    Path(truth_dir).mkdir(parents=True, exist_ok=True)
    # Each day's councils wait in Arrow files beside the truth (never in landing), one council
    # in memory at a time; the folder goes when the days are written.
    with tempfile.TemporaryDirectory(prefix=".days-", dir=truth_dir) as folder:
        spill = Path(folder)
        state = first_day(config, changes, spill=spill)
        summaries = [write_day(state, landing, truth_dir, progress)]
        for _ in range(days):
            state = next_day(state, release=True, spill=spill)  # yesterday is written
            summaries.append(write_day(state, landing, truth_dir, progress))
        del state
    return summaries
