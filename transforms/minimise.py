"""Minimise: keep only the fields the policy allows, each at the policy's coarseness."""

from __future__ import annotations

import pandas as pd

from transforms.contract import YES_NO_COLUMNS
from transforms.identifiers import postcode_district
from transforms.policy import Policy
from transforms.retention import archive_months

# Columns every index row carries besides the policy's attribute fields.
KEY_COLUMNS = ("child_pseudonym", "pseudonym_kind", "key_version", "council_code", "shielded")
# Staged with each row for the council's contribution only, never in `child_index`: the month the
# child is archived (transforms/retention.py), worked out while the date of birth is at hand.
RETENTION_COLUMNS = ("archive_on",)


def _split_services(values: pd.Series) -> pd.Series:
    return values.astype("string").fillna("").str.upper().str.replace(" ", "").str.split(";")


def coarsen(values: pd.Series, how: str, policy: Policy, source: str = "") -> pd.Series:
    """Coarsen one source column as the policy says.

    Args:
        values: the source column as read (strings).
        how: a coarsening named in `policy.COARSENINGS`.
        policy: the policy (for the service code list).
        source: the source column's name (Y/N flag columns become booleans).

    Returns:
        The coarsened column; blanks become <NA>.
    """
    text = values.astype("string").fillna("").str.strip()
    blank = text.eq("")
    if how == "none":
        if source in YES_NO_COLUMNS:
            return text.map({"Y": True, "N": False}).astype("boolean").where(~blank)
        return text.where(~blank)
    if how == "year":
        return pd.to_numeric(text.str.slice(0, 4), errors="coerce").astype("Int64")
    if how == "postcode_district":
        return postcode_district(text).astype("string")
    sensitive = policy.sensitive_codes
    known = set(policy.services)
    codes = _split_services(text)
    if how == "non_sensitive_services":
        kept = codes.map(lambda cs: ";".join(sorted({c for c in cs if c in known} - sensitive)))
        return kept.astype("string").replace("", pd.NA)
    if how == "any_sensitive_service":
        return codes.map(lambda cs: any(c in sensitive for c in cs)).astype("boolean")
    raise ValueError(f"unknown coarsening {how!r}")


def minimise(frame: pd.DataFrame, policy: Policy, council_code: str) -> pd.DataFrame:
    """Build index-bound rows: pseudonym columns plus the policy's fields, nothing else.

    Args:
        frame: validated, pseudonymised rows (still holding the source columns).
        policy: the minimisation policy.
        council_code: the council whose extract this is.

    Returns:
        A new frame with `KEY_COLUMNS`, `policy.field_names`, then `RETENTION_COLUMNS`; no
        identifier, name, address, contact, free text or date of birth survives.
    """
    out = pd.DataFrame(index=frame.index)
    out["child_pseudonym"] = frame["child_pseudonym"].astype("string")
    out["pseudonym_kind"] = frame["pseudonym_kind"].astype("string")
    out["key_version"] = frame["key_version"].astype("string")
    out["council_code"] = council_code
    out["shielded"] = frame["shielded"].astype("string").str.strip().str.upper().eq("Y")
    for rule in policy.fields:
        out[rule.name] = coarsen(frame[rule.source], rule.coarsen, policy, rule.source)
    out["archive_on"] = archive_months(frame["date_of_birth"], frame["care_leaver"])
    return out.reset_index(drop=True)
