"""Pseudonymise: replace identifiers with keyed HMAC-SHA256 pseudonyms, stable for a given key.

A plain or salted hash of a 10-digit NHS number is reversible by enumerating the ten billion
candidates; a keyed hash is not without the key, which is held apart from the data (ENISA).
Children with a valid NHS number get a national pseudonym that links across councils. Children
without one get a council-scoped pseudonym of (council code, local id) that never links across
councils.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field

import pandas as pd

from transforms.identifiers import nhs_number_is_valid, normalise_nhs_number

NHS_DOMAIN = b"nhs|"
LOCAL_DOMAIN = b"local|"
KIND_NHS = "nhs"
KIND_LOCAL = "local"


@dataclass(frozen=True)
class PseudonymKey:
    """The secret key and its version. The secret never appears in repr, logs or errors."""

    secret: bytes = field(repr=False)
    version: str = ""

    def __post_init__(self) -> None:
        if len(self.secret) < 32:
            raise ValueError("the pseudonymisation key must be at least 32 bytes")
        if not self.version:
            # A version derived from the key: a keyed digest of a constant reveals nothing of it.
            derived = hmac.new(self.secret, b"key-version", hashlib.sha256).hexdigest()[:12]
            object.__setattr__(self, "version", derived)


def _hmac_many(key: PseudonymKey, domain: bytes, messages: list[str]) -> list[str]:
    # Precompute the keyed inner/outer states once; copying them is cheaper than hmac.new per row.
    base = hmac.new(key.secret, domain, hashlib.sha256)
    out = []
    for message in messages:
        h = base.copy()
        h.update(message.encode("utf-8"))
        out.append(h.hexdigest())
    return out


def pseudonymise_nhs_numbers(numbers: pd.Series, key: PseudonymKey) -> pd.Series:
    """Return the national pseudonym of each valid NHS number, <NA> where not valid or blank."""
    digits = normalise_nhs_number(numbers)
    valid = nhs_number_is_valid(digits)
    result = pd.Series(pd.NA, index=numbers.index, dtype="string")
    if valid.any():
        result[valid] = _hmac_many(key, NHS_DOMAIN, digits[valid].tolist())
    return result


def pseudonymise_local_ids(council_code: str, local_ids: pd.Series, key: PseudonymKey) -> pd.Series:
    """Return the council-scoped pseudonym of each local child id."""
    ids = local_ids.astype("string").fillna("").str.strip()
    messages = (council_code + "|" + ids).tolist()
    return pd.Series(_hmac_many(key, LOCAL_DOMAIN, messages), index=local_ids.index, dtype="string")


def assign_pseudonyms(frame: pd.DataFrame, council_code: str, key: PseudonymKey) -> pd.DataFrame:
    """Add `child_pseudonym`, `pseudonym_kind` and `key_version` to rows with identifiers.

    Args:
        frame: rows with `nhs_number` and `local_child_id` columns (children or opt-out file).
        council_code: the council the rows came from (scopes the local pseudonyms).
        key: the pseudonymisation key.

    Returns:
        A copy of `frame` with the three columns added; identifiers are still present and are
        dropped by minimisation.
    """
    national = pseudonymise_nhs_numbers(frame["nhs_number"], key)
    out = frame.copy()
    has_nhs = national.notna()
    local = pd.Series(pd.NA, index=frame.index, dtype="string")
    need_local = ~has_nhs & frame["local_child_id"].astype("string").fillna("").str.strip().ne("")
    if need_local.any():
        local[need_local] = pseudonymise_local_ids(
            council_code, frame.loc[need_local, "local_child_id"], key
        )
    out["child_pseudonym"] = national.fillna(local)
    out["pseudonym_kind"] = pd.Series(KIND_NHS, index=frame.index, dtype="string").where(
        has_nhs, pd.Series(KIND_LOCAL, index=frame.index, dtype="string").where(need_local)
    )
    out["key_version"] = key.version
    return out
