"""Leak audit: look for every raw identifier of the ground truth in everything a run leaves behind.

`collect_artefacts` finds the artefacts (index, Airflow metadata database and task logs, run
summaries, feedback, staging, anything else under the home folder except the folders that
legitimately hold raw extracts); `audit_leaks` searches them for the ground truth's NHS numbers,
UPNs, names, addresses, postcodes, carer phone numbers, e-mail addresses and local child ids, and
optionally runs the Presidio analyzer of `transforms.pii` over their text for personal data that
the ground truth does not list. The report holds counts per artefact and entity type, never a
value, so it can be printed, logged and attached to a ticket.

Matching is by tokens, not by searching for each value: one regular expression per entity type
pulls every candidate shaped like that entity out of an artefact (every 10-digit run, every
postcode-shaped string, every pair of capitalised words ...), normalises it (digits only, no
spaces, case-folded) and looks it up in a set built from the ground truth. The cost is linear in
the artefact's size and does not grow with the number of truth rows.
"""

from __future__ import annotations

import gzip
import os
import re
import sqlite3
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

# Entity types the ground truth is searched for.
NHS_NUMBER = "NHS_NUMBER"
UPN = "UPN"
PERSON_NAME = "PERSON_NAME"
ADDRESS = "ADDRESS"
POSTCODE = "POSTCODE"
PHONE_NUMBER = "PHONE_NUMBER"
EMAIL_ADDRESS = "EMAIL_ADDRESS"
LOCAL_CHILD_ID = "LOCAL_CHILD_ID"
TRUTH_ENTITIES = (
    NHS_NUMBER,
    UPN,
    PERSON_NAME,
    ADDRESS,
    POSTCODE,
    PHONE_NUMBER,
    EMAIL_ADDRESS,
    LOCAL_CHILD_ID,
)

# Home sub-folders that legitimately hold raw extracts; never scanned.
RAW_EXTRACT_FOLDERS = ("landing", "processed", "quarantine")
SQLITE_MAGIC = b"SQLite format 3\x00"
PARQUET_MAGIC = b"PAR1"
GZIP_MAGIC = b"\x1f\x8b"
PRESIDIO_MAX_LINES = 20_000  # distinct lines per artefact given to Presidio
PRESIDIO_LINE_CHARS = 2_000  # longer lines are cut into pieces of this size
MIN_LOCAL_ID_CHARS = 6  # shorter local ids would match ordinary numbers in logs

# --- candidate patterns -------------------------------------------------------------------------
_UPPER = "A-ZÀ-ÖØ-Þ"
_WORD = rf"[{_UPPER}][\w'’-]*"  # a capitalised word (or one in capitals): O'Neill, Smith-Jones
# 10 digits, or 3-3-4 with spaces or hyphens; never part of a longer run of digits.
_NHS_RE = re.compile(r"(?<!\d)(?:\d{10}|\d{3}[ \t-]{1,2}\d{3}[ \t-]{1,2}\d{4})(?!\d)")
_UPN_RE = re.compile(r"(?<![A-Za-z0-9])[A-HJ-NP-RT-Z]\d{11}[0-9A-HJ-NP-RT-Z](?![0-9])")
# Postcode-shaped, upper case, space optional; no word boundary so that values written
# back to back (as in SQLite's record format) are still found.
_POSTCODE_RE = re.compile(r"[A-Z]{1,2}\d[A-Z\d]?[ \t]*\d[A-Z]{2}")
# National (0...) or international (+44 / 0044, maybe "(0)") forms with spaces, hyphens, brackets.
_PHONE_RE = re.compile(
    r"(?<![\d+])(?:(?:\+|00)44[ \t-]?(?:\(0\)[ \t-]?)?|\(?0)"
    r"(\d(?:[ \t)-]{0,2}\d){8,9})(?!\d)"
)
_EMAIL_RE = re.compile(r"([A-Za-z0-9._%+'-]{1,64})@([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)")
# Two capitalised words in a row (overlapping: lookahead): "Given Family", also across a
# delimiter (a CSV row, a table dump), and "Family, Given" in either order around a comma.
_NAME_PAIR_RE = re.compile(rf"(?<![\w'’-])({_WORD})(?=([ \t]*[,;|\t][ \t]*|[ \t]+)({_WORD}))")
_ADDRESS_RE = re.compile(rf"(?<![\w])(\d{{1,4}}[A-Za-z]?)[ \t]+({_WORD}(?:[ \t]+{_WORD}){{0,4}})")
_ID_TOKEN_RE = re.compile(rf"(?<![A-Za-z0-9])[A-Za-z0-9]{{{MIN_LOCAL_ID_CHARS},40}}(?![A-Za-z0-9])")
_SPACES = re.compile(r"\s+")
_POSSESSIVE = re.compile(r"['’]s$")


# --- the ground truth -----------------------------------------------------------------------------
def _column(truth: pd.DataFrame, name: str) -> pd.Series:
    if name not in truth.columns:
        return pd.Series([], dtype="string")
    values = truth[name].astype("string").fillna("").str.strip()
    return values[values.ne("")]


def _name_key(name: str) -> str:
    return _SPACES.sub(" ", name.strip()).casefold()


@dataclass(frozen=True)
class TruthIndex:
    """The ground truth's raw identifiers, normalised, one set per entity type (held in memory).

    Attributes:
        keys: entity type -> normalised values (digits only, no spaces, case-folded).
        email_domains: the e-mail domains, to cut an address out of text written around it.
        local_id_councils: local child id -> the councils whose records carry it.
        rows: how many truth rows the index was built from.
    """

    keys: Mapping[str, frozenset[str]]
    email_domains: frozenset[str]
    local_id_councils: Mapping[str, frozenset[str]]
    rows: int


def build_truth_index(truth: pd.DataFrame) -> TruthIndex:
    """Normalise the ground truth's identifiers into lookup sets.

    Args:
        truth: rows with any of the columns nhs_number, upn, given_name, family_name,
            former_family_name, carer_name, address, postcode, carer_phone, note_emails
            (";"-joined), local_child_id and council_code (`synthetic_data.writer`'s truth file).

    Returns:
        The lookup sets; a missing column gives an empty set.
    """
    keys: dict[str, set[str]] = {entity: set() for entity in TRUTH_ENTITIES}
    keys[NHS_NUMBER] = {re.sub(r"\D", "", v) for v in _column(truth, "nhs_number")}
    keys[NHS_NUMBER] = {v for v in keys[NHS_NUMBER] if len(v) == 10}
    keys[UPN] = set(_column(truth, "upn").str.upper())
    keys[POSTCODE] = set(_column(truth, "postcode").str.upper().str.replace(r"\s+", "", regex=True))

    given = truth.get("given_name", pd.Series("", index=truth.index)).astype("string").fillna("")
    for family_column in ("family_name", "former_family_name"):
        family = truth.get(family_column, pd.Series("", index=truth.index))
        family = family.astype("string").fillna("")
        full = (given.str.strip() + " " + family.str.strip())[given.ne("") & family.ne("")]
        keys[PERSON_NAME].update(_name_key(v) for v in full)
    keys[PERSON_NAME].update(
        _name_key(v) for v in _column(truth, "carer_name") if len(v.split()) >= 2
    )
    # "Flat 10, 62 John Row" is looked for as "62 John Row": the part a street name search finds.
    keys[ADDRESS] = {_name_key(v.rsplit(",", 1)[-1]) for v in _column(truth, "address")}

    for phone in _column(truth, "carer_phone"):
        digits = re.sub(r"\D", "", phone)
        if digits.startswith("0044"):
            digits = "0" + digits[4:]
        elif digits.startswith("44") and phone.lstrip().startswith("+"):
            digits = "0" + digits[2:]
        if len(digits) >= 10:
            keys[PHONE_NUMBER].add(digits)
    for joined in _column(truth, "note_emails"):
        keys[EMAIL_ADDRESS].update(e.strip().lower() for e in joined.split(";") if "@" in e)

    local_councils: dict[str, set[str]] = {}
    if "local_child_id" in truth.columns:
        councils = truth.get("council_code", pd.Series("", index=truth.index)).astype("string")
        for local_id, council in zip(
            truth["local_child_id"].astype("string").fillna(""), councils.fillna(""), strict=True
        ):
            local_id = local_id.strip()
            if len(local_id) >= MIN_LOCAL_ID_CHARS and local_id.isalnum():
                local_councils.setdefault(local_id, set()).add(str(council))
    keys[LOCAL_CHILD_ID] = set(local_councils)
    return TruthIndex(
        keys={entity: frozenset(values) for entity, values in keys.items()},
        email_domains=frozenset(e.rpartition("@")[2] for e in keys[EMAIL_ADDRESS]),
        local_id_councils={k: frozenset(v) for k, v in local_councils.items()},
        rows=len(truth),
    )


# --- candidates: every string in a text shaped like an entity, normalised -----------------------
def _nhs_candidates(text: str) -> Iterator[str]:
    for m in _NHS_RE.finditer(text):
        yield re.sub(r"\D", "", m.group())


def _upn_candidates(text: str) -> Iterator[str]:
    for m in _UPN_RE.finditer(text):
        yield m.group()


def _postcode_candidates(text: str) -> Iterator[str]:
    for m in _POSTCODE_RE.finditer(text):
        compact = m.group().replace(" ", "").replace("\t", "")
        yield compact
        if compact[1].isalpha():  # "CM1 8SG" also holds "M1 8SG" when written back to back
            yield compact[1:]


def _phone_candidates(text: str) -> Iterator[str]:
    for m in _PHONE_RE.finditer(text):
        yield "0" + re.sub(r"\D", "", m.group(1))


def _name_candidates(text: str) -> Iterator[str]:
    for m in _NAME_PAIR_RE.finditer(text):
        first, separator, second = m.group(1), m.group(2), _POSSESSIVE.sub("", m.group(3))
        yield f"{first} {second}".casefold()
        if "," in separator:
            yield f"{second} {first}".casefold()


def _address_candidates(text: str) -> Iterator[str]:
    for m in _ADDRESS_RE.finditer(text):
        words = _SPACES.split(m.group(2))
        number = m.group(1).casefold()
        for n in range(1, len(words) + 1):  # the match may run on into the next words
            yield f"{number} {' '.join(words[:n])}".casefold()


def _id_candidates(text: str) -> Iterator[str]:
    for m in _ID_TOKEN_RE.finditer(text):
        yield m.group()


def _email_matches(text: str, truth: TruthIndex) -> Iterator[str]:
    """Yield each truth e-mail address in text, also when written hard against other text."""
    known = truth.keys[EMAIL_ADDRESS]
    if not known:
        return
    for m in _EMAIL_RE.finditer(text):
        local, domain = m.group(1).lower(), m.group(2).lower()
        if f"{local}@{domain}" in known:
            yield f"{local}@{domain}"
            continue
        # "E08000035rita.simpson@example.netLS6": trim the local part from the left and the
        # domain from the right until a known address appears.
        domains = [domain[:end] for end in range(len(domain), 0, -1)]
        domains = [d for d in domains if d in truth.email_domains]
        hit = next(
            (
                f"{local[start:]}@{d}"
                for d in domains
                for start in range(len(local))
                if f"{local[start:]}@{d}" in known
            ),
            None,
        )
        if hit:
            yield hit


CANDIDATES: dict[str, Callable[[str], Iterator[str]]] = {
    NHS_NUMBER: _nhs_candidates,
    UPN: _upn_candidates,
    PERSON_NAME: _name_candidates,
    ADDRESS: _address_candidates,
    POSTCODE: _postcode_candidates,
    PHONE_NUMBER: _phone_candidates,
    LOCAL_CHILD_ID: _id_candidates,
}


def find_truth_values(
    text: str, truth: TruthIndex, council: str | None = None
) -> dict[str, Counter[str]]:
    """Return the truth values found in text, by entity type, with their occurrence counts.

    Args:
        text: the artefact's text (binary data decoded with replacement characters).
        truth: from `build_truth_index`.
        council: the council whose own outbox the text is in: its own local ids are allowed.

    Returns:
        Entity type -> Counter of matched normalised values. Callers must not print the values.
    """
    found: dict[str, Counter[str]] = {}
    for entity, candidates in CANDIDATES.items():
        known = truth.keys[entity]
        if not known:
            continue
        hits = Counter(c for c in candidates(text) if c in known)
        if entity == LOCAL_CHILD_ID and council is not None:
            hits = Counter(
                {k: n for k, n in hits.items() if council not in truth.local_id_councils[k]}
            )
        if hits:
            found[entity] = hits
    emails = Counter(_email_matches(text, truth))
    if emails:
        found[EMAIL_ADDRESS] = emails
    return found


# --- artefacts ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Artefact:
    """One thing a run left behind, read lazily.

    Attributes:
        name: where it is (a path, "path :: table t"); never a value.
        read: returns the content; called once by `audit_leaks`.
        text: text meant for people (logs, JSON, CSV, table dumps): also given to Presidio.
        council: set for a file in outbox/<council>/: that council's own local ids may appear.
    """

    name: str
    read: Callable[[], bytes] = field(repr=False)
    text: bool = False
    council: str | None = None

    @classmethod
    def from_bytes(cls, name: str, data: bytes | str, **kwargs) -> Artefact:
        """Wrap content already in memory (e.g. a captured `airflow dags test` output)."""
        blob = data.encode("utf-8") if isinstance(data, str) else data
        return cls(name, lambda: blob, **kwargs)


def _cell_text(value: object) -> str:
    if isinstance(value, bytes | bytearray | memoryview):
        blob = bytes(value)
        for decompress in (zlib.decompress, gzip.decompress):
            try:
                blob = decompress(blob)
                break
            except (zlib.error, OSError, EOFError):
                continue
        return blob.decode("utf-8", errors="replace")
    return "" if value is None else str(value)


def _rows_text(rows: Iterable[Iterable[object]]) -> bytes:
    # " | " between cells, newline between rows: every value stands apart from its neighbours,
    # and no pattern that allows a space or tab between digits joins two numeric cells.
    return "\n".join(" | ".join(_cell_text(v) for v in row) for row in rows).encode("utf-8")


def _sqlite_table_reader(path: Path, table: str) -> Callable[[], bytes]:
    def read() -> bytes:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            quoted = '"' + table.replace('"', '""') + '"'
            return _rows_text(conn.execute(f"SELECT * FROM {quoted}"))
        finally:
            conn.close()

    return read


def sqlite_artefacts(path: Path, label: str | None = None) -> list[Artefact]:
    """Every table of a SQLite file dumped as text, plus the file's raw bytes (deleted rows).

    Raises:
        sqlite3.Error: when the file cannot be opened as a database.
    """
    label = label or str(path)
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
    finally:
        conn.close()
    made = [Artefact(f"{label} :: table {t}", _sqlite_table_reader(path, t), True) for t in tables]
    made.append(Artefact(f"{label} (raw bytes)", path.read_bytes))
    for suffix in ("-wal", "-journal"):
        side = path.with_name(path.name + suffix)
        if side.is_file():
            made.append(Artefact(f"{label}{suffix} (raw bytes)", side.read_bytes))
    return made


def database_artefacts(url: str) -> list[Artefact]:
    """Every table of the database at a SQLAlchemy URL (default schema) dumped as text.

    A SQLite URL is read as a file (tables and raw bytes); other databases through SQLAlchemy.
    """
    import sqlalchemy as sa

    parsed = sa.make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if not parsed.database or parsed.database == ":memory:":
            return []
        return sqlite_artefacts(Path(parsed.database), f"index {parsed.database}")
    label = f"index {parsed.render_as_string(hide_password=True)}"
    engine = sa.create_engine(url)
    try:
        metadata = sa.MetaData()
        metadata.reflect(engine)
        tables = list(metadata.tables.values())
        with engine.connect() as conn:
            dumps = {t.name: _rows_text(conn.execute(sa.select(t))) for t in tables}
    finally:
        engine.dispose()
    return [Artefact.from_bytes(f"{label} :: table {n}", d, text=True) for n, d in dumps.items()]


def _parquet_reader(path: Path) -> Callable[[], bytes]:
    def read() -> bytes:
        import pyarrow.parquet as pq

        table = pq.read_table(path)
        columns = [c.cast("string").to_pylist() for c in table.columns]
        return _rows_text(zip(*columns, strict=True)) if columns else b""

    return read


def file_artefacts(path: Path, label: str, council: str | None = None) -> list[Artefact]:
    """Return the artefacts of one file: SQLite tables, Parquet rows, gzip content or bytes."""
    with open(path, "rb") as handle:
        head = handle.read(8192)
    if head.startswith(SQLITE_MAGIC):
        return sqlite_artefacts(path, label)
    if head.startswith(PARQUET_MAGIC):
        return [Artefact(f"{label} (rows)", _parquet_reader(path), True, council)]
    if head.startswith(GZIP_MAGIC):
        return [Artefact(label, lambda: gzip.decompress(path.read_bytes()), True, council)]
    try:
        head.decode("utf-8")
        is_text = b"\x00" not in head
    except UnicodeDecodeError as exc:  # a multi-byte character cut at 8192 is still text
        is_text = exc.start > len(head) - 4 and b"\x00" not in head
    return [Artefact(label, path.read_bytes, is_text, council)]


def _walk_files(root: Path, skip: Callable[[Path], bool]) -> Iterator[Path]:
    for folder, dirs, files in os.walk(root):  # symlinks are not followed
        here = Path(folder)
        dirs[:] = sorted(d for d in dirs if not skip(here / d))
        for name in sorted(files):
            path = here / name
            if path.is_file() and not path.is_symlink() and not skip(path):
                yield path


def collect_artefacts(
    home: Path | None,
    airflow_home: Path | None,
    index_url: str | None,
    extra: Iterable[Path] = (),
    exclude: Iterable[Path] = (),
) -> list[Artefact]:
    """Find every artefact a run leaves behind.

    Args:
        home: the REGISTRY_SYNC_HOME: every file under it except landing/, processed/ and
            quarantine/ (raw extracts by design) and `exclude`; files in outbox/<council>/
            are marked as that council's.
        airflow_home: AIRFLOW_HOME: airflow.db (every table, and its raw bytes), logs/ and
            top-level *.log files (never airflow.cfg or password files).
        index_url: the index; a SQLite file is read directly, PostgreSQL through SQLAlchemy.
        extra: more files or folders (e.g. bench/results), scanned whole.
        exclude: paths never scanned, e.g. the ground truth folder when it sits in home.

    Returns:
        The artefacts, each file once even when reachable two ways.

    Raises:
        sqlalchemy.exc.SQLAlchemyError: when the index database cannot be read.
    """
    excluded = {Path(p).resolve() for p in exclude}
    seen: set[Path] = set()
    artefacts: list[Artefact] = []

    def add_file(path: Path, label: str, council: str | None = None) -> None:
        resolved = path.resolve()
        if resolved in seen:
            return
        seen.add(resolved)
        if (
            resolved.name.endswith(("-wal", "-journal"))
            and resolved.with_name(resolved.name.rsplit("-", 1)[0]).is_file()
        ):
            return  # read with its database
        artefacts.extend(file_artefacts(path, label, council))

    if index_url:
        import sqlalchemy as sa

        parsed = sa.make_url(index_url)
        if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
            db = Path(parsed.database)
            if db.is_file():
                seen.add(db.resolve())
                for side in ("-wal", "-journal"):
                    seen.add(db.with_name(db.name + side).resolve())
                artefacts.extend(sqlite_artefacts(db, f"index {db}"))
        else:
            artefacts.extend(database_artefacts(index_url))

    if home is not None and Path(home).is_dir():
        home = Path(home)
        raw = {(home / f).resolve() for f in RAW_EXTRACT_FOLDERS}

        def skip(p: Path) -> bool:
            resolved = p.resolve()
            return resolved in raw or resolved in excluded

        for path in _walk_files(home, skip):
            relative = path.relative_to(home)
            parts = relative.parts
            council = parts[1] if len(parts) > 2 and parts[0] == "outbox" else None
            add_file(path, f"home/{relative.as_posix()}", council)

    if airflow_home is not None and Path(airflow_home).is_dir():
        airflow_home = Path(airflow_home)
        db = airflow_home / "airflow.db"
        if db.is_file():
            add_file(db, "airflow home/airflow.db")
        for path in sorted(airflow_home.glob("*.log")):
            add_file(path, f"airflow home/{path.name}")
        logs = airflow_home / "logs"
        if logs.is_dir():
            for path in _walk_files(logs, lambda p: p.resolve() in excluded):
                add_file(path, f"airflow home/{path.relative_to(airflow_home).as_posix()}")

    for item in extra:
        item = Path(item)
        if item.is_dir():
            for path in _walk_files(item, lambda p: p.resolve() in excluded):
                add_file(path, str(path))
        elif item.is_file():
            add_file(item, str(item))
        else:
            raise FileNotFoundError(f"--extra {item}: no such file or folder")
    return artefacts


# --- the audit ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Finding:
    """How often one entity type turned up in one artefact: counts only, never a value."""

    artefact: str
    entity_type: str
    occurrences: int
    distinct: int  # distinct truth values (leaks) or distinct lines (Presidio suspects)


@dataclass(frozen=True)
class LeakReport:
    """What the audit found.

    Attributes:
        artefacts: how many artefacts were read.
        bytes_scanned: their total size.
        truth_rows: rows of the ground truth searched for.
        leaks: ground-truth values found, per artefact and entity type.
        suspects: Presidio findings in text artefacts (personal data maybe not in the truth;
            dates, file names and vocabulary can be false positives): to review, not a failure.
        errors: artefacts that could not be read, with the exception type (an audit failure).
        sampled: text artefacts with more distinct lines than Presidio was given.
    """

    artefacts: int
    bytes_scanned: int
    truth_rows: int
    leaks: tuple[Finding, ...]
    suspects: tuple[Finding, ...] = ()
    errors: tuple[tuple[str, str], ...] = ()
    sampled: tuple[str, ...] = ()

    @property
    def leak_count(self) -> int:
        """Return the number of truth values found, occurrences summed over artefacts."""
        return sum(f.occurrences for f in self.leaks)

    @property
    def clean(self) -> bool:
        """Return True when no truth value was found and every artefact could be read."""
        return not self.leaks and not self.errors

    def by_entity(self) -> dict[str, int]:
        """Return leak occurrences summed per entity type."""
        totals: Counter[str] = Counter()
        for f in self.leaks:
            totals[f.entity_type] += f.occurrences
        return dict(sorted(totals.items()))

    def format(self) -> str:
        """Return the report as text: counts and artefact names only, never a value."""
        lines = [
            f"leak audit: {self.artefacts} artefacts, {self.bytes_scanned:,} bytes, "
            f"ground truth of {self.truth_rows:,} rows"
        ]

        def table(findings: tuple[Finding, ...], unit: str) -> list[str]:
            width = max(len(f.artefact) for f in findings)
            out = [f"  {'artefact'.ljust(width)}  {'entity':<15} {'occurrences':>11} {unit:>9}"]
            out += [
                f"  {f.artefact.ljust(width)}  {f.entity_type:<15} {f.occurrences:>11} "
                f"{f.distinct:>9}"
                for f in findings
            ]
            return out

        if self.leaks:
            totals = ", ".join(f"{e} {n}" for e, n in self.by_entity().items())
            lines.append(
                f"LEAKS: {self.leak_count} occurrence(s) of ground-truth values in "
                f"{len({f.artefact for f in self.leaks})} artefact(s): {totals}"
            )
            lines += table(self.leaks, "distinct")
        else:
            lines.append("no ground-truth value found in any artefact")
        for name, problem in self.errors:
            lines.append(f"UNREADABLE: {name}: {problem} (the audit cannot vouch for it)")
        if self.suspects:
            lines.append(
                "possible personal data found by Presidio (not necessarily in the ground "
                "truth; review these artefacts):"
            )
            lines += table(self.suspects, "lines")
        for name in self.sampled:
            lines.append(
                f"note: Presidio read the first {PRESIDIO_MAX_LINES:,} distinct lines of {name}"
            )
        return "\n".join(lines)


def _text_lines(text: str) -> list[str]:
    distinct: dict[str, None] = {}
    for line in text.splitlines():
        line = line.strip()
        for start in range(0, len(line), PRESIDIO_LINE_CHARS):
            distinct.setdefault(line[start : start + PRESIDIO_LINE_CHARS], None)
    return list(distinct)


def _presidio_findings(name: str, text: str) -> tuple[list[Finding], bool]:
    from transforms.pii import analyze_texts, build_analyzer, redact_text

    lines = _text_lines(text)
    sampled = len(lines) > PRESIDIO_MAX_LINES
    lines = lines[:PRESIDIO_MAX_LINES]
    occurrences: Counter[str] = Counter()
    line_counts: Counter[str] = Counter()
    for line, results in zip(lines, analyze_texts(build_analyzer(), lines), strict=True):
        if not results:
            continue
        entity_types = redact_text(line, results)[1]  # overlaps resolved as redaction would
        occurrences.update(entity_types)
        line_counts.update(set(entity_types))
    findings = [Finding(name, e, n, line_counts[e]) for e, n in sorted(occurrences.items())]
    return findings, sampled


def audit_leaks(
    artefacts: Iterable[Artefact],
    truth: pd.DataFrame | TruthIndex,
    *,
    presidio: bool = True,
) -> LeakReport:
    """Search every artefact for the ground truth's raw identifiers.

    Args:
        artefacts: from `collect_artefacts`, `Artefact.from_bytes` or both.
        truth: the ground truth frame (see `build_truth_index`) or an index built from it.
        presidio: also run the Presidio analyzer over text artefacts (suspects, not leaks).

    Returns:
        Counts per artefact and entity type; no value of the truth or of any artefact.
    """
    index = truth if isinstance(truth, TruthIndex) else build_truth_index(truth)
    leaks: list[Finding] = []
    suspects: list[Finding] = []
    errors: list[tuple[str, str]] = []
    sampled: list[str] = []
    count = size = 0
    for artefact in artefacts:
        try:
            blob = artefact.read()
        except Exception as exc:  # any failure to read is reported, not raised
            # The exception's type only: its message could quote the content.
            errors.append((artefact.name, type(exc).__name__))
            continue
        count += 1
        size += len(blob)
        text = blob.decode("utf-8", errors="replace")
        for entity, hits in find_truth_values(text, index, artefact.council).items():
            leaks.append(Finding(artefact.name, entity, sum(hits.values()), len(hits)))
        if presidio and artefact.text and text.strip():
            found, cut = _presidio_findings(artefact.name, text)
            suspects += found
            if cut:
                sampled.append(artefact.name)
    return LeakReport(
        artefacts=count,
        bytes_scanned=size,
        truth_rows=index.rows,
        leaks=tuple(leaks),
        suspects=tuple(suspects),
        errors=tuple(errors),
        sampled=tuple(sampled),
    )


def read_truth(path: Path) -> pd.DataFrame:
    """Read the ground truth: a Parquet file, or a folder of them.

    A folder holds day 0's children.parquet and, after `synth --days`, one children_<date>.parquet
    per following day (newborns, movers' new addresses); all of them are read.

    Raises:
        FileNotFoundError: when there is no truth file there.
    """
    path = Path(path)
    targets = (
        sorted([path / "children.parquet", *path.glob("children_*.parquet")])
        if path.is_dir()
        else [path]
    )
    targets = [t for t in targets if t.is_file()]
    if not targets:
        raise FileNotFoundError(f"no ground truth at {path}: pass the folder `synth --truth` wrote")
    return pd.concat([pd.read_parquet(t) for t in targets], ignore_index=True)


__all__ = [
    "TRUTH_ENTITIES",
    "Artefact",
    "Finding",
    "LeakReport",
    "TruthIndex",
    "audit_leaks",
    "build_truth_index",
    "collect_artefacts",
    "database_artefacts",
    "file_artefacts",
    "find_truth_values",
    "read_truth",
    "sqlite_artefacts",
]
