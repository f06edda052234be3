"""Retention: archive a child at 18 (25 for care leavers), purge the archive 6 years later.

The index holds a year of birth at most (nothing for a shielded child), so retention runs from a
schedule of its own, worked out in the pipeline while the full date of birth is still at hand:
every council contribution carries `archive_on`, the month ("YYYY-MM") in which the child turns
18, or 25 when that council flags a care leaver. A month, never a day: it is stored rounded down
to the month's first day, so the index never holds an adult, and it says no more about the birth
date than its month (a full date would also be refused by the PII guard before the load). It is
kept for shielded children too, whose rows otherwise hold no age: retention must reach them, and a
birth month locates nobody. It lives in `council_record` only; a look-up never shows it.

A child's archive month is a function of the set of their contributions, so it does not depend
on the order extracts arrive in: if any council flags a care leaver, the earliest of the
care-leaver contributions' months (the duty to care leavers runs to 25, and one council knowing
is enough); otherwise the earliest of all (where councils disagree on a date of birth, the child
leaves the index at the first of them: privacy first).

`apply_retention` is one transaction: children whose month has come move from `child_index` and
`council_record` to `archive` (pseudonym, responsible council, the months; no attribute) and lose
their shields; archive rows whose purge month has come are deleted from every table, and their
access-log rows keep their time and outcome but lose the pseudonym and the reason. One audit event
each for archive and purge, with counts only. Afterwards the freed space is scrubbed (SQLite:
`secure_delete` and VACUUM; PostgreSQL: VACUUM FULL), so no purged pseudonym is left in free
space of the database's files.

Loads drop rows of archived children and rows whose own archive month has come
(`IndexStore._drop_retired`), so no extract brings an archived child back; a purged child is kept
out by the same month rule, since nothing of them is left to match against.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING

import pandas as pd
import sqlalchemy as sa

if TYPE_CHECKING:  # load imports minimise, which imports this module
    from transforms.load import IndexStore

log = logging.getLogger(__name__)

ARCHIVE_AGE = 18
CARE_LEAVER_ARCHIVE_AGE = 25
PURGE_AFTER_YEARS = 6
# What a purged child's access-log rows hold instead of the pseudonym and the reason.
PURGED_MARKER = "purged"
# Every table a purged pseudonym is removed from; access_log last (its rows are blanked).
PURGED_TABLES = ("child_index", "council_record", "shield", "optout", "archive", "access_log")
_CHUNK = 5000


@dataclass(frozen=True)
class RetentionOutcome:
    """What one retention run did, in counts (never a pseudonym)."""

    as_of: str  # the run's date, YYYY-MM-DD
    archived: int = 0
    archived_care_leavers: int = 0
    archived_shielded: int = 0
    shields_removed: int = 0
    council_records_archived: int = 0
    council_records_expired: int = 0  # a council's adult row of a child kept as a care leaver
    purged: int = 0
    purged_rows: int = 0  # rows deleted from every table for purged children, archive included
    access_log_blanked: int = 0
    # False when a purge's rows may still sit in PostgreSQL's files (see scrub_free_space).
    free_space_scrubbed: bool = True

    def to_dict(self) -> dict:
        """Return the counts as a plain dict (for XCom and the CLI)."""
        return asdict(self)


def month_of(day: dt.date | str) -> str:
    """Return the "YYYY-MM" month of a date (or of an ISO date or timestamp string)."""
    return day.strftime("%Y-%m") if isinstance(day, dt.date) else str(day)[:7]


def add_years(month: str, years: int) -> str:
    """Return the "YYYY-MM" month `years` later."""
    return f"{int(month[:4]) + years:04d}{month[4:7]}"


def archive_months(dates_of_birth: pd.Series, care_leaver: pd.Series) -> pd.Series:
    """Return each child's archive month: when they turn 18, or 25 for a care leaver.

    Args:
        dates_of_birth: validated dates of birth as "YYYY-MM-DD" strings.
        care_leaver: the extract's Y/N care-leaver column (anything but "Y" means no).

    Returns:
        "YYYY-MM" strings (<NA> where the date of birth is not a date). Only the month is kept:
        the first day of the birthday's month is never after the birthday, so no adult is held.
    """
    text = dates_of_birth.astype("string").str.strip()
    year = pd.to_numeric(text.str.slice(0, 4), errors="coerce").astype("Int64")
    month = pd.to_numeric(text.str.slice(5, 7), errors="coerce").astype("Int64")
    valid = text.str.fullmatch(r"\d{4}-\d{2}-\d{2}").fillna(False) & month.between(1, 12)
    leaver = care_leaver.astype("string").str.strip().eq("Y").fillna(False)  # as `coarsen` reads it
    age = pd.Series(ARCHIVE_AGE, index=text.index).where(~leaver, CARE_LEAVER_ARCHIVE_AGE)
    out = (year + age).astype("string").str.zfill(4) + "-" + month.astype("string").str.zfill(2)
    return out.where(valid.astype(bool), pd.NA).astype("string")


def effective_archive_month(contributions: Sequence[tuple[str | None, bool | None]]) -> str | None:
    """Return a child's archive month from their (archive_on, care_leaver) contributions.

    The reference for `_due_for_archive`'s SQL: the earliest care-leaver month if any council
    flags a care leaver, else the earliest month; None when no contribution has a month.
    """
    leaver = [m for m, c in contributions if m and c is True]
    every = [m for m, _ in contributions if m]
    return min(leaver or every) if every else None


def apply_retention(store: IndexStore, today: dt.date) -> RetentionOutcome:
    """Archive children whose archive month has come and purge archive rows 6 years on.

    Safe to re-run for the same day (a second run finds nothing to do, and records that).

    Args:
        store: the index.
        today: the run's date (the DAG's logical date; the CLI's --today), never the clock here.

    Returns:
        Counts of what was archived and purged.
    """
    month = month_of(today)
    with store.engine.begin() as conn:
        if conn.dialect.name == "sqlite":
            # Deleted cells are overwritten with zeros, not left in the file's free space.
            conn.exec_driver_sql("PRAGMA secure_delete = ON")
        store.lock_key_state(conn)  # serialise with loads and key rotation
        archived = archive_due(store, conn, today)
        purged = _purge_due(store, conn, month)
        outcome = RetentionOutcome(today.isoformat(), **archived, **purged)
        store._audit(
            conn,
            "retention_purge",
            None,
            {
                "as_of": outcome.as_of,
                "purged": outcome.purged,
                "rows_deleted": outcome.purged_rows,
                "access_log_blanked": outcome.access_log_blanked,
            },
        )
    if outcome.purged:
        outcome = replace(outcome, free_space_scrubbed=scrub_free_space(store))
    return outcome


def _due_for_archive(
    store: IndexStore, conn: sa.Connection, month: str
) -> list[tuple[str, str, bool]]:
    """Return (pseudonym, archive month, care leaver) of every child due by `month`."""
    rec = store.t["council_record"]
    if "care_leaver" in rec.c:
        leaver_month = sa.case((rec.c.care_leaver.is_(True), rec.c.archive_on))
        effective = sa.func.coalesce(sa.func.min(leaver_month), sa.func.min(rec.c.archive_on))
        leaver = sa.func.count(leaver_month) > 0
    else:  # a policy without the flag: everyone at 18
        effective = sa.func.min(rec.c.archive_on)
        leaver = sa.false()
    # Only children with some month already come can be due: the index on archive_on finds them.
    candidates = sa.select(rec.c.child_pseudonym).where(rec.c.archive_on <= month)
    stmt = (
        sa.select(rec.c.child_pseudonym, effective, leaver)
        .where(rec.c.child_pseudonym.in_(candidates))
        .group_by(rec.c.child_pseudonym)
        .having(effective <= month)
        .order_by(rec.c.child_pseudonym)
    )
    return [(p, m, bool(c)) for p, m, c in conn.execute(stmt)]


def archive_due(
    store: IndexStore, conn: sa.Connection, as_of: dt.date, trigger: str = "retention"
) -> dict[str, int]:
    """Move every child whose archive month has come by `as_of` to `archive`, with its audit event.

    Called by `apply_retention` (as of the run's date) and by every children load (as of the
    extract's date, before its rows are applied), so a child is archived whichever comes first on
    the first day of the month, and never just dropped by a load that arrives before the run.

    Args:
        store: the index.
        conn: the caller's transaction (which holds the key-state lock).
        as_of: the date the archive months are compared with (by month).
        trigger: "retention" or "load", recorded in the audit event.

    Returns:
        Counts (RetentionOutcome's archive fields). The audit event is written on every run
        (`trigger="retention"`, even with nothing to do) and on a load that changed anything.
    """
    idx, rec, shield = store.t["child_index"], store.t["council_record"], store.t["shield"]
    due = _due_for_archive(store, conn, month_of(as_of))
    counts: Counter[str] = Counter()
    by_council: Counter[str] = Counter()
    for start in range(0, len(due), _CHUNK):
        chunk = {p: (m, leaver) for p, m, leaver in due[start : start + _CHUNK]}
        names = sorted(chunk)
        rows = conn.execute(
            sa.select(
                idx.c.child_pseudonym,
                idx.c.pseudonym_kind,
                idx.c.key_version,
                idx.c.responsible_council,
                idx.c.shielded,
            ).where(idx.c.child_pseudonym.in_(names))
        ).mappings()
        records = []
        for row in rows:
            archive_on, leaver = chunk[row["child_pseudonym"]]
            records.append(
                {
                    "child_pseudonym": row["child_pseudonym"],
                    "pseudonym_kind": row["pseudonym_kind"],
                    "key_version": row["key_version"],
                    "responsible_council": row["responsible_council"],
                    "shielded": bool(row["shielded"]),
                    "archive_on": archive_on,
                    # The day the rule took the child out, not the run's: the same set of
                    # extracts gives the same archive whichever run or load moved them.
                    "archived_on": f"{archive_on}-01",
                    "purge_on": add_years(archive_on, PURGE_AFTER_YEARS),
                }
            )
            counts["archived_care_leavers"] += int(leaver)
            counts["archived_shielded"] += int(bool(row["shielded"]))
            by_council[row["responsible_council"]] += 1
        # A child already archived (a record re-created by hand) keeps the first archive row.
        store._insert(conn, "archive", records, ignore=True)
        counts["archived"] += len(records)
        counts["council_records_archived"] += int(
            store.delete_council_rows(conn, rec.c.child_pseudonym.in_(names))
        )
        counts["shields_removed"] += int(
            conn.execute(shield.delete().where(shield.c.child_pseudonym.in_(names))).rowcount or 0
        )
        conn.execute(idx.delete().where(idx.c.child_pseudonym.in_(names)))
    # Children kept by another council's care-leaver flag: a contribution whose own month has
    # come (that council's data says an adult, not a care leaver) goes, as it would at load.
    month = month_of(as_of)
    kept = sorted(
        set(
            conn.execute(
                sa.select(rec.c.child_pseudonym).where(rec.c.archive_on <= month)
            ).scalars()
        )
    )
    if kept:
        counts["council_records_expired"] += int(
            store.delete_council_rows(conn, rec.c.archive_on <= month)
        )
        store._recompute(conn, kept)
    names = (
        "archived",
        "archived_care_leavers",
        "archived_shielded",
        "shields_removed",
        "council_records_archived",
        "council_records_expired",
    )
    out = {k: int(counts[k]) for k in names}
    if trigger == "retention" or out["archived"] or out["council_records_expired"]:
        detail = {
            "as_of": as_of.isoformat(),
            "trigger": trigger,
            "archived": out["archived"],
            "care_leavers": out["archived_care_leavers"],
            "shielded": out["archived_shielded"],
            "shields_removed": out["shields_removed"],
            "council_records_removed": out["council_records_archived"],
            "council_records_expired": out["council_records_expired"],
            "by_council": dict(sorted(by_council.items())),
        }
        store._audit(conn, "retention_archive", None, detail)
    return out


def _purge_due(store: IndexStore, conn: sa.Connection, month: str) -> dict[str, int]:
    arc, log = store.t["archive"], store.t["access_log"]
    due = sorted(
        conn.execute(sa.select(arc.c.child_pseudonym).where(arc.c.purge_on <= month)).scalars()
    )
    rows = blanked = 0
    for start in range(0, len(due), _CHUNK):
        names = due[start : start + _CHUNK]
        for name in PURGED_TABLES[:-1]:  # access_log keeps its rows, blanked below
            tbl = store.t[name]
            rows += int(
                conn.execute(tbl.delete().where(tbl.c.child_pseudonym.in_(names))).rowcount or 0
            )
        # The look-ups stay counted (time, outcome); who was looked up, and why, goes.
        blanked += int(
            conn.execute(
                log.update()
                .where(log.c.child_pseudonym.in_(names))
                .values(child_pseudonym=PURGED_MARKER, reason=PURGED_MARKER)
            ).rowcount
            or 0
        )
    return {"purged": len(due), "purged_rows": rows, "access_log_blanked": blanked}


def scrub_free_space(store: IndexStore, wait_seconds: float = 300.0) -> bool:
    """Leave no deleted row readable in the database's files (run after a purge commits).

    Earlier loads deleted rows without scrubbing (a snapshot replaces a council's rows), so
    copies of a purged pseudonym may sit in free space of any table that held it. SQLite: VACUUM
    rebuilds the file from live rows only, then the WAL, if any, is checkpointed and truncated.
    PostgreSQL: a plain VACUUM leaves dead tuples' bytes in heap and index pages (only marked
    reusable), so each table is rewritten with VACUUM FULL, which takes an exclusive lock on it
    for the rewrite: look-ups and loads wait, once a month at most (purge months come monthly).
    VACUUM FULL keeps a deleted row that a snapshot older than its deletion could still see,
    so it first waits (up to `wait_seconds`) for every such snapshot in the database to end.
    What the server keeps outside its tables (WAL segments until recycled, WAL archives,
    backups) follows their own retention.

    Returns:
        False when an older snapshot outlived the wait: the purged rows may still sit in the
        tables' files until the next purge's scrub (logged).
    """
    with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql("VACUUM")
            if conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal":
                conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            return True
        clear = _older_snapshots_ended(conn, wait_seconds)
        if not clear:
            log.warning(
                "retention: another session held a snapshot from before the purge for over "
                "%s s; VACUUM FULL may keep the purged rows' old versions until the next purge",
                wait_seconds,
            )
        preparer = conn.dialect.identifier_preparer
        for name in PURGED_TABLES:
            conn.exec_driver_sql(f"VACUUM (FULL) {preparer.quote(name)}")
        return clear


def _older_snapshots_ended(conn: sa.Connection, wait_seconds: float) -> bool:
    """Wait until no other session of this database has a snapshot older than now.

    `now` is a fresh transaction id taken after the purge committed; a session whose oldest
    snapshot (`backend_xmin`) or own transaction (`backend_xid`, which holds VACUUM's horizon
    back even between statements) precedes it may still see the purged rows. Ages are
    compared, not raw ids, so wraparound does not matter.
    """
    mark = conn.execute(sa.text("SELECT mod(txid_current(), 4294967296)")).scalar()
    older = sa.text(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND pid <> pg_backend_pid() AND ("
        "age(backend_xmin) >= age(CAST(CAST(:mark AS text) AS xid)) OR "
        "age(backend_xid) >= age(CAST(CAST(:mark AS text) AS xid)))"
    )
    deadline = time.monotonic() + wait_seconds
    while conn.execute(older, {"mark": mark}).scalar():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


__all__ = [
    "ARCHIVE_AGE",
    "CARE_LEAVER_ARCHIVE_AGE",
    "PURGED_MARKER",
    "PURGE_AFTER_YEARS",
    "RetentionOutcome",
    "add_years",
    "apply_retention",
    "archive_due",
    "archive_months",
    "effective_archive_month",
    "month_of",
    "scrub_free_space",
]
