"""Load: apply staged, minimised rows to the central index, one SQLAlchemy transaction a file.

The index is derived, not accumulated: each council's contribution is kept as it last sent it
(`council_record`), and the one row per child in `child_index` is recomputed from the
contributions, the sticky shields and the opt-outs. The same set of files therefore gives the
same index whatever order they arrive in, and loading a file twice changes nothing.
"""

from __future__ import annotations

import json
import operator
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from itertools import chain

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from transforms.changes import digests_in, sorted_unique
from transforms.minimise import KEY_COLUMNS
from transforms.policy import Policy
from transforms.pseudonymise import KIND_LOCAL
from transforms.suppress import remove_opted_out, strip_shielded

INDEX_TABLES = ("child_index", "council_record", "shield", "optout", "archive")
AUDIT_TABLES = ("file_ledger", "audit_event", "access_log")
KEY_STATE_ID = 1  # the one row of `key_state`
_CHUNK = 5000
# SQLite's page cache per connection, in KiB (its default is 2 MiB). A load's rows land at
# random places in million-row tables and their indexes; with a small cache the same pages are
# read again and again from the operating system.
SQLITE_CACHE_KIB = 256 * 1024
# Pages read through a memory map instead of a read call each: a worker's fresh connection
# reads a few thousand scattered pages per file (its change plan and duplicate check), and
# measured here that takes 35-45% less CPU mapped. Writes still go through the journal.
SQLITE_MMAP_BYTES = 1024**3
# Columns an upsert leaves alone, so their indexes are not rewritten for every replaced row: a
# pseudonym's kind is fixed by the pseudonym itself (the index counting a council's
# council-scoped pseudonyms), and a child's archive month changes only when a birth date is
# corrected (the retention index): it is updated afterwards, where it differs.
_FIXED_ON_CONFLICT = frozenset({"pseudonym_kind"})
_RARELY_CHANGED = ("archive_on",)


def _executemany(conn: Connection, stmt: sa.sql.Executable, rows: list[dict]) -> None:
    """Run `stmt` once per row of plain Python values, through the DB-API cursor.

    SQLAlchemy builds every row's parameters in Python (about 10 us a row, on the critical path
    of a re-sync's loads); the statement is compiled once here and the driver gets the rows as
    they are (no column of the index needs a bind processor: text, integers, booleans, None).
    """
    compiled = stmt.compile(dialect=conn.dialect, column_keys=list(rows[0]))
    if compiled.positional:
        names = compiled.positiontup or []
        pick = operator.itemgetter(*names)
        params: list = [pick(row) for row in rows] if len(names) > 1 else [(pick(r),) for r in rows]
    else:
        params = rows
    cursor = conn.connection.driver_connection.cursor()
    try:
        cursor.executemany(str(compiled), params)
    finally:
        cursor.close()


def _marker(conn: Connection) -> str:
    """Return the DB-API parameter marker of the connection's driver (sqlite3: ?, psycopg: %s)."""
    return "?" if conn.dialect.name == "sqlite" else "%s"


def _rows_in(conn: Connection, select: str, values: Sequence, before: Sequence = ()) -> list[tuple]:
    """Run `select`, which ends in "IN", over `values` in chunks, through the DB-API cursor.

    `before`: the parameters of markers in `select` itself. A plain cursor, because SQLAlchemy
    renders each of thousands of IN values again on every call, and a re-sync asks such
    questions of every changed child.
    """
    marker = _marker(conn)
    cursor = conn.connection.driver_connection.cursor()
    found: list[tuple] = []
    try:
        for start in range(0, len(values), _CHUNK):
            part = list(values[start : start + _CHUNK])
            cursor.execute(f"{select} ({', '.join([marker] * len(part))})", [*before, *part])
            found += cursor.fetchall()
    finally:
        cursor.close()
    return found


def _dialect_insert(conn: Connection, table: sa.Table):
    """Return an INSERT into `table` that can take ON CONFLICT, in the connection's dialect."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    return dialect_insert(table)


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA cache_size = -{SQLITE_CACHE_KIB}")
    cursor.execute(f"PRAGMA mmap_size = {SQLITE_MMAP_BYTES}")
    cursor.close()


def _field_type(coarsen: str, source: str) -> sa.types.TypeEngine:
    if coarsen == "year":
        return sa.Integer()
    if coarsen == "any_sensitive_service" or source in ("care_leaver", "shielded"):
        return sa.Boolean()
    return sa.String(64)


def index_metadata(policy: Policy) -> sa.MetaData:
    """Return the schema: index tables whose attribute columns are exactly the policy's fields."""
    md = sa.MetaData()

    def attributes() -> list[sa.Column]:
        return [
            sa.Column(f.name, _field_type(f.coarsen, f.source), nullable=True)
            for f in policy.fields
        ]

    sa.Table(
        "child_index",
        md,
        sa.Column("child_pseudonym", sa.String(64), primary_key=True),
        sa.Column("pseudonym_kind", sa.String(8), nullable=False),
        sa.Column("key_version", sa.String(16), nullable=False),
        sa.Column("responsible_council", sa.String(9), nullable=False),
        sa.Column("shielded", sa.Boolean, nullable=False),
        *attributes(),
    )
    sa.Table(
        "council_record",
        md,
        sa.Column("child_pseudonym", sa.String(64), primary_key=True),
        sa.Column("council_code", sa.String(9), primary_key=True),
        sa.Column("pseudonym_kind", sa.String(8), nullable=False),
        sa.Column("key_version", sa.String(16), nullable=False),
        sa.Column("shielded", sa.Boolean, nullable=False),
        sa.Column("extract_created_at", sa.String(32), nullable=False),
        # Keyed digest of the extract line this row came from (transforms/changes.py): an
        # unchanged line in the council's next extract is skipped. Not derived from any value
        # without the key; NULL forces the next extract's line to be processed again.
        sa.Column("row_digest", sa.BigInteger, nullable=True),
        *attributes(),
        # Retention (transforms/retention.py): the month this council's data says the child
        # turns 18 (25 for a care leaver), "YYYY-MM"; never shown by a look-up.
        sa.Column("archive_on", sa.String(7), nullable=True),
        # A council's rows, and a change-detected snapshot's departed lines, by digest.
        sa.Index("ix_council_record_council_digest", "council_code", "row_digest"),
        # Counting a council's council-scoped pseudonyms, every load, without reading its rows.
        sa.Index("ix_council_record_council_kind", "council_code", "pseudonym_kind"),
        sa.Index("ix_council_record_archive_on", "archive_on"),
    )
    # Sticky shields: which councils have ever shielded a child. Only an explicit, audited
    # unshield removes a row; no extract does.
    sa.Table(
        "shield",
        md,
        sa.Column("child_pseudonym", sa.String(64), primary_key=True),
        sa.Column("council_code", sa.String(9), primary_key=True),
    )
    # Opt-outs held only as pseudonyms, apart from the index; scope is a council or "national".
    sa.Table(
        "optout",
        md,
        sa.Column("child_pseudonym", sa.String(64), primary_key=True),
        sa.Column("scope", sa.String(9), primary_key=True),
    )
    # Lines of a council's newest extract that broke critical rules, by keyed digest, with the
    # rule names (never a value): unchanged, they are refused again without being validated.
    sa.Table(
        "refused_line",
        md,
        sa.Column("council_code", sa.String(9), primary_key=True),
        sa.Column("row_digest", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("rules", sa.String(400), nullable=False),
        # Set for rules "opted_out" only: withdrawing that child's opt-out forgets the line.
        sa.Column("child_pseudonym", sa.String(64), nullable=True),
    )
    # Each council's newest loaded children extract: the responsible council for a child held by
    # several is the one whose newest extract is newest (ties: lowest code).
    sa.Table(
        "council_feed",
        md,
        sa.Column("council_code", sa.String(9), primary_key=True),
        sa.Column("created_at", sa.String(32), nullable=False),
        sa.Column("sequence", sa.Integer, nullable=False),
    )
    # The keyed digests of each council's rows as one sorted array, so a re-sync reads a blob
    # instead of a row a child. Opt-outs and archiving take their rows' digests out of it
    # (`IndexStore.delete_council_rows`). Trusted only while it matches: `sha256` is the
    # council's newest loaded children file and `row_count` its rows with a digest; otherwise
    # the rows are read instead.
    sa.Table(
        "council_digest_set",
        md,
        sa.Column("council_code", sa.String(9), primary_key=True),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("row_count", sa.Integer, nullable=False),
        sa.Column("digests", sa.LargeBinary, nullable=False),
    )
    # The key version every pseudonym in the index is under: one row, also the lock that loads
    # and a rotation take first, so a load never lands half-way through a rotation.
    sa.Table(
        "key_state",
        md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("key_version", sa.String(16), nullable=False),
        sa.Column("changed_at", sa.String(32), nullable=False),
    )
    sa.Table(
        "file_ledger",
        md,
        # One extract: its bytes, whose they are and where in the council's sequence. The same
        # bytes sent again as a later extract are a new extract (a snapshot that went back).
        sa.Column("sha256", sa.String(64), primary_key=True),
        sa.Column("council_code", sa.String(9), primary_key=True),
        sa.Column("file_name", sa.String(200), nullable=False),
        sa.Column("file_kind", sa.String(16), nullable=False),
        sa.Column("extract_kind", sa.String(16), nullable=False),
        sa.Column("sequence", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("created_at", sa.String(32), nullable=False),
        sa.Column("loaded_at", sa.String(32), nullable=False),
        sa.Column("counts", sa.Text, nullable=False),
    )
    # Every look-up, found or not: the pseudonym asked about and why; never an NHS number.
    sa.Table(
        "access_log",
        md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", sa.String(32), nullable=False),
        sa.Column("child_pseudonym", sa.String(64), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
    )
    sa.Table(
        "audit_event",
        md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", sa.String(32), nullable=False),
        sa.Column("event", sa.String(32), nullable=False),
        sa.Column("council_code", sa.String(9), nullable=True),
        sa.Column("detail", sa.Text, nullable=False),  # counts as JSON, never identities
    )
    # Archived children (transforms/retention.py), kept 6 years and invisible to look-ups:
    # who they were in the index and when they go, no attribute.
    sa.Table(
        "archive",
        md,
        sa.Column("child_pseudonym", sa.String(64), primary_key=True),
        sa.Column("pseudonym_kind", sa.String(8), nullable=False),
        sa.Column("key_version", sa.String(16), nullable=False),
        sa.Column("responsible_council", sa.String(9), nullable=False),
        sa.Column("shielded", sa.Boolean, nullable=False),
        sa.Column("archive_on", sa.String(7), nullable=False),  # YYYY-MM
        sa.Column("archived_on", sa.String(10), nullable=False),  # the 1st of archive_on
        sa.Column("purge_on", sa.String(7), nullable=False),  # YYYY-MM, 6 years on
        sa.Index("ix_archive_purge_on", "purge_on"),
    )
    return md


@dataclass(frozen=True)
class StagedFile:
    """A processed extract ready to load: its manifest facts and its minimised rows."""

    council_code: str
    file_name: str
    sha256: str
    file_kind: str  # "children" or "optout"
    extract_kind: str
    sequence: int
    created_at: str
    rows: pd.DataFrame  # children: KEY_COLUMNS + policy fields; optout: child_pseudonym only
    # The key version of the rows' pseudonyms, when the rows do not carry a key_version column
    # (opt-out registers); checked against the index's version at load.
    key_version: str | None = None
    # Change-detected files (transforms/changes.py): `rows` holds only the changed rows;
    # `departed` the digests of the council's rows to let go (lines a snapshot no longer holds,
    # or an unchanged line now refused), and `unchanged` how many lines the council's rows
    # already hold as they are, both as of the council's newest loaded file `base_sha256`.
    # None: `rows` is the whole extract.
    departed: np.ndarray | None = None
    unchanged: int = 0
    base_sha256: str | None = None
    # The digests of the rows the council holds once this file is loaded as planned (unchanged
    # and new lines); None when not known (lines are not records, or a delta).
    held: np.ndarray | None = None
    # Lines refused for critical rules: row_digest and rules (remembered for the next extract).
    refused_lines: pd.DataFrame | None = None


@dataclass(frozen=True)
class LoadOutcome:
    """What loading one file did, in counts."""

    status: str  # "loaded", "already_loaded" or "refused"
    reason: str | None = None
    opted_out: int = 0
    shielded: int = 0
    loaded: int = 0
    removed: int = 0  # index rows removed (departed from a snapshot, or opted out)
    unchanged: int = 0  # rows the index already held as they are (not rewritten)
    # Children this council holds under a council-scoped pseudonym (no valid NHS number): never
    # linked to another council's record of the same child.
    local_pseudonyms: int = 0
    archived: int = 0  # rows dropped: the child is archived, or turns 18 (25) by the extract


class KeyVersionMismatch(RuntimeError):
    """A staged file was pseudonymised under another key than the index's (a rotation ran).

    Nothing was written. The file is still in the drop zone: process it again under the
    index's current key (the next run, or the task's retry, does).
    """


class ChangedUnderneath(RuntimeError):
    """A change-detected file was compared with a state of its council that is no longer current.

    Nothing was written. Another extract from the council loaded after this one was processed:
    process the file again (`sync_drop_zone` does at once; the DAG's next run does).
    """


class IndexStore:
    """The central index behind one SQLAlchemy engine (SQLite by default, PostgreSQL by URL)."""

    def __init__(self, engine: Engine, policy: Policy):
        self.engine = engine
        self.policy = policy
        if engine.dialect.name == "sqlite" and not sa.event.contains(
            engine, "connect", _sqlite_pragmas
        ):
            sa.event.listen(engine, "connect", _sqlite_pragmas)
        self.metadata = index_metadata(policy)
        self.t = self.metadata.tables

    @classmethod
    def from_url(cls, url: str, policy: Policy) -> IndexStore:
        """Open (and create if needed) the index at a SQLAlchemy URL."""
        store = cls(sa.create_engine(url), policy)
        store.create()
        return store

    def create(self) -> None:
        """Create missing tables; existing ones are kept (an older index gains new columns)."""
        self.metadata.create_all(self.engine)
        self._add_missing_columns()
        for index in self.t["council_record"].indexes:  # an older index gains new indexes
            index.create(self.engine, checkfirst=True)

    def _add_missing_columns(self) -> None:
        """Add the `council_record` columns an index made before them lacks.

        `archive_on` came with retention, `row_digest` with change detection; both may be NULL,
        which the code reads as "not known" (no archive month yet; read the line again).
        """
        have = {c["name"] for c in sa.inspect(self.engine).get_columns("council_record")}
        added = {"archive_on": "VARCHAR(7)", "row_digest": "BIGINT"}
        missing = {name: kind for name, kind in added.items() if name not in have}
        if missing:
            with self.engine.begin() as conn:
                for name, kind in missing.items():
                    conn.exec_driver_sql(f"ALTER TABLE council_record ADD COLUMN {name} {kind}")

    def council_digests(self, council: str) -> tuple[np.ndarray, pd.DataFrame, str | None]:
        """Return a council's row digests, its refused lines, and its newest file's checksum.

        The digests (int64) of the council's `council_record` rows that have one; the refused
        lines as (row_digest, rules, child_pseudonym). No pseudonym of an unchanged row is read:
        a re-sync compares digests only.

        The load checks the newest file again: if another file of the council loaded in
        between, the plan made from these rows is refused (`ChangedUnderneath`), never applied.
        An index that does not exist yet holds nothing.
        """
        empty = np.zeros(0, dtype=np.int64)
        no_refusals = pd.DataFrame({"row_digest": [], "rules": [], "child_pseudonym": []})
        if not sa.inspect(self.engine).has_table("refused_line"):
            return empty, no_refusals, None
        rec, ref = self.t["council_record"], self.t["refused_line"]
        with self.engine.connect() as conn:
            base = self._newest_children_file(conn, council)
            if base is None:
                return empty, no_refusals, None
            found = _council_rows(conn, ref, council, _REFUSED_COLUMNS)
            columns = _as_columns(found, (np.int64, object, object))
            refused = pd.DataFrame(dict(zip(_REFUSED_COLUMNS, columns, strict=True)))
            digests = self._digest_set(conn, council, base)
            if digests is None:  # 1M rows in about 1 s
                rows = _council_rows(
                    conn, rec, council, ["row_digest"], "AND row_digest IS NOT NULL"
                )
                digests = np.fromiter(chain.from_iterable(rows), dtype=np.int64, count=len(rows))
        return digests, refused, base

    def _digest_count(self, conn: Connection, council: str) -> int:
        rec = self.t["council_record"]
        return int(
            conn.execute(
                sa.select(sa.func.count())
                .select_from(rec)
                .where(rec.c.council_code == council, rec.c.row_digest.is_not(None))
            ).scalar()
            or 0
        )

    def _digest_set(self, conn: Connection, council: str, base: str) -> np.ndarray | None:
        """Return the council's digests from `council_digest_set`, or None if it may be stale."""
        kept = self.t["council_digest_set"]
        found = conn.execute(
            sa.select(kept.c.sha256, kept.c.row_count, kept.c.digests).where(
                kept.c.council_code == council
            )
        ).first()
        if found is None or found.sha256 != base:
            return None
        if found.row_count != self._digest_count(conn, council):
            return None
        digests = np.frombuffer(bytes(found.digests), dtype="<i8")
        return digests if len(digests) == found.row_count else None

    def _keep_digest_set(
        self, conn: Connection, staged: StagedFile, dropped: pd.DataFrame, count: int | None = None
    ) -> None:
        """Record the council's digests after a load, when they are known and agree.

        `count`: how many of the council's rows have a digest, when the caller knows.
        """
        kept = self.t["council_digest_set"]
        council = staged.council_code
        mine = kept.c.council_code == council
        digests = None
        if staged.held is not None:
            gone = np.zeros(0, dtype=np.int64)
            if "row_digest" in dropped.columns:
                gone = dropped["row_digest"].dropna().to_numpy(dtype="int64")
            held = sorted_unique(staged.held)  # as the digest set keeps them
            digests = held[~digests_in(held, gone)] if len(gone) else held
            if count is None:
                count = self._digest_count(conn, council)
            if len(digests) != count:
                digests = None  # some rows were not as planned: the next re-sync reads them
        if digests is None:
            conn.execute(kept.delete().where(mine))
            return
        blob = digests.astype("<i8").tobytes()
        before = conn.execute(sa.select(kept.c.digests).where(mine)).scalar()
        if before is not None and bytes(before) == blob:
            # The same rows as before (an unchanged re-sync): only the file it matches moves on.
            conn.execute(kept.update().where(mine).values(sha256=staged.sha256))
            return
        conn.execute(kept.delete().where(mine))
        conn.execute(
            kept.insert().values(
                council_code=council, sha256=staged.sha256, row_count=len(digests), digests=blob
            )
        )

    def delete_council_rows(self, conn: Connection, where) -> int:
        """Delete the `council_record` rows matching `where`, keeping digest sets true.

        Every delete of council rows outside a council's own load (opt-outs, archiving) goes
        through here, so each council's `council_digest_set` loses the same digests and stays
        usable, instead of being read row by row at the council's next re-sync.

        Returns:
            How many rows were deleted.
        """
        rec, kept = self.t["council_record"], self.t["council_digest_set"]
        found = conn.execute(sa.select(rec.c.council_code, rec.c.row_digest).where(where)).all()
        deleted = int(conn.execute(rec.delete().where(where)).rowcount or 0)
        by_council: dict[str, list[int]] = {}
        for council, digest in found:
            if digest is not None:
                by_council.setdefault(council, []).append(int(digest))
        for council, digests in sorted(by_council.items()):
            mine = kept.c.council_code == council
            row = conn.execute(sa.select(kept.c.row_count, kept.c.digests).where(mine)).first()
            if row is None:
                continue
            before = pd.Index(np.frombuffer(bytes(row.digests), dtype="<i8"))
            after = before[~before.isin(digests)].to_numpy()
            if len(after) == row.row_count - len(digests):
                values = {"row_count": len(after), "digests": after.astype("<i8").tobytes()}
                conn.execute(kept.update().where(mine).values(**values))
            else:
                conn.execute(kept.delete().where(mine))
        return deleted

    def council_children(self, council: str, pseudonyms: Sequence[str]) -> pd.DataFrame:
        """Return the council's rows (child_pseudonym, row_digest) of the given children."""
        with self.engine.connect() as conn:
            found = _rows_in(
                conn,
                "SELECT child_pseudonym, row_digest FROM council_record "
                f"WHERE council_code = {_marker(conn)} AND child_pseudonym IN",
                sorted(set(pseudonyms)),
                before=[council],
            )
        return pd.DataFrame(found, columns=["child_pseudonym", "row_digest"])

    def _newest_children_file(self, conn: Connection, council: str) -> str | None:
        ledger = self.t["file_ledger"]
        return conn.execute(
            sa.select(ledger.c.sha256)
            .where(ledger.c.council_code == council, ledger.c.file_kind == "children")
            .order_by(ledger.c.sequence.desc())
            .limit(1)
        ).scalar()

    def _insert(
        self,
        conn: Connection,
        table: str,
        records: list[dict],
        ignore: bool = False,
        replace: bool = False,
    ) -> None:
        """Insert `records`; on a primary-key clash keep the row (`ignore`) or replace it."""
        tbl = self.t[table]
        stmt = tbl.insert()
        if ignore or replace:
            stmt = _dialect_insert(conn, tbl)
            if ignore:
                stmt = stmt.on_conflict_do_nothing()
            else:
                key = [c.name for c in tbl.primary_key.columns]
                kept = {*key, *_FIXED_ON_CONFLICT, *_RARELY_CHANGED}
                stmt = stmt.on_conflict_do_update(
                    index_elements=key,
                    set_={c.name: stmt.excluded[c.name] for c in tbl.c if c.name not in kept},
                )
        if records:
            _executemany(conn, stmt, records)
        if replace and records:
            for name in _RARELY_CHANGED:
                if name in tbl.c and name in records[0]:
                    self._update_where_differs(conn, tbl, name, records)

    @staticmethod
    def _update_where_differs(
        conn: Connection, tbl: sa.Table, name: str, records: list[dict]
    ) -> None:
        """Set column `name` of the rows keyed by `records` to theirs, only where it differs."""
        key = [c.name for c in tbl.primary_key.columns]
        stmt = (
            tbl.update()
            .where(
                *[tbl.c[k] == sa.bindparam(f"key_{k}") for k in key],
                tbl.c[name].is_distinct_from(sa.bindparam(f"new_{name}")),
            )
            .values({name: sa.bindparam(f"new_{name}")})
        )
        params = [{f"new_{name}": r[name], **{f"key_{k}": r[k] for k in key}} for r in records]
        _executemany(conn, stmt, params)

    def _pseudonyms(self, conn: Connection, table: str, where=None) -> set[str]:
        col = self.t[table].c.child_pseudonym
        stmt = sa.select(col) if where is None else sa.select(col).where(where)
        return set(conn.execute(stmt).scalars())

    def _which(self, conn: Connection, table: str, pseudonyms: Iterable[str]) -> set[str]:
        """Return those of `pseudonyms` that `table` holds (asked in chunks, not read whole)."""
        select = f"SELECT child_pseudonym FROM {self.t[table].name} WHERE child_pseudonym IN"
        return {row[0] for row in _rows_in(conn, select, sorted(pseudonyms))}

    def already_loaded(self, sha256: str) -> bool:
        """Return True when a file with this checksum has been loaded before."""
        with self.engine.connect() as conn:
            ledger = self.t["file_ledger"]
            return (
                conn.execute(sa.select(ledger.c.sha256).where(ledger.c.sha256 == sha256)).first()
                is not None
            )

    def lock_key_state(self, conn: Connection) -> str | None:
        """Take the key-state lock as the first statement of a write transaction.

        Loads and a rotation call this first, so they serialise: a load that starts during a
        rotation waits (PostgreSQL: the row lock; SQLite: the database write lock, until its
        busy timeout, then fails and is retried) and then sees the new key version.

        Returns:
            The index's key version, or None for an index that has never been loaded.
        """
        ks = self.t["key_state"]
        if conn.dialect.name == "sqlite":
            # pysqlite opens the transaction at the first write: make that write come first.
            conn.execute(
                ks.update().where(ks.c.id == KEY_STATE_ID).values(key_version=ks.c.key_version)
            )
            stmt = sa.select(ks.c.key_version).where(ks.c.id == KEY_STATE_ID)
        else:
            stmt = sa.select(ks.c.key_version).where(ks.c.id == KEY_STATE_ID).with_for_update()
        version = conn.execute(stmt).scalar()
        if version is None:
            # An index made before key_state existed: adopt the version its rows carry.
            rec = self.t["council_record"]
            version = conn.execute(sa.select(sa.func.min(rec.c.key_version))).scalar()
        return version

    def set_key_version(self, conn: Connection, version: str) -> None:
        """Record the index's key version (inside the caller's locked transaction)."""
        ks = self.t["key_state"]
        now = datetime.now(UTC).isoformat(timespec="seconds")
        done = conn.execute(
            ks.update().where(ks.c.id == KEY_STATE_ID).values(key_version=version, changed_at=now)
        ).rowcount
        if not done:
            conn.execute(ks.insert().values(id=KEY_STATE_ID, key_version=version, changed_at=now))

    def key_version(self) -> str | None:
        """Return the key version the index's pseudonyms are under (None: never loaded)."""
        ks = self.t["key_state"]
        with self.engine.connect() as conn:
            return conn.execute(sa.select(ks.c.key_version).where(ks.c.id == KEY_STATE_ID)).scalar()

    def load(self, staged: StagedFile) -> LoadOutcome:
        """Apply one staged file in a single transaction; a repeat of a loaded file is a no-op.

        Raises:
            KeyVersionMismatch: the file's pseudonyms are under another key than the index's.
        """
        with self.engine.begin() as conn:
            current = self.lock_key_state(conn)
            ledger = self.t["file_ledger"]
            if conn.execute(
                sa.select(ledger.c.sha256).where(
                    ledger.c.sha256 == staged.sha256,
                    ledger.c.council_code == staged.council_code,
                    ledger.c.sequence == staged.sequence,
                )
            ).first():
                # The ledger holds checksums, not pseudonyms: a repeat is a no-op under any key.
                return LoadOutcome("already_loaded")
            versions = _staged_versions(staged)
            expected = {current} if current is not None else set(sorted(versions)[:1])
            if versions - expected:
                raise KeyVersionMismatch(
                    f"{staged.council_code}/{staged.file_name} was pseudonymised under key "
                    f"version {', '.join(sorted(versions - expected))} but the index is under "
                    f"{', '.join(sorted(expected))} (a key rotation ran): nothing was loaded; "
                    "process the file again with the current key"
                )
            if current is None and versions:
                self.set_key_version(conn, min(versions))
            stale = self._stale_reason(conn, staged)
            if stale:
                self._audit(
                    conn, "refuse_stale", staged.council_code, {"sequence": staged.sequence}
                )
                return LoadOutcome("refused", reason=stale)
            if staged.file_kind == "optout":
                outcome = self._load_optouts(conn, staged)
            else:
                outcome = self._load_children(conn, staged)
            counts = {
                "rows": len(staged.rows),
                "opted_out": outcome.opted_out,
                "shielded": outcome.shielded,
                "loaded": outcome.loaded,
                "removed": outcome.removed,
                "archived": outcome.archived,
            }
            now = datetime.now(UTC).isoformat(timespec="seconds")
            conn.execute(
                ledger.insert().values(
                    sha256=staged.sha256,
                    council_code=staged.council_code,
                    file_name=staged.file_name,
                    file_kind=staged.file_kind,
                    extract_kind=staged.extract_kind,
                    sequence=staged.sequence,
                    created_at=staged.created_at,
                    loaded_at=now,
                    counts=json.dumps(counts),
                )
            )
            self._audit(conn, f"load_{staged.file_kind}", staged.council_code, counts, now)
            return outcome

    def _stale_reason(self, conn: Connection, staged: StagedFile) -> str | None:
        """Refuse a children extract out of sequence for its council.

        A snapshot must be newer than every extract loaded from the council: an old snapshot
        arriving late would put back children the council has since removed. A delta applies
        to what came before it, so it must be exactly the next sequence after a loaded extract.
        """
        if staged.file_kind != "children":
            return None
        ledger = self.t["file_ledger"]
        newest = conn.execute(
            sa.select(sa.func.max(ledger.c.sequence)).where(
                ledger.c.council_code == staged.council_code, ledger.c.file_kind == "children"
            )
        ).scalar()
        if newest is not None and staged.sequence <= newest:
            return (
                f"stale {staged.extract_kind}: sequence {staged.sequence} is not newer than "
                f"sequence {newest} already loaded from this council; send a new extract "
                "with the next sequence number"
            )
        if staged.extract_kind == "delta":
            if newest is None:
                return (
                    "delta with nothing to apply to: no extract from this council has been "
                    "loaded; send a snapshot first"
                )
            if staged.sequence != newest + 1:
                return (
                    f"out-of-sequence delta: sequence {staged.sequence} follows sequence "
                    f"{newest}, so {staged.sequence - newest - 1} extract(s) in between are "
                    "missing; send them (or a new snapshot) and this delta again"
                )
        return None

    def _audit(
        self, conn: Connection, event: str, council: str | None, detail: dict, at: str | None = None
    ) -> None:
        conn.execute(
            self.t["audit_event"]
            .insert()
            .values(
                at=at or datetime.now(UTC).isoformat(timespec="seconds"),
                event=event,
                council_code=council,
                detail=json.dumps(detail, sort_keys=True),
            )
        )

    def _load_optouts(self, conn: Connection, staged: StagedFile) -> LoadOutcome:
        pseudonyms = sorted(set(staged.rows["child_pseudonym"].dropna()))
        self._insert(
            conn,
            "optout",
            [{"child_pseudonym": p, "scope": staged.council_code} for p in pseudonyms],
            ignore=True,
        )
        removed = self._apply_optouts(conn)
        return LoadOutcome("loaded", opted_out=len(pseudonyms), removed=removed)

    def _apply_optouts(self, conn: Connection) -> int:
        optout = sa.select(self.t["optout"].c.child_pseudonym)
        removed = conn.execute(
            self.t["child_index"]
            .delete()
            .where(self.t["child_index"].c.child_pseudonym.in_(optout))
        ).rowcount
        self.delete_council_rows(conn, self.t["council_record"].c.child_pseudonym.in_(optout))
        return int(removed or 0)

    def _load_children(self, conn: Connection, staged: StagedFile) -> LoadOutcome:
        arrived = staged.rows
        staged, archived = self._drop_retired(conn, staged)
        retired = _retired_lines(arrived, staged.rows)  # remembered: dropped again unread
        if staged.refused_lines is not None and len(staged.refused_lines):
            archived += int((staged.refused_lines["rules"] == ARCHIVED_LINE).sum())
        rec = self.t["council_record"]
        council = staged.council_code
        if staged.departed is not None:
            base = self._newest_children_file(conn, council)
            if base != staged.base_sha256:
                raise ChangedUnderneath(
                    f"{council}/{staged.file_name} was compared with an earlier state of the "
                    "council's contribution than the index now holds: nothing was loaded; it "
                    "is processed again"
                )
        candidates = set(staged.rows["child_pseudonym"].dropna())
        if staged.refused_lines is not None and "child_pseudonym" in staged.refused_lines:
            candidates |= set(staged.refused_lines["child_pseudonym"].dropna())
        opted = self._which(conn, "optout", candidates)
        rows, opted_out = remove_opted_out(staged.rows, opted)
        # Remembered, so these lines are not read again while unchanged and still opted out.
        suppressed, skipped = _opted_out_lines(staged, opted)
        opted_out += skipped
        new_shields = rows.loc[rows["shielded"].astype(bool), "child_pseudonym"].tolist()
        self._insert(
            conn,
            "shield",
            [{"child_pseudonym": p, "council_code": council} for p in new_shields],
            ignore=True,
        )
        shielded_set = self._which(conn, "shield", set(rows["child_pseudonym"]))
        rows, shielded = strip_shielded(rows, self.policy, shielded_set)

        incoming = set(rows["child_pseudonym"])
        unchanged = 0
        # A snapshot read in full replaces every row of the council; anything else only some.
        whole = staged.extract_kind == "snapshot" and staged.departed is None
        if whole:
            before = self._pseudonyms(conn, "council_record", rec.c.council_code == council)
            conn.execute(rec.delete().where(rec.c.council_code == council))
            affected = before | incoming
        else:
            # A delta, or a change-detected snapshot: only the changed children are rewritten;
            # a snapshot also lets go of the rows whose lines are gone (by digest; rows loaded
            # before digests were kept have none, and their lines are among the changed ones).
            # The incoming children's rows are replaced in place below (an upsert: the indexes
            # whose columns do not change are left alone), so only rows whose child is not in
            # the file are deleted here.
            affected = set(incoming)
            if staged.departed is not None:
                # Separate statements, not one OR: each is a range of the (council, digest)
                # index.
                departed = staged.departed.tolist()
                for start in range(0, len(departed), _CHUNK):
                    chunk = departed[start : start + _CHUNK]
                    gone = self._children_where(conn, council, rec.c.row_digest.in_(chunk))
                    self._delete_records(conn, council, gone - incoming)
                    affected |= gone
                if staged.extract_kind == "snapshot":
                    affected |= self._delete_where(conn, council, rec.c.row_digest.is_(None))
        # The responsible council of a child held elsewhere too may change with this file's date.
        affected |= self._crossed_children(conn, council, staged.created_at)
        self._set_feed(conn, staged)
        self._set_refused_lines(conn, staged, pd.concat([suppressed, retired]))
        records = rows.assign(extract_created_at=staged.created_at)
        self._insert(conn, "council_record", _records(records), replace=not whole)
        # Rows that arrived but were not kept (opted out, archived): not held after all.
        if "row_digest" in arrived.columns:
            dropped = arrived.loc[~arrived["child_pseudonym"].isin(set(rows["child_pseudonym"]))]
        else:
            dropped = arrived.iloc[0:0]
        with_digest = None  # how many of the council's rows have a digest now, when counted
        if staged.departed is not None:
            unchanged = staged.unchanged
            if staged.extract_kind == "snapshot":
                # Every row has a digest now; those not written by this file are unchanged,
                # exact even when an opt-out or an archive took rows since the plan.
                with_digest = self._digest_count(conn, council)
                written = records["row_digest"].notna().sum() if "row_digest" in records else 0
                unchanged = with_digest - int(written)
        self._keep_digest_set(conn, staged, dropped, with_digest)
        # A new shield also strips what other councils contributed for that child.
        if new_shields:
            # Only this file's shielded children: every earlier shield was applied at its load,
            # and rows arriving since for a shielded child were stripped on the way in.
            drop = {f.name: None for f in self.policy.fields if f.shielded == "drop"}
            for start in range(0, len(new_shields), _CHUNK):
                conn.execute(
                    rec.update()
                    .where(
                        rec.c.child_pseudonym.in_(new_shields[start : start + _CHUNK]),
                        rec.c.shielded.is_(False),
                    )
                    .values(shielded=True, **drop)
                )
            affected |= set(new_shields)
        removed = self._recompute(conn, affected)
        local = conn.execute(
            sa.select(sa.func.count())
            .select_from(rec)
            .where(rec.c.council_code == council, rec.c.pseudonym_kind == KIND_LOCAL)
        ).scalar()
        return LoadOutcome(
            "loaded",
            local_pseudonyms=int(local or 0),
            opted_out=opted_out,
            shielded=shielded,
            loaded=len(rows),
            removed=removed,
            archived=archived,
            unchanged=unchanged,
        )

    def _delete_records(self, conn: Connection, council: str, pseudonyms: Iterable[str]) -> None:
        rec = self.t["council_record"]
        chosen = sorted(pseudonyms)
        for start in range(0, len(chosen), _CHUNK):
            conn.execute(
                rec.delete().where(
                    rec.c.council_code == council,
                    rec.c.child_pseudonym.in_(chosen[start : start + _CHUNK]),
                )
            )

    def _delete_where(self, conn: Connection, council: str, condition) -> set[str]:
        """Delete the council's rows matching `condition`; return their children."""
        rec = self.t["council_record"]
        gone = self._children_where(conn, council, condition)
        conn.execute(rec.delete().where(rec.c.council_code == council, condition))
        return gone

    def _children_where(self, conn: Connection, council: str, condition) -> set[str]:
        rec = self.t["council_record"]
        where = sa.and_(rec.c.council_code == council, condition)
        return set(conn.execute(sa.select(rec.c.child_pseudonym).where(where)).scalars())

    def _crossed_children(self, conn: Connection, council: str, created_at: str) -> set[str]:
        """Children whose responsible council may change when `council`'s feed moves to a date.

        Councils rank by their newest extract's date, then code (`_recompute`). Moving this
        council's date can only change who is responsible for a child it shares with a council
        it passes (or falls behind) in that ranking; when it passes none, as when councils send
        on the same days, no other child is touched.
        """
        feed, rec = self.t["council_feed"], self.t["council_record"]
        dates = dict(conn.execute(sa.select(feed.c.council_code, feed.c.created_at)).all())
        before = dates.get(council)
        if before is None:
            crossed = None  # first feed of the council (or an index from before council_feed)
        else:

            def ahead(other: str, mine: str) -> bool:
                return (dates[other], council) > (mine, other)  # newer date, or same and lower

            crossed = sorted(
                d for d in dates if d != council and ahead(d, before) != ahead(d, created_at)
            )
            if not crossed:
                return set()
        other = rec.alias("other")
        held_elsewhere = sa.exists().where(
            other.c.child_pseudonym == rec.c.child_pseudonym,
            other.c.council_code != council
            if crossed is None
            else other.c.council_code.in_(crossed),
        )
        return set(
            conn.execute(
                sa.select(rec.c.child_pseudonym).where(
                    rec.c.council_code == council, held_elsewhere
                )
            ).scalars()
        )

    def _set_refused_lines(
        self, conn: Connection, staged: StagedFile, suppressed: pd.DataFrame
    ) -> None:
        """Remember the file's refused and opted-out lines (a snapshot replaces the council's).

        Only the difference is written: a re-sync whose refused lines are as before writes
        nothing. A line is compared by digest and rules alone: its pseudonym (kept for rules
        "opted_out" only) follows from its digest, which is keyed by the pseudonym key's own
        derivative and so names one line, one child, under one key (a rotation forgets every
        line).
        """
        ref = self.t["refused_line"]
        council = staged.council_code
        refused = staged.refused_lines
        if refused is not None and "rules" in refused:
            refused = refused.loc[refused["rules"] != OPTED_OUT_LINE, ["row_digest", "rules"]]
        # As arrays, not a dict a line: a council's remembered lines run to tens of thousands.
        # Object arrays: pandas would turn text into its own strings, missing ones into NaN.
        digest_parts = [np.zeros(0, dtype=np.int64)]
        rule_parts, people_parts = [np.zeros(0, dtype=object)], [np.zeros(0, dtype=object)]
        for part in (refused, suppressed):
            if part is None or not len(part):
                continue
            digest_parts.append(part["row_digest"].to_numpy(dtype="int64"))  # never via float
            rule_parts.append(np.array(part["rules"].astype(str).tolist(), dtype=object))
            people = np.full(len(part), None, dtype=object)
            if "child_pseudonym" in part:
                people[:] = _plain(part["child_pseudonym"].astype("string"))
            people_parts.append(people)
        digests = np.concatenate(digest_parts)
        rules, people = np.concatenate(rule_parts), np.concatenate(people_parts)
        # A line in both parts keeps its first rules.
        first = ~pd.Index(digests).duplicated(keep="first")
        digests, rules, people = digests[first], rules[first], people[first]
        write = np.ones(len(digests), dtype=bool)
        if staged.extract_kind == "snapshot":
            have = _council_rows(conn, ref, council, ["row_digest", "rules"])
            have_digests, have_rules = _as_columns(have, (np.int64, object))
            at = pd.Index(digests).get_indexer(have_digests)  # digests are unique by now
            same = at >= 0
            same[same] = rules[at[same]] == have_rules[same]
            # Lines the council already holds with the same rules are not written again.
            write[at[same]] = False
            # A line kept with other rules is deleted here and written again below.
            stale = np.sort(have_digests[~same]).tolist()
            for start in range(0, len(stale), _CHUNK):
                conn.execute(
                    ref.delete().where(
                        ref.c.council_code == council,
                        ref.c.row_digest.in_(stale[start : start + _CHUNK]),
                    )
                )
        order = np.flatnonzero(write)[np.argsort(digests[write], kind="stable")]
        self._insert(
            conn,
            "refused_line",
            [
                {"council_code": council, "row_digest": d, "rules": r, "child_pseudonym": p}
                for d, r, p in zip(
                    digests[order].tolist(),
                    rules[order].tolist(),
                    people[order].tolist(),
                    strict=True,
                )
            ],
            ignore=True,
        )

    def _set_feed(self, conn: Connection, staged: StagedFile) -> None:
        feed = self.t["council_feed"]
        values = {"created_at": staged.created_at, "sequence": staged.sequence}
        done = conn.execute(
            feed.update().where(feed.c.council_code == staged.council_code).values(**values)
        ).rowcount
        if not done:
            conn.execute(feed.insert().values(council_code=staged.council_code, **values))

    def _recompute(self, conn: Connection, affected: Iterable[str]) -> int:
        """Rebuild the index rows of `affected` children from their contributions.

        The responsible council is the one whose extract is newest (ties: lowest code), so the
        result depends only on the set of contributions, never on load order.
        """
        idx, rec, feed = self.t["child_index"], self.t["council_record"], self.t["council_feed"]
        affected = sorted(affected)
        fields = list(self.policy.field_names)
        removed = 0
        columns = [
            "child_pseudonym",
            "pseudonym_kind",
            "key_version",
            "responsible_council",
            "shielded",
            *fields,
        ]
        for start in range(0, len(affected), _CHUNK):
            chunk = affected[start : start + _CHUNK]
            ranked = (
                sa.select(
                    rec,
                    sa.func.row_number()
                    .over(
                        partition_by=rec.c.child_pseudonym,
                        order_by=(
                            # An index from before council_feed: the row's own extract time.
                            sa.func.coalesce(feed.c.created_at, rec.c.extract_created_at).desc(),
                            rec.c.council_code,
                        ),
                    )
                    .label("rn"),
                )
                .outerjoin(feed, feed.c.council_code == rec.c.council_code)
                .where(rec.c.child_pseudonym.in_(chunk))
                .subquery()
            )
            shielded_any = sa.exists().where(
                self.t["shield"].c.child_pseudonym == ranked.c.child_pseudonym
            )
            select = sa.select(
                ranked.c.child_pseudonym,
                ranked.c.pseudonym_kind,
                ranked.c.key_version,
                ranked.c.council_code,
                sa.or_(ranked.c.shielded, shielded_any),
                *[ranked.c[f] for f in fields],
            ).where(ranked.c.rn == 1)  # (SQLite needs a WHERE before an upsert's ON CONFLICT)
            # Rows are rewritten in place (an upsert), not deleted and inserted again: a
            # re-sync changes a few thousand children of millions.
            upsert = _dialect_insert(conn, idx).from_select(columns, select)
            conn.execute(
                upsert.on_conflict_do_update(
                    index_elements=["child_pseudonym"],
                    set_={c: upsert.excluded[c] for c in columns if c != "child_pseudonym"},
                )
            )
            # Children no council holds any more leave the index.
            held = sa.exists().where(rec.c.child_pseudonym == idx.c.child_pseudonym)
            removed += conn.execute(
                idx.delete().where(idx.c.child_pseudonym.in_(chunk), ~held)
            ).rowcount
        return removed

    def withdraw_optout(self, pseudonym: str, scope: str) -> int:
        """Withdraw one opt-out explicitly, with an audit event; returns how many were removed.

        The child is not put back here: the council's next extract brings them back, as for any
        child it holds. Another scope's opt-out for the same child stays in force.

        Raises:
            ValueError: no opt-out of that scope is recorded for the child.
        """
        opt = self.t["optout"]
        with self.engine.begin() as conn:
            removed = conn.execute(
                opt.delete().where(opt.c.child_pseudonym == pseudonym, opt.c.scope == scope)
            ).rowcount
            if not removed:
                raise ValueError(f"no opt-out of scope {scope} is recorded for that child")
            # The child's lines were remembered as opted out: read them again next time.
            ref = self.t["refused_line"]
            conn.execute(ref.delete().where(ref.c.child_pseudonym == pseudonym))
            self._audit(conn, "optout_withdrawn", scope, {"withdrawn": int(removed)})
        return int(removed)

    def unshield(self, pseudonym: str, council: str) -> int:
        """Remove a council's shield from a child, with an audit event.

        Only the council that shielded can unshield; a shield from any other source stays, so
        the child stays shielded until every shielding council has unshielded them. Fields come
        back with each council's next extract.

        Raises:
            ValueError: this council has not shielded the child.
        """
        shield, rec = self.t["shield"], self.t["council_record"]
        with self.engine.begin() as conn:
            removed = conn.execute(
                shield.delete().where(
                    shield.c.child_pseudonym == pseudonym, shield.c.council_code == council
                )
            ).rowcount
            if not removed:
                raise ValueError(
                    f"council {council} has not shielded that child; only the "
                    "council that shielded a child can unshield them"
                )
            still = conn.execute(
                sa.select(shield.c.council_code).where(shield.c.child_pseudonym == pseudonym)
            ).first()
            if still is None:
                # Contributions stay stripped until re-sent; only the mark is lifted. Forgetting
                # the row digests makes each council's next extract send the child's fields
                # again, even when its line is unchanged.
                conn.execute(
                    rec.update()
                    .where(rec.c.child_pseudonym == pseudonym)
                    .values(shielded=False, row_digest=None)
                )
                self._recompute(conn, [pseudonym])
            self._audit(
                conn,
                "unshield",
                council,
                {"unshielded": 1, "still_shielded": int(still is not None)},
            )
        return int(removed)

    def snapshot_audit(self) -> list[tuple[str, str | None]]:
        """Return the audit ledger's (event, council) pairs in order (for tests and reports)."""
        ev = self.t["audit_event"]
        with self.engine.connect() as conn:
            return [
                tuple(r)
                for r in conn.execute(sa.select(ev.c.event, ev.c.council_code).order_by(ev.c.id))
            ]

    def index_frame(self) -> pd.DataFrame:
        """Return the whole child index, sorted by pseudonym (for reports and tests)."""
        with self.engine.connect() as conn:
            idx = self.t["child_index"]
            result = conn.execute(sa.select(idx).order_by(idx.c.child_pseudonym))
            return pd.DataFrame(result.fetchall(), columns=list(result.keys()))

    def snapshot(self) -> dict[str, list[tuple]]:
        """Return every index table's rows, sorted: equal snapshots mean identical indexes.

        Left out: `council_record.extract_created_at`, which records when a row was last
        written (an unchanged row keeps the time of the extract that first brought it).
        """
        out = {}
        with self.engine.connect() as conn:
            for name in INDEX_TABLES:
                tbl = self.t[name]
                columns = [c for c in tbl.c if c.name != "extract_created_at"]
                out[name] = [
                    tuple(r)
                    for r in conn.execute(
                        sa.select(*columns).order_by(*tbl.primary_key.columns)
                    ).fetchall()
                ]
        return out

    def _drop_retired(self, conn: Connection, staged: StagedFile) -> tuple[StagedFile, int]:
        """Archive who is due by the extract's date, then drop rows of archived or adult children.

        Runs before anything else in a children load, so no extract brings an archived child
        back, and a child due this month is archived (not just dropped) even when the load comes
        before the day's retention run. A purged child has no row left to match; the month rule
        (a row's own `archive_on` at or before the extract's month) keeps them out.

        Returns:
            The file with only the rows that may load, and how many were dropped.
        """
        from transforms.retention import archive_due

        archive_due(self, conn, datetime.fromisoformat(staged.created_at[:10]).date(), "load")
        rows = staged.rows
        if rows.empty:
            return staged, 0
        drop = pd.Series(False, index=rows.index)
        if "archive_on" in rows.columns:
            months = rows["archive_on"].astype("string")
            drop |= (months.notna() & (months <= staged.created_at[:7])).astype(bool)
        pseudonyms = rows["child_pseudonym"].dropna().astype(str).unique().tolist()
        archived = self._which(conn, "archive", pseudonyms)
        drop |= rows["child_pseudonym"].isin(archived)
        if not drop.any():
            return staged, 0
        kept = rows.loc[~drop].reset_index(drop=True)
        return replace(staged, rows=kept), int(drop.sum())


OPTED_OUT_LINE = "opted_out"  # the rules of a remembered line whose child has opted out
ARCHIVED_LINE = "archived"  # ... whose child is archived or of age: never loads again


def _retired_lines(arrived: pd.DataFrame, kept: pd.DataFrame) -> pd.DataFrame:
    """Return the digests of the rows `_drop_retired` dropped, to remember as archived."""
    if "row_digest" not in arrived.columns or len(arrived) == len(kept):
        return pd.DataFrame({"row_digest": np.zeros(0, dtype="int64"), "rules": []})
    gone = arrived.loc[
        ~arrived["child_pseudonym"].astype(object).isin(set(kept["child_pseudonym"]))
        & arrived["row_digest"].notna()
    ]
    return pd.DataFrame(
        {"row_digest": gone["row_digest"].astype("int64").to_numpy(), "rules": ARCHIVED_LINE}
    )


def _opted_out_lines(staged: StagedFile, opted: set[str]) -> tuple[pd.DataFrame, int]:
    """Return the file's lines whose child is opted out (digest, rule, pseudonym) to remember.

    Both the lines opted out at this load and those the pipeline skipped as still opted out
    (carried in `refused_lines`), as long as the child's opt-out still stands; and how many
    of the skipped ones are still opted out.
    """
    parts = []
    rows = staged.rows
    if "row_digest" in rows.columns and len(rows):
        mask = rows["child_pseudonym"].astype(object).isin(opted) & rows["row_digest"].notna()
        parts.append(
            pd.DataFrame(
                {
                    "row_digest": rows.loc[mask, "row_digest"].astype("int64").to_numpy(),
                    "child_pseudonym": rows.loc[mask, "child_pseudonym"].astype(object).to_numpy(),
                }
            )
        )
    carried = staged.refused_lines
    if carried is not None and "child_pseudonym" in carried and len(carried):
        carried = carried.loc[carried["rules"] == OPTED_OUT_LINE]
        carried = carried.loc[carried["child_pseudonym"].astype(object).isin(opted)]
        parts.append(carried[["row_digest", "child_pseudonym"]])
        skipped = len(carried)
    else:
        skipped = 0
    if not parts:
        return pd.DataFrame({"row_digest": [], "rules": [], "child_pseudonym": []}), skipped
    out = pd.concat([p.astype({"row_digest": "int64"}) for p in parts], ignore_index=True)
    out["rules"] = OPTED_OUT_LINE
    return out, skipped


def _staged_versions(staged: StagedFile) -> set[str]:
    """Return the key versions a staged file's pseudonyms are under (empty: not recorded)."""
    versions = {staged.key_version} if staged.key_version else set()
    if "key_version" in staged.rows.columns:
        versions |= set(staged.rows["key_version"].dropna().astype(str))
    return versions


def _council_rows(
    conn: Connection, table: sa.Table, council: str, columns: list[str], where: str = ""
) -> list[tuple]:
    """Return `columns` of a council's rows of `table` as plain tuples (`where`: more SQL).

    Read through the DB-API cursor: SQLAlchemy Row objects are slow to make by the 10,000 (a
    re-sync reads a council's refused lines, and without a digest set, its million digests),
    and both drivers give int, str and None as they are.
    """
    cursor = conn.connection.driver_connection.cursor()
    names = ", ".join(table.c[c].name for c in columns)
    cursor.execute(
        f"SELECT {names} FROM {table.name} WHERE council_code = {_marker(conn)} {where}",
        (council,),
    )
    found = cursor.fetchall()
    cursor.close()
    return [tuple(row) for row in found]


def _as_columns(rows: list[tuple], dtypes: tuple) -> list[np.ndarray]:
    """Turn `_council_rows` tuples into an array per column (64-bit digests never via float)."""
    columns = list(zip(*rows, strict=True)) if rows else [()] * len(dtypes)
    return [np.array(c, dtype=d) for c, d in zip(columns, dtypes, strict=True)]


_REFUSED_COLUMNS = ["row_digest", "rules", "child_pseudonym"]


def _records(frame: pd.DataFrame) -> list[dict]:
    """Return the rows as dicts of plain Python values, missing values as None.

    Column by column (`tolist` gives Python scalars): `DataFrame.to_dict` costs several times
    more per row, and a re-sync's loads are on the critical path.
    """
    columns = {name: _plain(frame[name]) for name in frame.columns}
    names = list(columns)
    return [dict(zip(names, row, strict=True)) for row in zip(*columns.values(), strict=True)]


def _plain(values: pd.Series) -> list:
    """Return a column as Python values, missing ones (None, NA, NaT, NaN) as None."""
    out = values.astype(object).tolist()
    for i in np.flatnonzero(values.isna().to_numpy(dtype=bool)):
        out[i] = None
    return out


__all__ = [
    "INDEX_TABLES",
    "KEY_COLUMNS",
    "IndexStore",
    "KeyVersionMismatch",
    "LoadOutcome",
    "StagedFile",
    "index_metadata",
]
