"""Look-up: what a practitioner sees for one NHS number, and the access log every look-up writes.

Opted-out and unknown children are indistinguishable ("not found"); a shielded child shows only
which council to contact. The access log keeps the pseudonym, the reason and the time, never the
NHS number.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pandas as pd
import sqlalchemy as sa

from transforms.load import KEY_STATE_ID, IndexStore
from transforms.pseudonymise import PseudonymKey, pseudonymise_nhs_numbers

MIN_REASON_CHARS = 10


class LookupRefused(ValueError):
    """The look-up cannot be made; the message says why, without echoing the number."""


def lookup_child(
    store: IndexStore, key: PseudonymKey, nhs_number: str, reason: str, at: datetime | None = None
) -> dict:
    """Return what a practitioner may see for one child, and log the access.

    Args:
        store: the index.
        key: the pseudonymisation key (the same that made the index).
        nhs_number: the NHS number asked about, in any spacing.
        reason: why the practitioner asks; required, kept in the access log.
        at: the time of the look-up (default now, UTC).

    Returns:
        {"result": "found", "child": {...minimised row...}}, or {"result": "shielded",
        "message": "shielded: contact council E..."}, or {"result": "not found"}.

    Raises:
        LookupRefused: the reason is missing or too short, the number is not a valid NHS
            number, or the key is not the one the index is under (a rotation has run).
    """
    if len(reason.strip()) < MIN_REASON_CHARS:
        raise LookupRefused(
            f"give the reason for the look-up (at least {MIN_REASON_CHARS} "
            "characters); it is kept in the access log"
        )
    pseudonym = pseudonymise_nhs_numbers(pd.Series([nhs_number], dtype="string"), key).iloc[0]
    if pd.isna(pseudonym):
        raise LookupRefused(
            "that is not a valid NHS number (10 digits passing the Modulus 11 check)"
        )
    idx, ks = store.t["child_index"], store.t["key_state"]
    with store.engine.begin() as conn:
        # One transaction: the key version and the row are read from the same state of the index,
        # so a look-up during a rotation sees the index wholly before or wholly after it.
        version = conn.execute(sa.select(ks.c.key_version).where(ks.c.id == KEY_STATE_ID)).scalar()
        if version is not None and version != key.version:
            raise LookupRefused(
                f"the index is under key version {version} and this key is version "
                f"{key.version}: a key rotation has run; look up with the current key "
                "(nothing was looked up or logged)"
            )
        row = (
            conn.execute(sa.select(idx).where(idx.c.child_pseudonym == pseudonym))
            .mappings()
            .first()
        )
        if row is None:
            answer: dict = {"result": "not found"}
        elif row["shielded"]:
            answer = {
                "result": "shielded",
                "message": f"shielded: contact council {row['responsible_council']}",
            }
        else:
            answer = {
                "result": "found",
                "child": {k: v for k, v in row.items() if k not in ("key_version",)},
            }
        conn.execute(
            store.t["access_log"]
            .insert()
            .values(
                at=(at or datetime.now(UTC)).isoformat(timespec="seconds"),
                child_pseudonym=pseudonym,
                reason=reason.strip(),
                outcome=answer["result"],
            )
        )
    return answer


def audit_entries(store: IndexStore) -> list[dict]:
    """Return the audit ledger, oldest first: events with counts, never identities."""
    ev = store.t["audit_event"]
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(ev).order_by(ev.c.id)).mappings().all()
    return [
        {
            "at": r["at"],
            "event": r["event"],
            "council": r["council_code"],
            **json.loads(r["detail"]),
        }
        for r in rows
    ]
