"""Key rotation: move every pseudonym in the index from the current key to a new one, atomically.

Why this design. A pseudonym is HMAC-SHA256(key, NHS number) (or of council|local id), and the
index holds only pseudonyms, so a new pseudonym cannot be computed from the index: it needs the
identifier, which lives only in the councils' extracts. Two ways exist:

(a) re-pseudonymise from source: read the extracts again and compute each child's pseudonym under
    the new key;
(b) keep, apart from the index, a translation made at load time (old pseudonym -> identifier, or
    -> pseudonym under a standby key).

(b) means a second, permanent store that links pseudonyms back to identifiers (or to the next
key's pseudonyms): it defeats the point of rotating (whoever takes that store with the old key
links everything) and it is one more copy of every child. So we take (a), in the form that keeps
the index exact: the extracts already loaded are kept intact in `processed/<council>/` (and any
loaded but not yet moved are still in `landing/`); the rotation reads them, newest first, computes
for every row the pseudonym under the current key *and* under the new key, and so builds a
translation old -> new in memory only, for the pseudonyms the index holds (it stops reading once
all are covered). Inside one database transaction it then rewrites every
index table through that translation and records the new key version. Re-running the whole
pipeline from source would also work, but it would lose what is not in any extract: explicit,
audited opt-out withdrawals and unshields, and the arrival history the responsible council is
chosen from. Translating keeps the index exactly as it was, only re-keyed.

The guarantees and how they are kept:
- No pseudonym under the old key remains in `child_index`, `council_record`, `shield`, `optout`,
  `archive`: every row is rewritten (`archive_on` and the archive's months are kept), and the
  index's `key_state` row carries the new version. Purged look-ups (`PURGED_MARKER`) stay as they
  are.
- Fail safe: if any pseudonym in those tables has no translation (its source file is gone), the
  rotation refuses and nothing changes. A shield or an opt-out is never dropped by a rotation.
- No child lost or duplicated: the translation is checked to be one-to-one on what the index
  holds, and every table's row count is checked unchanged before commit.
- Concurrent loads: the rotation takes the `key_state` lock first (a row lock on PostgreSQL, the
  database write lock on SQLite), which every load also takes first. A load that arrives during
  the rotation waits (or, on SQLite, times out and is retried); once it gets the lock it sees the
  new key version, and a file pseudonymised under the old key is refused with
  `KeyVersionMismatch` without writing anything. The file is still in the drop zone, so the next
  run processes it under the new key. No duplicates either way.
- The file ledger holds checksums, not pseudonyms, and stays: a file loaded before the rotation is
  in the index (translated) and is still "already loaded" after it.
- Opt-out registers are re-keyed like the rest (their sources are in `processed/` too); the
  national register's local ids are scoped as at load time.
- The access log keeps every look-up (time, reason, outcome). A look-up of a child we can
  translate is re-keyed, so "who looked at this child" still works; a look-up of a child no
  source knows (an unknown NHS number) is replaced by a marker naming the retired key version:
  leaving it would keep an old-key pseudonym that, with a leaked old key, reveals who was looked
  up. The audit ledger holds counts only and is kept; the rotation adds an event with counts.

After the rotation the operator replaces the key (Airflow connection, key file) with the new one;
until then every load is refused with a message that says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import sqlalchemy as sa

from transforms.contract import MANIFEST_SUFFIX, extract_name_for
from transforms.ingest import ExtractRefused, parse_extract
from transforms.load import INDEX_TABLES, IndexStore
from transforms.pseudonymise import PseudonymKey, assign_pseudonyms
from transforms.retention import PURGED_MARKER

RETIRED_MARKER = (
    "retired-key-"  # access-log pseudonyms no source can translate become this + version
)
_CHUNK = 5000


class RotationRefused(RuntimeError):
    """The rotation cannot complete safely; nothing in the index was changed."""


@dataclass
class RotationOutcome:
    """What a rotation did, in counts (never a pseudonym)."""

    status: str  # "rotated" or "already_rotated"
    old_version: str
    new_version: str
    sources_read: int = 0
    sources_unreadable: int = 0
    rows: dict[str, int] = field(default_factory=dict)  # rows re-keyed per table
    access_log_rekeyed: int = 0
    access_log_retired: int = 0


def find_sources(landing: Path, processed: Path) -> list[tuple[str, Path, Path]]:
    """Return (folder, extract, manifest) of every extract in processed/ or landing/, newest first.

    processed/ holds <folder>/<sha prefix>/<file> pairs; landing/ holds <folder>/<file> pairs.
    """
    found = []
    for root, depth in ((processed, 2), (landing, 1)):
        if not root.is_dir():
            continue
        pattern = "/".join(["*"] * depth) + "/*" + MANIFEST_SUFFIX
        for manifest in sorted(root.glob(pattern)):
            folder = manifest.relative_to(root).parts[0]
            extract = manifest.with_name(extract_name_for(manifest.name))
            if extract.is_file() and not extract.is_symlink():
                found.append((folder, extract, manifest))
    # Newest first: the latest extracts cover most of the index, so reading can stop early.
    return sorted(found, key=lambda s: (-s[1].stat().st_mtime, str(s[1])))


def translation_for(
    frame: pd.DataFrame, council_code: str, old_key: PseudonymKey, new_key: PseudonymKey
) -> dict[str, str]:
    """Return {pseudonym under old_key: pseudonym under new_key} for every identifiable row.

    Args:
        frame: rows of a children extract or an opt-out register (`nhs_number`, `local_child_id`).
        council_code: the council the rows came from (scopes local pseudonyms), as at load time.
        old_key: the key the index is under.
        new_key: the key to move to.
    """
    old = assign_pseudonyms(frame, council_code, old_key)["child_pseudonym"]
    new = assign_pseudonyms(frame, council_code, new_key)["child_pseudonym"]
    both = old.notna() & new.notna()
    return dict(zip(old[both].tolist(), new[both].tolist(), strict=True))


def build_translation(
    sources: list[tuple[str, Path, Path]],
    old_key: PseudonymKey,
    new_key: PseudonymKey,
    wanted: set[str] | None = None,
) -> tuple[dict[str, str], int, int]:
    """Read source extracts and return the old -> new translation, files read and unreadable.

    Args:
        sources: (folder, extract, manifest) triples, as `find_sources` returns them.
        old_key: the key the index is under.
        new_key: the key to move to.
        wanted: if given, keep only these old pseudonyms (memory follows the index, not the
            history) and stop reading once all of them are translated.

    An unreadable source is skipped: if the index holds a pseudonym only it could translate, the
    rotation refuses later, so skipping can never lose a child silently.
    """
    translation: dict[str, str] = {}
    read = unreadable = 0
    for folder, extract, manifest in sources:
        if wanted is not None and len(translation) == len(wanted):
            break
        try:
            parsed, frame = parse_extract(
                extract.read_bytes(), manifest.read_bytes(), folder, extract.name
            )
        except (ExtractRefused, OSError, ValueError):
            unreadable += 1
            continue
        read += 1
        found = translation_for(frame, parsed.council_code, old_key, new_key)
        if wanted is not None:
            found = {old: new for old, new in found.items() if old in wanted}
        translation.update(found)
    return translation, read, unreadable


def rotate_key(
    store: IndexStore,
    landing: Path,
    processed: Path,
    old_key: PseudonymKey,
    new_key: PseudonymKey,
) -> RotationOutcome:
    """Re-key the whole index from `old_key` to `new_key` in one transaction.

    Args:
        store: the index.
        landing: the drop zone (extracts loaded but not yet moved may still be there).
        processed: where loaded extracts are kept, processed/<council>/<sha prefix>/.
        old_key: the key the index is under now.
        new_key: the key to move to.

    Returns:
        Counts of what was re-keyed; "already_rotated" when the index is already under new_key
        (so a retried rotation is harmless).

    Raises:
        RotationRefused: the keys are the same, the index is under neither key, or some
            pseudonym (a child, a shield, an opt-out) has no source to translate it from.
    """
    if old_key.version == new_key.version:
        raise RotationRefused("the new key is the current key; make a new one to rotate to")
    outcome = RotationOutcome("rotated", old_key.version, new_key.version)
    with store.engine.begin() as conn:
        current = store.lock_key_state(conn)
        if current == new_key.version:
            outcome.status = "already_rotated"
            return outcome
        if current is not None and current != old_key.version:
            raise RotationRefused(
                f"the index is under key version {current}, not {old_key.version} (the current "
                "key given) nor the new one: give the key the index was loaded with"
            )
        # Sources are read under the lock, so no load can add a pseudonym they do not cover.
        held = _held_pseudonyms(store, conn)
        wanted = held | _logged_pseudonyms(store, conn)
        translation, outcome.sources_read, outcome.sources_unreadable = build_translation(
            find_sources(landing, processed), old_key, new_key, wanted
        )
        _check_translatable(store, conn, translation, old_key.version)
        before = _row_counts(store, conn)
        if len({translation[p] for p in held}) != len(held):
            raise RotationRefused("two children would share a pseudonym under the new key")

        scratch = sa.MetaData()
        tr = sa.Table(
            "rotation_translation",
            scratch,
            sa.Column("old", sa.String(64), primary_key=True),
            sa.Column("new", sa.String(64), nullable=False),
            prefixes=["TEMPORARY"],
        )
        tr.create(conn)
        needed = sorted(translation)
        for start in range(0, len(needed), _CHUNK):
            conn.execute(
                tr.insert(),
                [{"old": p, "new": translation[p]} for p in needed[start : start + _CHUNK]],
            )
        # Line digests are keyed by a key derived from the old one: no line matches them now,
        # and the refused-line memory holds old pseudonyms. Forget it; the next extract of each
        # council is read in full once.
        conn.execute(store.t["refused_line"].delete())
        conn.execute(store.t["council_digest_set"].delete())  # old-key digests, as above
        for name in INDEX_TABLES:
            tbl = store.t[name]
            new_value = (
                sa.select(tr.c.new).where(tr.c.old == tbl.c.child_pseudonym).scalar_subquery()
            )
            values = {"child_pseudonym": new_value}
            if "key_version" in tbl.c:
                values["key_version"] = new_key.version
            outcome.rows[name] = int(conn.execute(tbl.update().values(**values)).rowcount or 0)
        log = store.t["access_log"]
        known = sa.exists().where(tr.c.old == log.c.child_pseudonym)
        outcome.access_log_rekeyed = int(
            conn.execute(
                log.update()
                .where(known)
                .values(
                    child_pseudonym=sa.select(tr.c.new)
                    .where(tr.c.old == log.c.child_pseudonym)
                    .scalar_subquery()
                )
            ).rowcount
            or 0
        )
        retired = RETIRED_MARKER + old_key.version
        outcome.access_log_retired = int(
            conn.execute(
                log.update()
                .where(
                    ~known,
                    ~log.c.child_pseudonym.startswith(RETIRED_MARKER),
                    log.c.child_pseudonym != PURGED_MARKER,
                )
                .values(child_pseudonym=retired)
            ).rowcount
            or 0
        )
        tr.drop(conn)
        _check_rotated(store, conn, before, old_key.version, new_key.version)
        store.set_key_version(conn, new_key.version)
        store._audit(
            conn,
            "key_rotation",
            None,
            {
                "old_version": old_key.version,
                "new_version": new_key.version,
                "sources_read": outcome.sources_read,
                "sources_unreadable": outcome.sources_unreadable,
                "access_log_rekeyed": outcome.access_log_rekeyed,
                "access_log_retired": outcome.access_log_retired,
                **{f"rows_{k}": v for k, v in outcome.rows.items()},
            },
        )
    return outcome


def _held_pseudonyms(store: IndexStore, conn: sa.Connection) -> set[str]:
    held: set[str] = set()
    for name in INDEX_TABLES:
        held |= set(conn.execute(sa.select(store.t[name].c.child_pseudonym).distinct()).scalars())
    return held


def _logged_pseudonyms(store: IndexStore, conn: sa.Connection) -> set[str]:
    log = store.t["access_log"]
    stmt = sa.select(log.c.child_pseudonym).where(
        ~log.c.child_pseudonym.startswith(RETIRED_MARKER), log.c.child_pseudonym != PURGED_MARKER
    )
    return set(conn.execute(stmt.distinct()).scalars())


def _check_translatable(
    store: IndexStore, conn: sa.Connection, translation: dict[str, str], old_version: str
) -> None:
    """Refuse unless every pseudonym of every index table, under the old key, can be translated."""
    problems = []
    for name in INDEX_TABLES:
        tbl = store.t[name]
        if "key_version" in tbl.c:
            other = conn.execute(
                sa.select(sa.func.count()).where(tbl.c.key_version != old_version)
            ).scalar()
            if other:
                problems.append(f"{other} row(s) of {name} are under another key version")
        pseudonyms = set(conn.execute(sa.select(tbl.c.child_pseudonym).distinct()).scalars())
        missing = len(pseudonyms - translation.keys())
        if missing:
            problems.append(f"{missing} pseudonym(s) of {name} have no source extract")
    if problems:
        raise RotationRefused(
            "key rotation refused, nothing changed: "
            + "; ".join(problems)
            + ". Every child, shield and opt-out must be carried over: restore the missing "
            "extracts or registers into processed/<council>/ and run the rotation again"
        )


def _row_counts(store: IndexStore, conn: sa.Connection) -> dict[str, int]:
    return {
        name: int(conn.execute(sa.select(sa.func.count()).select_from(store.t[name])).scalar())
        for name in (*INDEX_TABLES, "access_log")
    }


def _check_rotated(
    store: IndexStore,
    conn: sa.Connection,
    before: dict[str, int],
    old_version: str,
    new_version: str,
) -> None:
    """Refuse (roll back) unless every table kept its rows and none is left under the old key."""
    after = _row_counts(store, conn)
    if after != before:
        raise RotationRefused(f"row counts changed during rotation ({before} -> {after})")
    for name in ("child_index", "council_record"):
        tbl = store.t[name]
        left = conn.execute(
            sa.select(sa.func.count()).where(tbl.c.key_version != new_version)
        ).scalar()
        if left:
            raise RotationRefused(f"{left} row(s) of {name} still under key {old_version}")


__all__ = [
    "RETIRED_MARKER",
    "RotationOutcome",
    "RotationRefused",
    "build_translation",
    "find_sources",
    "rotate_key",
    "translation_for",
]
