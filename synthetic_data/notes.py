"""Free-text notes for a population: mostly harmless, some carrying personal data at known spans.

The PII guard's recall is measured on these: every item of personal data placed in a note is
recorded as {"type", "start", "end"} (Python string offsets, end exclusive). Types follow
Presidio's entity names where one exists.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from synthetic_data import _arrow as A
from synthetic_data.vocab import HARMLESS_NOTES, PII_NOTE_TEMPLATES

# What each template placeholder holds, as the entity type recorded in the ground truth.
PLACEHOLDER_TYPES: dict[str, str] = {
    "carer": "PERSON",
    "child": "PERSON",
    "other": "PERSON",
    "phone": "PHONE_NUMBER",
    "email": "EMAIL_ADDRESS",
    "nhs": "UK_NHS",
    "address": "STREET_ADDRESS",
    "postcode": "UK_POSTCODE",
}
PII_TYPES: tuple[str, ...] = tuple(dict.fromkeys(PLACEHOLDER_TYPES.values()))
_PLACEHOLDER = re.compile(r"\{(\w+)\}")
PREFIX_RATE = 0.3  # share of PII notes that open with a harmless sentence


def _parse(template: str) -> tuple[tuple[bool, str], ...]:
    """Split a template into (is_placeholder, text) segments."""
    segments: list[tuple[bool, str]] = []
    position = 0
    for match in _PLACEHOLDER.finditer(template):
        if match.start() > position:
            segments.append((False, template[position : match.start()]))
        if match.group(1) not in PLACEHOLDER_TYPES:
            raise ValueError(f"unknown placeholder {{{match.group(1)}}} in note {template!r}")
        segments.append((True, match.group(1)))
        position = match.end()
    if position < len(template):
        segments.append((False, template[position:]))
    return tuple(segments)


_TEMPLATES = tuple(_parse(t) for t in PII_NOTE_TEMPLATES)


@dataclass(frozen=True)
class NoteValues:
    """Personal data available to the PII notes, one value per PII note (aligned arrays)."""

    carer: pa.Array
    child: pa.Array
    other: pa.Array
    phone: pa.Array
    email: pa.Array
    nhs: pa.Array
    address: pa.Array
    postcode: pa.Array


@dataclass(frozen=True)
class Notes:
    """The notes column of a population and what the ground truth records about it."""

    text: pa.Array
    pii_spans: pa.Array  # JSON list per row, "[]" when the note holds no personal data
    emails: pa.Array  # e-mail addresses placed in the note, ';'-joined, "" if none


def choose_notes(
    rng: np.random.Generator, n: int, notes_rate: float, pii_rate: float
) -> tuple[np.ndarray, np.ndarray]:
    """Return (harmless_rows, pii_rows): which of `n` rows get which kind of note."""
    has_note = rng.random(n) < notes_rate
    pii = has_note & (rng.random(n) < pii_rate)
    return np.flatnonzero(has_note & ~pii), np.flatnonzero(pii)


def build_notes(
    rng: np.random.Generator,
    n: int,
    harmless_rows: np.ndarray,
    pii_rows: np.ndarray,
    values: NoteValues,
    source: np.ndarray | None = None,
) -> Notes:
    """Return the notes of `n` rows: harmless text at `harmless_rows`, PII notes at `pii_rows`.

    Args:
        rng: the population's generator.
        n: number of rows.
        harmless_rows: rows whose note carries no personal data.
        pii_rows: rows whose note carries personal data; `values` is aligned with them.
        values: the personal data to place, one value per PII row.
        source: when given, output row i shows the note of row `source[i]` (duplicates).

    Returns:
        The notes, their PII spans as JSON and the e-mail addresses used.
    """
    harmless = A.strings(HARMLESS_NOTES)
    first = A.take(harmless, rng.integers(0, len(HARMLESS_NOTES), len(harmless_rows)))
    second = A.take(harmless, rng.integers(0, len(HARMLESS_NOTES), len(harmless_rows)))
    harmless_text = A.where(
        rng.random(len(harmless_rows)) < 0.2, A.concat(first, " ", second), first
    )

    m = len(pii_rows)
    template_of = rng.integers(0, len(_TEMPLATES), m)
    prefix = A.take(harmless, rng.integers(0, len(HARMLESS_NOTES), m))
    prefix = A.where(rng.random(m) < PREFIX_RATE, A.concat(prefix, " "), "")
    prefix_len = A.lengths(prefix)

    positions, texts, spans, emails = [], [], [], []
    for t, segments in enumerate(_TEMPLATES):
        sel = np.flatnonzero(template_of == t)
        if len(sel) == 0:
            continue
        parts: list[A.Part] = [A.take(prefix, sel)]
        json_parts: list[A.Part] = ["["]
        offset = prefix_len[sel].copy()
        email: A.Part = ""
        for is_placeholder, text in segments:
            if not is_placeholder:
                parts.append(text)
                offset += len(text)
                continue
            value = A.take(getattr(values, text), sel)
            if text == "email":
                email = value
            end = offset + A.lengths(value)
            if len(json_parts) > 1:
                json_parts.append(",")
            json_parts += [
                f'{{"type":"{PLACEHOLDER_TYPES[text]}","start":',
                A.digits(offset),
                ',"end":',
                A.digits(end),
                "}",
            ]
            parts.append(value)
            offset = end
        json_parts.append("]")
        positions.append(pii_rows[sel])
        texts.append(A.concat(*parts))
        spans.append(A.concat(*json_parts))
        emails.append(email if isinstance(email, pa.Array) else A.repeat("", len(sel)))

    return Notes(
        text=A.scatter(n, [harmless_rows, *positions], [harmless_text, *texts], "", source),
        pii_spans=A.scatter(n, positions, spans, "[]", source),
        emails=A.scatter(n, positions, emails, "", source),
    )
