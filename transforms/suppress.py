"""Suppress: remove opted-out children and strip shielded children down to what may be shown."""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from transforms.policy import Policy


def remove_opted_out(frame: pd.DataFrame, opted_out: Iterable[str]) -> tuple[pd.DataFrame, int]:
    """Drop rows whose pseudonym is on an opt-out register.

    Args:
        frame: index-bound rows with `child_pseudonym`.
        opted_out: pseudonyms of every child who has opted out (any council or national).

    Returns:
        The kept rows and how many were removed.
    """
    if frame.empty:
        return frame, 0
    mask = frame["child_pseudonym"].isin(pd.Index(list(opted_out), dtype="string"))
    return frame.loc[~mask].reset_index(drop=True), int(mask.sum())


def strip_shielded(
    frame: pd.DataFrame, policy: Policy, also_shielded: Iterable[str] = ()
) -> tuple[pd.DataFrame, int]:
    """Blank every field the policy marks `shielded: drop` for shielded children.

    Args:
        frame: index-bound rows with `child_pseudonym` and `shielded`.
        policy: the minimisation policy.
        also_shielded: pseudonyms shielded by any source before (shielding is sticky: an extract
            without the flag never unshields a child).

    Returns:
        The rows, with `shielded` set for sticky shields, and how many rows are shielded.
    """
    if frame.empty:
        return frame, 0
    out = frame.copy()
    sticky = out["child_pseudonym"].isin(pd.Index(list(also_shielded), dtype="string"))
    out["shielded"] = out["shielded"].astype(bool) | sticky
    shielded = out["shielded"]
    for rule in policy.fields:
        if rule.shielded == "drop":
            out[rule.name] = out[rule.name].mask(shielded)
    return out, int(shielded.sum())
