"""Change detection: keyed digests of an extract's lines, so a re-sync costs what changed.

Every data line of a children extract gets a 64-bit keyed digest (BLAKE2b, keyed with a key
derived from the pseudonymisation key, so a digest cannot be used to test a guess at a row). The
digest is kept in `council_record` beside the row that line produced. When the same council sends
its next extract, a line whose digest its contribution already holds is unchanged: it is not
parsed, validated, pseudonymised, scanned or rewritten. Only the changed lines go through the
pipeline, and the load deletes only the children that left or changed.

The fast path is taken only when lines and records coincide. A file where a quoted field spans
lines, or whose lines do not split cleanly, is read in full as before; so is a council's first
file, a file whose line count differs from its manifest (the full read gives the reason), and a
council with more than one children extract waiting (each would be compared with the same
earlier state).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

import numpy as np
import pandas as pd

from transforms.pseudonymise import PseudonymKey

_CONTEXT = b"registry-sync row digest v1"


def digest_key(key: PseudonymKey) -> bytes:
    """Derive the row-digest key from the pseudonymisation key (never the key itself)."""
    return hmac.new(key.secret, _CONTEXT, hashlib.sha256).digest()


@dataclass(frozen=True)
class Lines:
    """An extract's lines, when each data line is exactly one record."""

    header: bytes
    body: list[bytes]  # data lines without their line ending
    newline: bytes  # b"\n" or b"\r\n"
    digests: np.ndarray  # int64, one per data line
    forced: np.ndarray  # bool: lines that must be read whatever their digest

    def __len__(self) -> int:
        return len(self.body)


def split_lines(data: bytes, key: PseudonymKey) -> Lines | None:
    """Split extract bytes into lines and digest each, or None when lines are not records.

    Lines that are read whatever their digest (`forced`): a line whose first field (the local
    child id) is quoted or appears more than once, so that the uniqueness rules see every line
    involved.
    """
    newline = b"\r\n" if b"\r\n" in data[:65536] else b"\n"
    if newline == b"\n" and b"\r" in data:
        return None  # mixed or old Mac line endings: the full read says what is wrong
    lines = data.split(newline)
    if lines and lines[-1] == b"":
        lines.pop()
    if len(lines) < 2:
        return None
    header, body = lines[0], lines[1:]
    if b'"' in header:
        return None
    quoted = [i for i, line in enumerate(body) if b'"' in line]
    if any(body[i].count(b'"') % 2 for i in quoted):
        return None  # a quoted field holds a line break: lines are not records
    k = digest_key(key)
    b2 = hashlib.blake2b
    digests = np.frombuffer(
        b"".join([b2(line, key=k, digest_size=8).digest() for line in body]), dtype="<i8"
    ).copy()
    # The local child id comes first; a quoted one may hide a comma, so such lines are read
    # again, and the cheap split can only make more lines look duplicated, never fewer.
    first = pd.Series(
        [line.split(b",", 1)[0].strip().strip(b'"').strip() for line in body], dtype=object
    )
    forced = np.array(first.duplicated(keep=False), dtype=bool)
    forced[[i for i in quoted if body[i].startswith(b'"')]] = True
    return Lines(header, body, newline, digests, forced)


@dataclass(frozen=True)
class ChangePlan:
    """Which lines of an extract changed since the council's contribution in the index."""

    changed: np.ndarray  # positions (0-based data lines) to read and process
    unchanged: np.ndarray  # positions whose rows the index already holds
    unchanged_pseudonyms: pd.Series  # the children of the unchanged lines, indexed by position
    refused_again: pd.Series  # rules of unchanged lines refused last time, indexed by position
    refused_pseudonyms: pd.Series  # their child, where remembered (opted-out lines), same index
    base_sha256: str | None  # the council's newest loaded children file the plan compares with


def plan_changes(
    lines: Lines,
    previous: pd.DataFrame,
    base_sha256: str | None,
    refused: pd.DataFrame | None = None,
) -> ChangePlan:
    """Compare an extract's line digests with what the council's contribution holds.

    Args:
        lines: the extract's lines (`split_lines`).
        previous: the council's `council_record` rows: child_pseudonym and row_digest.
        base_sha256: the checksum of the council's newest loaded children file.
        refused: the council's remembered refused lines: row_digest and rules.

    Returns:
        The plan: changed, unchanged and refused-again positions; the unchanged lines' children.
    """
    known = pd.Series(
        previous["child_pseudonym"].to_numpy(), index=previous["row_digest"].astype("int64")
    )
    known = known[~known.index.duplicated(keep=False)]
    hit = np.isin(lines.digests, known.index.to_numpy()) & ~lines.forced
    unchanged = np.flatnonzero(hit)
    pseudonyms = pd.Series(
        known.reindex(lines.digests[unchanged]).to_numpy(), index=unchanged, dtype=object
    )
    if refused is None or refused.empty:
        again = pd.Series([], dtype="str")
        whose = pd.Series([], dtype=object)
    else:
        refused = refused.drop_duplicates("row_digest")
        refused.index = pd.Index(refused["row_digest"].astype("int64").to_numpy())
        seen = np.isin(lines.digests, refused.index.to_numpy()) & ~lines.forced & ~hit
        at = np.flatnonzero(seen)
        found = refused.reindex(lines.digests[at])
        again = pd.Series(found["rules"].astype(str).to_numpy(), index=at, dtype="str")
        column = found.get("child_pseudonym")
        whose = pd.Series(None if column is None else column.to_numpy(), index=at, dtype=object)
        hit = hit | seen
    return ChangePlan(np.flatnonzero(~hit), unchanged, pseudonyms, again, whose, base_sha256)


def subset_bytes(lines: Lines, positions: np.ndarray) -> bytes:
    """Return the header and the given data lines as a CSV of their own."""
    chosen = [lines.header, *(lines.body[i] for i in positions)]
    return lines.newline.join(chosen) + lines.newline


__all__ = ["ChangePlan", "Lines", "digest_key", "plan_changes", "split_lines", "subset_bytes"]
