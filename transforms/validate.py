"""Validate phase: run an extract's GX suite and turn its results into row and file verdicts.

Pure: takes a frame of strings as read from the CSV (blanks are ""), returns a `ValidationResult`;
the only I/O is reading the packaged suite JSON and `expectations/rules.yaml`. Row masks come from
GX itself: the suite runs once with result format COMPLETE, `exclude_unexpected_values` set, over
a frame with a plain RangeIndex, so each failing expectation reports the positions of its failing
rows and never their values. Nothing returned, raised or logged here quotes a cell of the extract:
GX's own result is handed on (for the engineers' Data Docs) only as `values_free_gx_result`.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from expectations.loader import (
    CHILDREN_SUITE,
    OPTOUT_SUITE,
    SuiteRules,
    load_rules,
    load_suite,
    read_suite_json,
)
from transforms.contract import (
    CHILDREN_COLUMNS,
    COUNCIL_CODE_RE,
    MAX_AGE_YEARS,
    OPTOUT_COLUMNS,
    SCHEMA_VERSION,
)
from transforms.identifiers import parse_iso_dates

if TYPE_CHECKING:
    from great_expectations.core import ExpectationSuite, ExpectationSuiteValidationResult

CRITICAL, WARNING = "critical", "warning"
COLUMNS_RULE = "columns_match_contract"

# COMPLETE gives every failing row's index; the values GX also gathers are left out of the result.
RESULT_FORMAT: dict[str, Any] = {
    "result_format": "COMPLETE",
    "exclude_unexpected_values": True,
    "partial_unexpected_count": 0,
    "return_unexpected_index_query": False,
    "include_unexpected_rows": False,
}
# A header name that looks like a column name may be shown; anything else might be a data row
# read as a header (a file sent without its header line), so it is counted, never quoted.
_SHOWABLE_COLUMN = re.compile(r"[a-z][a-z0-9_]{0,63}")


class SuiteRunError(RuntimeError):
    """GX could not evaluate an expectation, or its results do not add up."""


@dataclass(frozen=True)
class RuleOutcome:
    """How many rows broke one rule (on one column) and what the council should do."""

    rule: str  # stable short name, e.g. "nhs_number_mod11"
    column: str | None
    severity: str  # "critical" (row is quarantined) or "warning" (row loads, council told)
    failed_rows: int
    fix: str  # one sentence telling a council what to fix


@dataclass(frozen=True)
class ValidationResult:
    """File verdict, row verdicts and a values-free summary of the GX run.

    Row verdicts stand on their own, for the council's feedback: when `accepted` is False no row
    loads, whatever `row_ok` says.
    """

    accepted: bool  # file-level verdict
    reason: str | None  # why the whole file was refused (values-free), else None
    row_ok: pd.Series  # bool per input row: True = row may load
    row_rules: pd.Series  # str per row: ';'-joined rule names it broke ("" if none)
    outcomes: tuple[RuleOutcome, ...]  # rules broken by at least one row, in suite order
    gx_success: bool
    gx_summary: dict  # per expectation: type, column, success, counts; never a value
    # GX's own validation result as JSON, values removed (see `values_free_gx_result`); the
    # engineers' Data Docs are built from it (transforms.datadocs).
    gx_result: dict = field(default_factory=dict)


def date_of_birth_bounds(extract_date: datetime.date) -> tuple[datetime.date, datetime.date]:
    """Return the earliest and latest date of birth allowed in an extract of `extract_date`.

    A child may be at most `MAX_AGE_YEARS` years old in completed years on the extract date (a
    25-year-old care leaver still loads; a 26th birthday on or before the extract date does not),
    and may not be born after it. A 29 February birthday counts from 1 March in common years.
    """
    years = MAX_AGE_YEARS + 1
    try:
        too_old = extract_date.replace(year=extract_date.year - years)
    except ValueError:  # 29 February of a leap year; that year has no 29 February
        too_old = extract_date.replace(year=extract_date.year - years, day=28)
    return too_old + datetime.timedelta(days=1), extract_date


def validate_children(
    frame: pd.DataFrame,
    *,
    council_code: str,
    extract_date: datetime.date,
    file_rows: int | None = None,
) -> ValidationResult:
    """Validate a council's children extract against suite `children_extract`.

    Args:
        frame: the extract as read from CSV, every column a string, blanks "".
        council_code: the council's GSS code (E06/E08/E09/E10 and six digits).
        extract_date: the date the extract was taken; dates of birth are checked against it.
        file_rows: the file's row count when `frame` holds only its changed rows (the other
            rows passed before); the file-level thresholds are fractions of the whole file.

    Returns:
        The file verdict, a verdict and the broken rules per row (aligned with `frame`'s index),
        the outcome per broken rule and a values-free summary of the GX run.

    Raises:
        ValueError: `council_code` is not a council GSS code.
        SuiteRunError: GX could not evaluate an expectation (the message names it, not data).
    """
    if not isinstance(council_code, str) or not COUNCIL_CODE_RE.fullmatch(council_code):
        raise ValueError(
            "council_code must be the GSS code of a council with children's services "
            "(E06, E08, E09 or E10 followed by six digits)"
        )
    if isinstance(extract_date, datetime.datetime):
        extract_date = extract_date.date()
    earliest, latest = date_of_birth_bounds(extract_date)
    parameters = {
        "date_of_birth_earliest": earliest.isoformat(),
        "date_of_birth_latest": latest.isoformat(),
    }
    run = {"council_code": council_code, "extract_date": extract_date.isoformat()}
    return _validate(frame, CHILDREN_SUITE, CHILDREN_COLUMNS, parameters, run, file_rows)


def dates_of_birth_out_of_range(
    values: Sequence[bytes | None], extract_date: datetime.date
) -> np.ndarray:
    """Check raw date_of_birth fields as rule `date_of_birth_range` would at `extract_date`.

    Change detection carries a line refused for its date of birth only while this is still True:
    the allowed years move with the extract's date, so the verdict can change while the line
    does not.

    Args:
        values: the fields as they are in the file (None: the line could not be split safely).
        extract_date: the extract's date.

    Returns:
        True where the field is a YYYY-MM-DD date outside the allowed range; False for anything
        else (such a line is read and validated again).
    """
    earliest, latest = date_of_birth_bounds(extract_date)
    text = pd.Series(
        [None if v is None else v.decode("utf-8", "replace") for v in values], dtype="string"
    )
    parsed = parse_iso_dates(text)
    outside = (parsed < pd.Timestamp(earliest)) | (parsed > pd.Timestamp(latest))
    return outside.to_numpy(dtype=bool, na_value=False)


def carry_refusals(
    result: ValidationResult | None, carried: pd.Series, file_rows: int
) -> ValidationResult:
    """Add lines refused before, and unchanged since, to a validation of a file's changed lines.

    A line the same council sent before and the suite refused then breaks the same rules now
    (`transforms.changes.plan_changes` reads again the lines whose verdict may have moved: a
    repeated id with a new line, a date of birth back in range). Their verdicts are merged in
    so the council hears about them again and the file-level thresholds see the whole file.

    Args:
        result: the validation of the changed lines (None: no line changed).
        carried: ';'-joined rule names per line refused before, indexed by line position.
        file_rows: the file's data rows.

    Returns:
        One result over the changed and the carried lines; GX facts are the changed lines'.
    """
    if result is not None and not result.accepted:
        return result  # refused on the changed lines alone
    rules = load_rules()[CHILDREN_SUITE]
    # From the suite's JSON: no GX object (nor GX import) is needed to merge carried lines.
    order = _rule_positions(
        (e["meta"]["rule"], e.get("kwargs", {}).get("column"))
        for e in read_suite_json(CHILDREN_SUITE)["expectations"]
    )
    columns: dict[str, list[str | None]] = {}
    for rule, column in order:
        columns.setdefault(rule, []).append(column)
    merged = {(o.rule, o.column): o for o in (result.outcomes if result is not None else ())}
    counts: dict[str, int] = {}
    for text in carried:
        for rule in filter(None, str(text).split(";")):
            counts[rule] = counts.get(rule, 0) + 1
    for rule, n in counts.items():
        known = columns.get(rule, [None])
        key = (rule, known[0] if len(known) == 1 else None)
        if key in merged:
            merged[key] = replace(merged[key], failed_rows=merged[key].failed_rows + n)
        else:
            spec = rules.rules[rule]
            merged[key] = RuleOutcome(rule, key[1], spec.severity, n, spec.fix)
    outcomes = tuple(
        sorted(merged.values(), key=lambda o: order.get((o.rule, o.column), (1 << 30, 0)))
    )
    empty_ok = pd.Series([], dtype=bool, name="row_ok")
    empty_rules = pd.Series([], dtype="str", name="row_rules")
    row_ok = pd.concat(
        [result.row_ok if result is not None else empty_ok, pd.Series(False, index=carried.index)]
    ).sort_index()
    row_rules = pd.concat(
        [result.row_rules if result is not None else empty_rules, carried.astype("str")]
    ).sort_index()
    reason = _refusal_reason(file_rows, int((~row_ok).sum()), outcomes, rules, False)
    return ValidationResult(
        accepted=reason is None,
        reason=reason,
        row_ok=row_ok.rename("row_ok"),
        row_rules=row_rules.rename("row_rules"),
        outcomes=outcomes,
        gx_success=result.gx_success if result is not None else False,
        gx_summary=result.gx_summary if result is not None else {},
        gx_result=result.gx_result if result is not None else {},
    )


def validate_optouts(frame: pd.DataFrame) -> ValidationResult:
    """Validate an opt-out register against suite `optout_register`.

    Args:
        frame: the register as read from CSV, every column a string, blanks "".

    Returns:
        As `validate_children`. A row loads when it has at least one id; an NHS number that
        fails Modulus 11 is a warning, so the row's local child id still opts the child out.

    Raises:
        SuiteRunError: GX could not evaluate an expectation.
    """
    return _validate(frame, OPTOUT_SUITE, OPTOUT_COLUMNS, {}, {})


# Of a result's `result` block only these counts are kept. Everything else GX may put there can
# carry cells: partial_unexpected_list and its counts, unexpected_list, unexpected_rows, details
# (e.g. the mismatched header names of expect_table_columns_to_match_set), observed_value (the
# header itself for a column-set expectation, a cell for min/max/between ones). Row positions
# (unexpected_index_list) are dropped too: the council's feedback holds them, the docs need not.
GX_RESULT_COUNTS = (
    "element_count",
    "missing_count",
    "missing_percent",
    "unexpected_count",
    "unexpected_percent",
    "unexpected_percent_total",
    "unexpected_percent_nonmissing",
)
# Observed values that are counts (of columns, of rows), never a cell or a name.
_NUMERIC_OBSERVED = frozenset(
    {"expect_table_column_count_to_equal", "expect_table_row_count_to_equal"}
)


def values_free_gx_result(
    gx_result: ExpectationSuiteValidationResult, run: dict[str, str] | None = None
) -> dict[str, Any]:
    """Return GX's validation result as plain JSON with every value of the extract removed.

    Expectation configurations come from the packaged suite and run parameters (contract column
    names, code sets, date bounds), so they are kept; of each result only the counts in
    `GX_RESULT_COUNTS` (and a column count as observed value) remain, exception messages and
    tracebacks (which may quote a cell) become a fixed sentence, and the batch's data
    fingerprint is dropped. The JSON loads back with `ExpectationSuiteValidationResult(**d)`.

    Args:
        gx_result: the result of a suite run.
        run: values-free facts of the run (council code, extract date) to keep in `meta`.

    Returns:
        The result's JSON form, stored by `transforms.datadocs` and rendered as Data Docs.
    """
    data = gx_result.to_json_dict()
    results = []
    for entry in data.get("results", []):
        config = entry.get("expectation_config") or {}
        detail = entry.get("result") or {}
        kept = {k: _number(detail[k]) for k in GX_RESULT_COUNTS if k in detail}
        observed = detail.get("observed_value")
        if (
            config.get("type") in _NUMERIC_OBSERVED
            and isinstance(observed, int | np.integer)
            and not isinstance(observed, bool | np.bool_)
        ):
            kept["observed_value"] = int(observed)
        raised = _raised(entry.get("exception_info"))
        results.append(
            {
                "success": bool(entry.get("success")),
                "expectation_config": config,
                "result": kept,
                "meta": {},
                "exception_info": {
                    "raised_exception": raised,
                    "exception_traceback": None,
                    "exception_message": "GX could not evaluate this expectation "
                    "(the message is withheld: it may quote a cell)"
                    if raised
                    else None,
                },
            }
        )
    meta = data.get("meta") or {}
    markers = meta.get("batch_markers") or {}
    kept_meta = {
        k: meta[k]
        for k in ("great_expectations_version", "active_batch_definition", "validation_time")
        if k in meta
    }
    spec = meta.get("batch_spec") or {}
    if isinstance(spec.get("batch_data"), str):  # "PandasDataFrame": the frame's type, not it
        kept_meta["batch_spec"] = {"batch_data": spec["batch_data"]}
    kept_meta["batch_markers"] = {k: markers[k] for k in ("ge_load_time",) if k in markers}
    kept_meta.update(run or {})
    return {
        "success": bool(data.get("success")),
        "suite_name": data.get("suite_name"),
        "suite_parameters": data.get("suite_parameters") or {},
        "statistics": {k: _number(v) for k, v in (data.get("statistics") or {}).items()},
        "results": results,
        "meta": kept_meta,
    }


# --- internals -----------------------------------------------------------------------------------


def _validate(
    frame: pd.DataFrame,
    suite_name: str,
    contract_columns: tuple[str, ...],
    parameters: dict[str, str],
    run: dict[str, str],
    file_rows: int | None = None,
) -> ValidationResult:
    rules = load_rules()[suite_name]
    suite = load_suite(suite_name, rules)
    n_rows = len(frame)
    column_problem = _column_problem([str(c) for c in frame.columns], contract_columns)

    if column_problem is not None:
        # Column expectations cannot run on the wrong columns: run the table-level ones only.
        table_suite = _table_level_suite(suite)
        gx_result = _run_gx(frame.reset_index(drop=True), table_suite, parameters)
        rule = rules.rules[COLUMNS_RULE]
        outcome = RuleOutcome(COLUMNS_RULE, None, rule.severity, n_rows, rule.fix)
        return ValidationResult(
            accepted=False,
            reason=column_problem,
            row_ok=pd.Series(False, index=frame.index, dtype=bool, name="row_ok"),
            row_rules=pd.Series(COLUMNS_RULE, index=frame.index, dtype="str", name="row_rules"),
            outcomes=(outcome,),
            gx_success=bool(gx_result.success),
            gx_summary=_summarise(gx_result, table_suite, rules, parameters, run),
            gx_result=values_free_gx_result(gx_result, run),
        )

    gx_result = _run_gx(_gx_view(frame), suite, parameters)
    masks, counts, table_failures = _row_masks(gx_result, suite, n_rows)

    order = _rule_positions(_key(e.configuration) for e in suite.expectations)
    critical = np.zeros(n_rows, dtype=bool)
    for (rule_name, _column), mask in masks.items():
        if rules.rules[rule_name].severity == CRITICAL:
            critical |= mask
    outcomes = []
    for key in sorted(set(counts) | table_failures, key=lambda k: order[k]):
        failed = n_rows if key in table_failures else counts[key]
        if failed:
            rule = rules.rules[key[0]]
            outcomes.append(RuleOutcome(key[0], key[1], rule.severity, failed, rule.fix))

    if table_failures:
        critical[:] = True
    row_ok = ~critical
    reason = _refusal_reason(
        n_rows if file_rows is None else file_rows,
        int(critical.sum()),
        tuple(outcomes),
        rules,
        bool(table_failures),
    )
    return ValidationResult(
        accepted=reason is None,
        reason=reason,
        row_ok=pd.Series(row_ok, index=frame.index, name="row_ok"),
        row_rules=pd.Series(
            _row_rule_strings(masks, order, n_rows, table_failures),
            index=frame.index,
            dtype="str",
            name="row_rules",
        ),
        outcomes=tuple(outcomes),
        gx_success=bool(gx_result.success),
        gx_summary=_summarise(gx_result, suite, rules, parameters, run),
        gx_result=values_free_gx_result(gx_result, run),
    )


def _column_problem(header: list[str], expected: tuple[str, ...]) -> str | None:
    """Say, naming contract columns only, how the header differs from the contract; else None."""
    present = set(header)
    duplicated = sorted(c for c in present if header.count(c) > 1)
    missing = [c for c in expected if c not in present]
    unexpected = [c for c in dict.fromkeys(header) if c not in expected]
    if not (duplicated or missing or unexpected):
        return None
    parts = []
    if missing:
        parts.append("missing " + ", ".join(missing))
    header_missing = len(missing) == len(expected)
    if unexpected:
        # without a header, the "names" are the first data row: show none of them
        shown = [c for c in unexpected if _SHOWABLE_COLUMN.fullmatch(c) and not header_missing]
        hidden = len(unexpected) - len(shown)
        text = ", ".join(shown)
        if hidden:
            text += (f", and {hidden} more" if shown else str(hidden)) + " not shown by name"
        parts.append("unexpected " + text)
    if duplicated:
        shown = [c for c in duplicated if _SHOWABLE_COLUMN.fullmatch(c)]
        names = " (" + ", ".join(shown) + ")" if shown else ""
        parts.append(f"{len(duplicated)} repeated{names}")
    if header_missing and {c.strip().lower() for c in header} >= set(expected):
        parts.append("write the header in lower case, as in the contract")
    elif header_missing:
        parts.append("is the header row missing?")
    return f"the columns do not match extract contract v{SCHEMA_VERSION}: " + "; ".join(parts)


def _gx_view(frame: pd.DataFrame) -> pd.DataFrame:
    """Return the frame GX sees: a 0..n-1 index, and blank or whitespace-only cells as nulls."""
    from expectations.custom import is_blank

    view = frame.reset_index(drop=True)
    for name in view.columns:
        column = view[name]
        if not pd.api.types.is_string_dtype(column.dtype) or pd.api.types.is_object_dtype(
            column.dtype
        ):
            column = column.astype("string")
        blank = is_blank(column)
        if blank.any():
            column = column.mask(blank)
        view[name] = column
    return view


def _table_level_suite(suite: ExpectationSuite) -> ExpectationSuite:
    import great_expectations as gx
    from great_expectations.core.metric_domain_types import MetricDomainTypes

    table = [
        e.configuration for e in suite.expectations if e.domain_type == MetricDomainTypes.TABLE
    ]
    return gx.ExpectationSuite(name=suite.name, expectations=table, meta=suite.meta)


def _run_gx(
    view: pd.DataFrame, suite: ExpectationSuite, parameters: dict[str, str]
) -> ExpectationSuiteValidationResult:
    """Run `suite` once over `view` in a fresh ephemeral context, progress bars off.

    `Batch.validate` (public API), not a validation definition's `run`: the results are the
    same, but a definition also serialises them into the context's results store, which we
    never read (we keep a values-free copy ourselves): about 40 ms a run, a tenth of the cost
    of validating a re-sync's changed lines. The run time a definition would stamp is stamped
    here, as Data Docs file the result under it.
    """
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    # GX draws tqdm bars on stderr for every metric pass unless the context says otherwise.
    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    batch_definition = (
        context.data_sources.add_pandas("extract")
        .add_dataframe_asset("frame")
        .add_batch_definition_whole_dataframe("whole_frame")
    )
    with _no_data_fingerprint(), _configurations_built_once():
        result = batch_definition.get_batch(batch_parameters={"dataframe": view}).validate(
            suite, expectation_parameters=parameters, result_format=RESULT_FORMAT
        )
    result.meta["validation_time"] = datetime.datetime.now(datetime.UTC)
    return result


@contextmanager
def _no_data_fingerprint() -> Iterator[None]:
    """Stop GX hashing the whole frame into a `pandas_data_fingerprint` batch marker.

    The fingerprint is an unkeyed MD5 of every cell (a digest of personal data we would only
    drop again) and costs about as long as reading the file: half of validation's time at
    1,000,000 rows. GX computes it for any frame under 1 GB and offers no switch, so the hashing
    function is swapped for the duration of a run (tasks are processes; runs do not overlap
    within one).
    """
    from great_expectations.execution_engine import pandas_execution_engine as engine

    original = engine.hash_pandas_dataframe
    engine.hash_pandas_dataframe = _no_fingerprint
    try:
        yield
    finally:
        engine.hash_pandas_dataframe = original


def _no_fingerprint(_frame: pd.DataFrame) -> None:
    return None


@contextmanager
def _configurations_built_once() -> Iterator[None]:
    """Let each GX expectation build its `configuration` once per run, not once per question.

    `Expectation.configuration` is a property that builds a new `ExpectationConfiguration`
    (a pydantic `dict()` of the expectation, and a name conversion) every time it is read, and
    GX's validator reads it again for every keyword argument of every expectation it asks about:
    about 2,400 builds a run of our suite, a quarter of the run's time whatever its row count
    (the fixed cost of validating a re-sync's few changed lines). For the duration of a run each
    expectation object keeps the first one it built. GX copies a configuration before changing
    it (`to_domain_obj`, `deepcopy`), except to fill in suite parameters, which it does once,
    before any question; tests hold the results to those of GX's own property. Swapped for the
    run only, as `_no_data_fingerprint` is (tasks are processes; runs do not overlap in one).
    """
    from great_expectations.expectations.expectation import Expectation

    original = Expectation.__dict__["configuration"]
    # id -> (expectation, its configuration); holding the expectation keeps its id its own.
    built: dict[int, tuple[Any, Any]] = {}

    def configuration(expectation: Any) -> Any:
        key = id(expectation)
        if key not in built:
            built[key] = (expectation, original.fget(expectation))
        return built[key][1]

    Expectation.configuration = property(configuration, doc=original.__doc__)
    try:
        yield
    finally:
        Expectation.configuration = original


def _raised(exception_info: Any) -> bool:
    if not isinstance(exception_info, dict):
        return False
    if "raised_exception" in exception_info:
        return bool(exception_info["raised_exception"])
    # GX 1.x may key exception info by metric id
    return any(_raised(v) for v in exception_info.values())


def _key(config: Any) -> tuple[str, str | None]:
    return config.meta["rule"], config.kwargs.get("column")


def _rule_positions(
    keys: Iterable[tuple[str, str | None]],
) -> dict[tuple[str, str | None], tuple[int, int]]:
    """Order (rule, column) keys by their rule's first place in the suite, then their own."""
    first: dict[str, int] = {}
    order: dict[tuple[str, str | None], tuple[int, int]] = {}
    for i, (rule, column) in enumerate(keys):
        first.setdefault(rule, i)
        order.setdefault((rule, column), (first[rule], i))
    return order


def _row_masks(
    gx_result: ExpectationSuiteValidationResult, suite: ExpectationSuite, n_rows: int
) -> tuple[
    dict[tuple[str, str | None], np.ndarray],
    dict[tuple[str, str | None], int],
    set[tuple[str, str | None]],
]:
    """Turn GX's unexpected row indices into a boolean mask per (rule, column)."""
    masks: dict[tuple[str, str | None], np.ndarray] = {}
    counts: dict[tuple[str, str | None], int] = {}
    table_failures: set[tuple[str, str | None]] = set()
    if len(gx_result.results) != len(suite.expectations):
        raise SuiteRunError(
            f"GX returned {len(gx_result.results)} results for "
            f"{len(suite.expectations)} expectations of suite {suite.name!r}"
        )
    for result in gx_result.results:
        config = result.expectation_config
        key = _key(config)
        where = f"{config.type} (rule {key[0]}, column {key[1]})"
        if _raised(result.exception_info):
            raise SuiteRunError(f"GX could not evaluate {where}")
        detail = result.result or {}
        if "unexpected_count" not in detail:  # a table-level expectation
            if not result.success:
                table_failures.add(key)
            continue
        positions = np.asarray(detail.get("unexpected_index_list") or [], dtype=np.int64)
        if len(positions) != int(detail["unexpected_count"] or 0):
            raise SuiteRunError(f"GX row indices and unexpected count disagree for {where}")
        mask = masks.setdefault(key, np.zeros(n_rows, dtype=bool))
        mask[positions] = True
        counts[key] = int(mask.sum())
    return masks, counts, table_failures


def _row_rule_strings(
    masks: dict[tuple[str, str | None], np.ndarray],
    order: dict[tuple[str, str | None], tuple[int, int]],
    n_rows: int,
    table_failures: set[tuple[str, str | None]],
) -> np.ndarray:
    tokens = np.full(n_rows, "", dtype=object)
    by_rule: dict[str, np.ndarray] = {}
    for key in sorted(set(masks) | table_failures, key=lambda k: order[k]):
        mask = np.ones(n_rows, dtype=bool) if key in table_failures else masks[key]
        by_rule[key[0]] = by_rule.get(key[0], np.zeros(n_rows, dtype=bool)) | mask
    for rule, mask in by_rule.items():
        where = np.flatnonzero(mask)
        if len(where):
            current = tokens[where]
            tokens[where] = np.where(current == "", rule, current + ";" + rule)
    return tokens


def _refusal_reason(
    n_rows: int,
    n_critical: int,
    outcomes: tuple[RuleOutcome, ...],
    rules: SuiteRules,
    table_failed: bool,
) -> str | None:
    if table_failed:
        return f"the columns do not match extract contract v{SCHEMA_VERSION}"
    if n_rows == 0:
        return "the file has no data rows"
    limit = rules.max_critical_row_fraction
    if n_critical / n_rows > limit:
        broken = ", ".join(
            f"{o.rule} ({o.failed_rows})" for o in outcomes if o.severity == CRITICAL
        )
        return (
            f"{n_critical} of {n_rows} rows ({n_critical / n_rows:.1%}) broke critical rules, "
            f"more than the {limit:.0%} a file may have: {broken}"
        )
    if n_critical == n_rows:
        return "no row of the file passed the critical rules"
    return None


def _number(value: Any) -> float | int | None:
    if value is None:
        return None
    if isinstance(value, bool | np.bool_):
        return int(value)
    if isinstance(value, int | np.integer):
        return int(value)
    return float(value)


def _summarise(
    gx_result: ExpectationSuiteValidationResult,
    suite: ExpectationSuite,
    rules: SuiteRules,
    parameters: dict[str, str],
    run: dict[str, str],
) -> dict[str, Any]:
    """Build the values-free summary: counts and verdicts per expectation, never a cell."""
    order = _rule_positions(_key(e.configuration) for e in suite.expectations)
    entries = []
    for result in gx_result.results:
        config = result.expectation_config
        rule, column = _key(config)
        detail = result.result or {}
        entries.append(
            {
                "rule": rule,
                "severity": rules.rules[rule].severity,
                "expectation_type": config.type,
                "column": column,
                "success": bool(result.success),
                "element_count": _number(detail.get("element_count")),
                "missing_count": _number(detail.get("missing_count")),
                "unexpected_count": _number(detail.get("unexpected_count")),
                "unexpected_percent": _number(detail.get("unexpected_percent")),
                "raised_exception": _raised(result.exception_info),
            }
        )
    entries.sort(key=lambda e: order[(e["rule"], e["column"])])
    statistics = {k: _number(v) for k, v in (gx_result.statistics or {}).items()}
    return {
        "suite": suite.name,
        "contract_schema_version": SCHEMA_VERSION,
        **run,
        "expectation_parameters": dict(parameters),
        "success": bool(gx_result.success),
        "statistics": statistics,
        "expectations": entries,
    }
