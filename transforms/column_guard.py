"""Column guard: profile every column of a children extract for personal data it should not hold.

Councils put data in the wrong column: an NHS number in `school_urn`, a carer's name in
`services`, a phone number in `gp_practice_code`. Each column of the contract lists the entity
types it may hold (`column_guard.columns.<column>.expects` in `config/pii.yaml`); anything else
found there is a finding, reported as column, entity type and share of the file's rows (never a
value), and kept out of the index by the column's `on_finding` action:

- **refuse** for the columns the index cannot do without: the identifiers the pseudonym comes
  from (`local_child_id`, `nhs_number`) and the required sources of index fields and marks
  (`date_of_birth`, `sex`, `postcode`, `shielded`, `care_leaver`). A file whose key columns hold
  the wrong kind of data cannot be trusted row by row, so it is refused whole and nothing of
  it changes the index. `process_extract` profiles before validation but refuses after it, so
  a file validation refuses (shifted columns, say) keeps validation's more specific reason.
- **blank** for the optional index-bound columns (`school_urn`, `gp_practice_code`,
  `services`): the whole column is blanked in the file before validation, so every index field
  derived from it (school URN, GP practice, services, other service involved) is empty for
  every row of that file. The whole column, not only the rows that matched: a column holding
  misplaced data is suspect throughout, and values outside the sample are never seen.
- **report** for columns that never reach the index (names, address, carer phone, UPN): they
  are dropped by minimisation anyway; the finding tells the council its columns are mixed up.

`notes` is free text and is not profiled here: `transforms.pii.scan_notes` handles it.

Profiling is cheap. The vectorised checks of `transforms.identifiers` (NHS number mod 11, UPN
check letter, postcode letter rules) and regular expressions (UK phone, e-mail, full date,
National Insurance number, numbered street address) run over every distinct value; the analyzer
of `transforms.pii` (names) runs on a deterministic hash sample of at most `sample_values`
distinct values per column, and only on those holding a word on the name lists or an "@". A
value that matches an entity type the column expects counts as expected. Shares found in the
sample are scaled to the file. The last-line guard of `transforms.pii.guard_index_values` still
scans every index-bound value after minimisation, so a misplaced value the sample missed
still stops the load.
"""

from __future__ import annotations

import functools
import logging
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from presidio_analyzer.predefined_recognizers import UkNinoRecognizer

from transforms import pii
from transforms.contract import CHILDREN_COLUMNS, CHILDREN_REQUIRED_VALUES
from transforms.identifiers import nhs_number_is_valid, postcode_is_valid, upn_is_valid

logger = logging.getLogger(__name__)

ACTIONS = ("refuse", "blank", "report")
PROFILED_COLUMNS = tuple(c for c in CHILDREN_COLUMNS if c != "notes")
_EMAIL_VALUE = re.compile(r"[\w.+'-]+@[\w-]+(?:\.[\w-]+)+")
_LETTER = re.compile(r"[^\W\d_]")


@dataclass(frozen=True)
class ColumnRule:
    """What one column may hold and what to do when it holds something else."""

    expects: frozenset[str]
    on_finding: str


@dataclass(frozen=True)
class ColumnGuardSettings:
    """The validated `column_guard` section of `config/pii.yaml`."""

    sample_values: int
    columns: Mapping[str, ColumnRule]


@dataclass(frozen=True)
class ColumnFinding:
    """An unexpected entity type in a column: share of the file's rows, never a value."""

    column: str
    entity_type: str
    share: float
    action: str


@dataclass
class ColumnGuardResult:
    """The findings, the frame with blanked columns, and the refusal reason if any."""

    frame: pd.DataFrame
    findings: list[ColumnFinding] = field(default_factory=list)
    refuse_reason: str | None = None

    def to_report(self) -> dict[str, dict]:
        """Return `{column: {"action": ..., "entities": {type: share}}}` (JSON-safe, no values)."""
        out: dict[str, dict] = {}
        for f in self.findings:
            entry = out.setdefault(f.column, {"action": f.action, "entities": {}})
            entry["entities"][f.entity_type] = f.share
        return out


def parse_column_guard_settings(raw: object) -> ColumnGuardSettings:
    """Validate the `column_guard` section.

    Raises:
        pii.PiiConfigError: listing every problem found.
    """
    errors: list[str] = []
    if not isinstance(raw, dict) or set(raw) != {"sample_values", "columns"}:
        raise pii.PiiConfigError("column_guard: must be a mapping with sample_values and columns")
    sample = raw["sample_values"]
    if not isinstance(sample, int) or isinstance(sample, bool) or sample < 1:
        errors.append("column_guard.sample_values: must be a whole number of at least 1")
    columns = raw["columns"] if isinstance(raw["columns"], dict) else {}
    missing = [c for c in PROFILED_COLUMNS if c not in columns]
    if missing:
        errors.append(f"column_guard.columns: list every contract column; missing {missing}")
    unknown = [c for c in columns if c not in PROFILED_COLUMNS]
    if unknown:
        errors.append(f"column_guard.columns: {unknown} are not profiled contract columns")
    rules: dict[str, ColumnRule] = {}
    for column, rule in columns.items():
        where = f"column_guard.columns.{column}"
        if not isinstance(rule, dict) or set(rule) != {"expects", "on_finding"}:
            errors.append(f"{where}: must give exactly expects and on_finding")
            continue
        expects = rule["expects"] if isinstance(rule["expects"], list) else [None]
        bad = [e for e in expects if e not in pii.ENTITY_PATTERNS]
        if bad:
            errors.append(f"{where}.expects: unknown entity types {bad}")
        action = rule["on_finding"]
        if action not in ACTIONS:
            errors.append(f"{where}.on_finding: must be one of {list(ACTIONS)} (got {action!r})")
        elif action == "blank" and column in CHILDREN_REQUIRED_VALUES:
            errors.append(f"{where}.on_finding: a required column cannot be blanked; use refuse")
        rules[column] = ColumnRule(frozenset(e for e in expects if isinstance(e, str)), action)
    if errors:
        listed = "\n  ".join(errors)
        raise pii.PiiConfigError(f"column guard config has {len(errors)} error(s):\n  {listed}")
    return ColumnGuardSettings(sample, rules)


@functools.cache
def load_column_guard_settings() -> ColumnGuardSettings:
    """Load the packaged `config/pii.yaml`'s `column_guard` section (validated, cached)."""
    return parse_column_guard_settings(pii.packaged_section("column_guard"))


@functools.cache
def _nino_regex() -> str:
    return UkNinoRecognizer.PATTERNS[0].regex.strip()


@functools.cache
def _street_regex() -> str:
    street = pii.load_pii_settings().recognizers["STREET_ADDRESS"]
    return pii.street_address_regex(street.street_types)


def _vector_check(entity: str, values: pd.Series) -> pd.Series:
    """Full-value check of one entity type over distinct values (a boolean mask)."""
    if entity == "UK_NHS":
        return nhs_number_is_valid(values)
    if entity == "UK_UPN":
        return upn_is_valid(values)
    if entity == "UK_POSTCODE":
        return postcode_is_valid(values)
    if entity == "STREET_ADDRESS":
        return values.str.contains(_street_regex()).fillna(False).astype(bool)
    regex = {
        "PHONE_NUMBER": pii.PHONE_REGEX,
        "EMAIL_ADDRESS": _EMAIL_VALUE.pattern,
        "DATE_OF_BIRTH": pii.FULL_DATE_REGEX,
        "UK_NINO": _nino_regex(),
    }[entity]
    return values.str.fullmatch(regex, flags=re.IGNORECASE).fillna(False).astype(bool)


VECTOR_CHECKED = (
    "UK_NHS",
    "UK_UPN",
    "UK_POSTCODE",
    "PHONE_NUMBER",
    "EMAIL_ADDRESS",
    "DATE_OF_BIRTH",
    "UK_NINO",
    "STREET_ADDRESS",
)


def _vector_types(
    columns: Mapping[str, tuple[pd.Series, Sequence[str]]],
) -> dict[str, dict[str, np.ndarray]]:
    """Run each column's checks over its values; masks are bool arrays by position.

    `columns` maps a column to (its distinct values, the entity types to check them for). The
    columns' values are checked end to end, one vectorised call per entity type (a
    changed-lines re-sync profiles 17 columns of a few thousand values, where pandas' fixed
    cost per call, not the values, is what counts), and only values that can match are: every
    check needs a digit except e-mail, which needs an "@".
    """
    names = list(columns)
    parts = [columns[name][0] for name in names]
    values = pd.concat(parts, ignore_index=True) if parts else pd.Series([], dtype="string")
    bounds = np.cumsum([0, *(len(part) for part in parts)])
    span = {name: slice(bounds[i], bounds[i + 1]) for i, name in enumerate(names)}
    can_match = {
        "digit": values.str.contains(r"\d").fillna(False).to_numpy(dtype=bool),
        "at": values.str.contains("@", regex=False).fillna(False).to_numpy(dtype=bool),
    }
    masks: dict[str, np.ndarray] = {}
    for entity in VECTOR_CHECKED:
        asked = np.zeros(len(values), dtype=bool)
        for name in names:
            if entity in columns[name][1]:
                asked[span[name]] = True
        at = np.flatnonzero(asked & can_match["at" if entity == "EMAIL_ADDRESS" else "digit"])
        masks[entity] = np.zeros(len(values), dtype=bool)
        if len(at):
            found = _vector_check(entity, values.iloc[at]).to_numpy(dtype=bool, na_value=False)
            masks[entity][at] = found
    return {
        name: {entity: masks[entity][span[name]] for entity in columns[name][1]} for name in names
    }


def _distinct(values: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """Return a column's distinct non-blank values (stripped) and how many rows hold each."""
    text = values.astype("string").str.strip()
    frequency = text[text.notna() & text.ne("")].value_counts(sort=False)
    return pd.Series(frequency.index.astype(str), dtype="string"), frequency.to_numpy()


def _sample(values: pd.Series, size: int) -> pd.Series:
    """Return a deterministic sample of distinct values, spread by hash (not by frequency)."""
    if len(values) <= size:
        return values
    order = pd.util.hash_pandas_object(values, index=False).to_numpy().argsort(kind="stable")
    return values.iloc[order[:size]]


def _profile_columns(
    frame: pd.DataFrame, settings: ColumnGuardSettings
) -> dict[str, dict[str, float]]:
    """Return {column: {unexpected entity type: share of rows}} (values never returned)."""
    rules = settings.columns
    columns = {c: _distinct(frame[c]) for c in rules if c in frame.columns}
    # Values of an expected type are settled; only the others are tested for other types.
    expected_types = _vector_types(
        {
            c: (d, [e for e in VECTOR_CHECKED if e in rules[c].expects])
            for c, (d, _) in columns.items()
        }
    )
    expected = {
        c: np.logical_or.reduce([*masks.values(), np.zeros(len(columns[c][0]), dtype=bool)])
        for c, masks in expected_types.items()
    }
    unsettled = {c: np.flatnonzero(~expected[c]) for c in columns}
    other_types = _vector_types(
        {
            c: (d.iloc[unsettled[c]], [e for e in VECTOR_CHECKED if e not in rules[c].expects])
            for c, (d, _) in columns.items()
        }
    )
    shares = {}
    for column, (distinct, counts) in columns.items():
        rule, total, at = rules[column], len(frame[column]), unsettled[column]
        matched = expected[column].copy()
        rows: Counter[str] = Counter()
        for entity, mask in other_types[column].items():
            if mask.any():
                rows[entity] += int(counts[at[mask]].sum())
                matched[at[mask]] = True
        if "PERSON" not in rule.expects:
            rows.update(_sampled_names(distinct[~matched], counts, rule, settings.sample_values))
        shares[column] = {e: round(min(n, total) / total, 4) for e, n in sorted(rows.items()) if n}
    return shares


def _sampled_names(
    rest: pd.Series, counts: np.ndarray, rule: ColumnRule, sample_values: int
) -> Counter[str]:
    """Names and anything needing context: the analyzer on a hash sample of `rest`.

    `rest` holds the distinct values the vectorised checks did not settle (indexed by position
    in the column's distinct values, whose rows `counts` holds); hits are scaled to the rows of
    all of them.
    """
    rows: Counter[str] = Counter()
    sample = _sample(rest, sample_values)
    scale = 1.0
    if len(sample) < len(rest):
        scale = counts[rest.index.to_numpy()].sum() / counts[sample.index.to_numpy()].sum()
    analyzer = pii.build_analyzer()
    may_hold_name = analyzer.nlp_engine.may_hold_name
    worth = sample.map(lambda v: "@" in v or (bool(_LETTER.search(v)) and may_hold_name(v)))
    sample = sample[worth.astype(bool)]
    threshold = pii.load_pii_settings().guard_score_threshold
    found = pii.analyze_texts(analyzer, list(sample), threshold) if len(sample) else []
    for value, n, results in zip(sample, counts[sample.index.to_numpy()], found, strict=True):
        kinds = set(pii.redact_text(value, results)[1])
        if not kinds & rule.expects:
            for entity in kinds:
                rows[entity] += round(int(n) * scale)
    return rows


def guard_columns(
    frame: pd.DataFrame, settings: ColumnGuardSettings | None = None
) -> ColumnGuardResult:
    """Profile every contract column of a children extract and act on unexpected personal data.

    Args:
        frame: the extract as read (strings, blanks as "").
        settings: the column rules; the packaged `config/pii.yaml` by default.

    Returns:
        The findings; the frame with `blank` columns blanked (a copy when any is); and, when a
        `refuse` column has a finding, the refusal reason (columns and types, never values).
    """
    settings = settings or load_column_guard_settings()
    findings = [
        ColumnFinding(column, entity, share, settings.columns[column].on_finding)
        for column, shares in _profile_columns(frame, settings).items()
        for entity, share in shares.items()
    ]
    result = ColumnGuardResult(frame, findings)
    refused = [f for f in findings if f.action == "refuse"]
    for f in findings:
        logger.warning(
            "column guard: %s in column %s (%.1f%% of rows): %s",
            f.entity_type,
            f.column,
            100 * f.share,
            f.action,
        )
    if refused:
        detail = "; ".join(
            f"{f.entity_type} in column {f.column} ({f.share:.1%} of rows)" for f in refused
        )
        result.refuse_reason = (
            f"personal data of an unexpected kind in a column the index needs: {detail}; "
            "check each column holds what the contract says"
        )
        return result
    blanked = sorted({f.column for f in findings if f.action == "blank"})
    if blanked:
        frame = frame.copy()
        for column in blanked:
            frame[column] = ""
        result.frame = frame
    return result
