"""Vectorised checks and normalisation of UK identifiers: NHS number, UPN, postcode, URN, ODS code.

Each function takes a pandas Series of strings and returns a Series aligned with it; the rules are
those of `../shared/DOMAIN.md`. `tests/test_identifiers.py` checks them against the field libraries
(`nhs-number`, `python-stdnum`) on many random values.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

NHS_WEIGHTS = np.arange(10, 1, -1, dtype=np.int64)  # digits 1-9 weighted 10, 9, ..., 2
UPN_LETTERS = "ABCDEFGHJKLMNPQRTUVWXYZ"  # 23 letters: check letter and temporary-UPN table
UPN_POSITION_WEIGHTS = np.arange(2, 14, dtype=np.int64)

# Letter rules of the Royal Mail postcode format (not only its shape): first position never
# Q, V or X; second never I, J or Z; third (A9A) only A-H, J, K, P, S, T, U, W; fourth (AA9A) only
# A, B, E, H, M, N, P, R, V, W, X, Y; the inward letters never C, I, K, M, O or V.
_OUT = (
    r"(?:[A-PR-UWYZ][0-9]{1,2}"
    r"|[A-PR-UWYZ][A-HK-Y][0-9]{1,2}"
    r"|[A-PR-UWYZ][0-9][A-HJKPSTUW]"
    r"|[A-PR-UWYZ][A-HK-Y][0-9][ABEHMNPRVWXY])"
)
_IN = r"[0-9][ABD-HJLNP-UW-Z]{2}"
POSTCODE_RE = re.compile(rf"^(?:{_OUT} {_IN}|GIR 0AA)$")
URN_RE = re.compile(r"^[1-9]\d{5}$")
# GP practice ODS codes: one letter, five digits (England), e.g. B86001.
GP_PRACTICE_RE = re.compile(r"^[A-Z]\d{5}$")
ISO_DATE_SHAPE = r"\d{4}-\d{2}-\d{2}"


def parse_iso_dates(values: pd.Series) -> pd.Series:
    """Parse YYYY-MM-DD strings to timestamps; anything else (wrong shape, 2024-02-30) is NaT."""
    text = values
    if not pd.api.types.is_string_dtype(text.dtype) or pd.api.types.is_object_dtype(text.dtype):
        text = text.astype("string")
    shaped = text.str.fullmatch(ISO_DATE_SHAPE).to_numpy(dtype=bool, na_value=False)
    return pd.to_datetime(text.where(shaped), format="%Y-%m-%d", errors="coerce")


def _as_str(values: pd.Series) -> pd.Series:
    return values.astype("string").fillna("")


def normalise_nhs_number(values: pd.Series) -> pd.Series:
    """Strip spaces and hyphens from NHS numbers: "943 476 5919" becomes "9434765919".

    Args:
        values: NHS numbers as written in an extract; blanks allowed.

    Returns:
        The digits only, as strings; blanks stay blank. Validity is `nhs_number_is_valid`'s job.
    """
    return _as_str(values).str.replace(r"[\s-]", "", regex=True)


def nhs_number_is_valid(values: pd.Series) -> pd.Series:
    """Return True where the value is a 10-digit NHS number whose Modulus 11 check digit holds.

    Spaces and hyphens are ignored; a blank is not valid (callers decide whether blank is allowed).
    """
    digits = normalise_nhs_number(values)
    shaped = digits.str.fullmatch(r"\d{10}").fillna(False).to_numpy(dtype=bool)
    result = np.zeros(len(digits), dtype=bool)
    if shaped.any():
        raw = "".join(digits[shaped].tolist()).encode("ascii")
        grid = (np.frombuffer(raw, dtype=np.uint8).reshape(-1, 10) - ord("0")).astype(np.int64)
        check = 11 - (grid[:, :9] @ NHS_WEIGHTS) % 11
        check[check == 11] = 0
        # check == 10 marks an invalid number and can never equal a single digit
        result[shaped] = check == grid[:, 9]
    return pd.Series(result, index=values.index)


def nhs_check_digit(first_nine: str) -> int | None:
    """Return the Modulus 11 check digit for nine digits, or None when no valid number exists."""
    total = sum(int(d) * w for d, w in zip(first_nine, range(10, 1, -1), strict=True))
    check = 11 - total % 11
    if check == 11:
        return 0
    return None if check == 10 else check


def upn_check_letter(body: str) -> str:
    """Return the UPN check letter for the 12 characters after it (last may be a letter)."""
    total = 0
    for position, ch in enumerate(body, start=2):
        value = UPN_LETTERS.index(ch) if ch.isalpha() else int(ch)
        total += value * position
    return UPN_LETTERS[total % 23]


def upn_is_valid(values: pd.Series) -> pd.Series:
    """Return True where the value is a well-formed UPN with the right check letter.

    A permanent UPN is a check letter then 12 digits; a temporary UPN ends in a letter of the
    same 23-letter table instead of the last digit. Blanks are not valid.
    """
    upn = _as_str(values).str.strip().str.upper()
    pattern = rf"[{UPN_LETTERS}]\d{{11}}[0-9{UPN_LETTERS}]"
    shaped = upn.str.fullmatch(pattern).fillna(False).to_numpy(dtype=bool)
    result = np.zeros(len(upn), dtype=bool)
    if shaped.any():
        raw = np.frombuffer("".join(upn[shaped].tolist()).encode("ascii"), dtype=np.uint8)
        grid = raw.reshape(-1, 13).astype(np.int64)
        table = np.full(128, -1, dtype=np.int64)
        table[ord("0") : ord("9") + 1] = np.arange(10)
        for i, letter in enumerate(UPN_LETTERS):
            table[ord(letter)] = i
        values_grid = table[grid[:, 1:]]
        expected = (values_grid @ UPN_POSITION_WEIGHTS) % 23
        result[shaped] = table[grid[:, 0]] == expected
    return pd.Series(result, index=values.index)


def normalise_postcode(values: pd.Series) -> pd.Series:
    """Upper-case, trim and space a postcode as outward code + one space + inward code."""
    compact = _as_str(values).str.upper().str.replace(r"\s+", "", regex=True)
    spaced = compact.str.slice(0, -3) + " " + compact.str.slice(-3)
    return spaced.where(compact.str.len() >= 5, compact)


def postcode_is_valid(values: pd.Series) -> pd.Series:
    """Return True where the normalised value is a UK postcode under the Royal Mail letter rules."""
    normal = normalise_postcode(values)
    return normal.str.fullmatch(POSTCODE_RE.pattern).fillna(False).astype(bool)


def postcode_district(values: pd.Series) -> pd.Series:
    """Return the outward code (postal district, e.g. LS6) of valid postcodes; <NA> elsewhere."""
    normal = normalise_postcode(values)
    return normal.str.split(" ").str[0].where(postcode_is_valid(values))


def postcode_sector(values: pd.Series) -> pd.Series:
    """Return the sector (district + first inward digit, e.g. "LS6 2") of valid postcodes."""
    normal = normalise_postcode(values)
    return normal.str.slice(0, -2).where(postcode_is_valid(values))


def urn_is_valid(values: pd.Series) -> pd.Series:
    """Return True where the value is a 6-digit school Unique Reference Number."""
    return _as_str(values).str.fullmatch(URN_RE.pattern).fillna(False).astype(bool)


def gp_practice_code_is_valid(values: pd.Series) -> pd.Series:
    """Return True where the value has the shape of an English GP practice ODS code."""
    return _as_str(values).str.fullmatch(GP_PRACTICE_RE.pattern).fillna(False).astype(bool)
