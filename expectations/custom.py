"""Custom GX 1.x expectations for UK child-record identifiers, vectorised over pandas.

Each expectation is a `ColumnMapExpectation` (or `MulticolumnMapExpectation`) whose map metric is
a `ColumnMapMetricProvider` with a pandas `column_condition_partial` (or the multicolumn pair of
those); the checks themselves are the vectorised functions of `transforms.identifiers`, so the
pipeline and the suite share one rule.

Blank cells pass every condition here, whether null (as `transforms.validate` hands them to GX)
or empty or whitespace-only (as in a raw extract frame): a required value is the business of a
not-null expectation. The metrics set `filter_column_isnull = False` and pass nulls themselves,
because GX's own null filter copies the whole frame once per expectation.

Importing this module registers the expectations and metrics with GX (by class definition);
`expectations.loader` imports it before it loads any suite.
"""

from __future__ import annotations

import re
from typing import Literal

import numpy as np
import pandas as pd
from great_expectations.compatibility import pydantic
from great_expectations.core.suite_parameters import SuiteParameterDict
from great_expectations.execution_engine import PandasExecutionEngine
from great_expectations.expectations.expectation import (
    ColumnMapExpectation,
    MulticolumnMapExpectation,
)
from great_expectations.expectations.metrics import (
    ColumnMapMetricProvider,
    column_condition_partial,
)
from great_expectations.expectations.metrics.map_metric_provider import (
    MulticolumnMapMetricProvider,
)
from great_expectations.expectations.metrics.map_metric_provider.multicolumn_condition_partial import (  # noqa: E501
    multicolumn_condition_partial,
)

from transforms import identifiers
from transforms.identifiers import parse_iso_dates

# --- shared vectorised helpers ------------------------------------------------------------------


def _as_text(values: pd.Series) -> pd.Series:
    if pd.api.types.is_string_dtype(values.dtype) and not pd.api.types.is_object_dtype(
        values.dtype
    ):
        return values
    return values.astype("string")


def is_blank(values: pd.Series) -> np.ndarray:
    """Return True where a cell is null, empty or whitespace only."""
    text = _as_text(values)
    return (text.isna() | text.str.strip().eq("")).to_numpy(dtype=bool, na_value=True)


def _aligned(mask: np.ndarray | pd.Series, like: pd.Series | pd.DataFrame) -> pd.Series:
    return pd.Series(np.asarray(mask, dtype=bool), index=like.index)


def codes_pattern(value_set: list[str], separator: str) -> str:
    """Return a regex that fully matches one or more known codes joined by `separator`."""
    codes = sorted(set(value_set), key=lambda code: (-len(code), code))
    one = "(?:" + "|".join(re.escape(code) for code in codes) + ")"
    # spaces as " *", not "\s*": pandas hands "\s" to Python's re, the rest runs in Arrow
    return rf" *{one} *(?:{re.escape(separator)} *{one} *)*"


# --- identifiers ---------------------------------------------------------------------------------


class ColumnValuesValidNhsNumber(ColumnMapMetricProvider):
    """Map metric: NHS number passes Modulus 11 (spaces and hyphens ignored; blanks pass)."""

    condition_metric_name = "column_values.valid_nhs_number"
    filter_column_isnull = False  # the condition passes nulls itself, without a copy

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column: pd.Series, **kwargs) -> pd.Series:
        valid = identifiers.nhs_number_is_valid(column).to_numpy(dtype=bool)
        return _aligned(valid | is_blank(column), column)


class ExpectColumnValuesToBeValidNhsNumber(ColumnMapExpectation):
    """Expect each non-blank value to be a 10-digit NHS number whose Modulus 11 check digit holds.

    Spaces and hyphens are ignored ("943 476 5919" is valid). Blank values are ignored: the
    contract allows a child without an NHS number.
    """

    map_metric = "column_values.valid_nhs_number"
    success_keys = ("mostly",)


class ColumnValuesValidUkPostcode(ColumnMapMetricProvider):
    """Map metric: UK postcode under the Royal Mail letter rules (blanks pass)."""

    condition_metric_name = "column_values.valid_uk_postcode"
    filter_column_isnull = False  # the condition passes nulls itself, without a copy

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column: pd.Series, **kwargs) -> pd.Series:
        valid = identifiers.postcode_is_valid(column).to_numpy(dtype=bool)
        return _aligned(valid | is_blank(column), column)


class ExpectColumnValuesToBeValidUkPostcode(ColumnMapExpectation):
    """Expect each non-blank value to be a UK postcode (A9 9AA ... AA9A 9AA, Royal Mail letters).

    Case and spacing are normalised first ("ls62ab" is LS6 2AB). Blank values are ignored: a
    required postcode is the business of a not-null expectation.
    """

    map_metric = "column_values.valid_uk_postcode"
    success_keys = ("mostly",)


class ColumnValuesValidUpn(ColumnMapMetricProvider):
    """Map metric: Unique Pupil Number with the right check letter (blanks pass)."""

    condition_metric_name = "column_values.valid_upn"
    filter_column_isnull = False  # the condition passes nulls itself, without a copy

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column: pd.Series, **kwargs) -> pd.Series:
        valid = identifiers.upn_is_valid(column).to_numpy(dtype=bool)
        return _aligned(valid | is_blank(column), column)


class ExpectColumnValuesToBeValidUpn(ColumnMapExpectation):
    """Expect each non-blank value to be a UPN whose check letter matches its 12 other characters.

    Temporary UPNs (last character a letter) are accepted. Blank values are ignored.
    """

    map_metric = "column_values.valid_upn"
    success_keys = ("mostly",)


class ColumnValuesValidSchoolUrn(ColumnMapMetricProvider):
    """Map metric: 6-digit school Unique Reference Number (blanks pass)."""

    condition_metric_name = "column_values.valid_school_urn"
    filter_column_isnull = False  # the condition passes nulls itself, without a copy

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column: pd.Series, **kwargs) -> pd.Series:
        valid = identifiers.urn_is_valid(column).to_numpy(dtype=bool)
        return _aligned(valid | is_blank(column), column)


class ExpectColumnValuesToBeValidSchoolUrn(ColumnMapExpectation):
    """Expect each non-blank value to be a 6-digit school URN. Blank values are ignored."""

    map_metric = "column_values.valid_school_urn"
    success_keys = ("mostly",)


class ColumnValuesValidGpPracticeCode(ColumnMapMetricProvider):
    """Map metric: English GP practice ODS code, one letter and five digits (blanks pass)."""

    condition_metric_name = "column_values.valid_gp_practice_code"
    filter_column_isnull = False  # the condition passes nulls itself, without a copy

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column: pd.Series, **kwargs) -> pd.Series:
        valid = identifiers.gp_practice_code_is_valid(column).to_numpy(dtype=bool)
        return _aligned(valid | is_blank(column), column)


class ExpectColumnValuesToBeValidGpPracticeCode(ColumnMapExpectation):
    """Expect each non-blank value to have the shape of a GP practice ODS code, e.g. B86001."""

    map_metric = "column_values.valid_gp_practice_code"
    success_keys = ("mostly",)


# --- dates ---------------------------------------------------------------------------------------


class ColumnValuesIsoDate(ColumnMapMetricProvider):
    """Map metric: a real calendar date written YYYY-MM-DD (blanks pass)."""

    condition_metric_name = "column_values.iso_date"
    filter_column_isnull = False  # the condition passes nulls itself, without a copy

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column: pd.Series, **kwargs) -> pd.Series:
        parsed = parse_iso_dates(column).notna().to_numpy(dtype=bool)
        return _aligned(parsed | is_blank(column), column)


class ExpectColumnValuesToBeIsoDates(ColumnMapExpectation):
    """Expect each non-blank value to be a real calendar date written YYYY-MM-DD.

    "2024-02-30", "2024-2-3" and "03/02/2024" fail. Blank values are ignored.
    """

    map_metric = "column_values.iso_date"
    success_keys = ("mostly",)


def _check_iso_date_bound(value: object) -> object:
    if isinstance(value, str):
        try:
            pd.Timestamp(value)
        except ValueError as err:
            raise ValueError("a date bound must be written YYYY-MM-DD") from err
    return value


class ColumnValuesIsoDateBetween(ColumnMapMetricProvider):
    """Map metric: a YYYY-MM-DD date within [min_value, max_value]; non-dates and blanks pass."""

    condition_metric_name = "column_values.iso_date_between"
    filter_column_isnull = False  # the condition passes nulls itself, without a copy
    condition_value_keys = ("min_value", "max_value")

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(
        cls,
        column: pd.Series,
        min_value: str | None = None,
        max_value: str | None = None,
        **kwargs,
    ) -> pd.Series:
        parsed = parse_iso_dates(column)
        inside = pd.Series(True, index=column.index)
        if min_value is not None:
            inside &= parsed >= pd.Timestamp(min_value)
        if max_value is not None:
            inside &= parsed <= pd.Timestamp(max_value)
        # a value that is not a date is left to expect_column_values_to_be_iso_dates
        return _aligned(inside.to_numpy(dtype=bool) | parsed.isna().to_numpy(dtype=bool), column)


class ExpectColumnValuesToBeIsoDatesBetween(ColumnMapExpectation):
    """Expect each YYYY-MM-DD value to lie within [min_value, max_value], both inclusive.

    The bounds are YYYY-MM-DD strings, usually suite parameters (`{"$PARAMETER": "name"}`)
    supplied at validation time, because they depend on the extract's date. A value that is not a
    date, and a blank, is ignored here: `ExpectColumnValuesToBeIsoDates` reports it.
    """

    min_value: str | SuiteParameterDict | None = None
    max_value: str | SuiteParameterDict | None = None

    map_metric = "column_values.iso_date_between"
    success_keys = ("min_value", "max_value", "mostly")

    @pydantic.validator("min_value", "max_value")
    def _bound_is_iso_date(cls, value: object) -> object:
        return _check_iso_date_bound(value)


# --- code lists ----------------------------------------------------------------------------------


class ColumnValuesDelimitedCodesInSet(ColumnMapMetricProvider):
    """Map metric: every code in a separator-joined list is in value_set (blanks pass)."""

    condition_metric_name = "column_values.delimited_codes_in_set"
    filter_column_isnull = False  # the condition passes nulls itself, without a copy
    condition_value_keys = ("value_set", "separator")

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(
        cls, column: pd.Series, value_set: list[str], separator: str = ";", **kwargs
    ) -> pd.Series:
        text = _as_text(column)
        known = text.str.fullmatch(codes_pattern(value_set, separator))
        return _aligned(known.to_numpy(dtype=bool, na_value=False) | is_blank(column), column)


class ExpectColumnValuesToBeDelimitedCodesInSet(ColumnMapExpectation):
    """Expect each non-blank value to be one or more codes from value_set joined by separator.

    Spaces around codes are allowed ("EH; CSC"); an empty code ("EH;;CSC", "EH;") fails, and so
    does a code in the wrong case. Blank values are ignored.
    """

    value_set: list[str] = pydantic.Field(min_items=1)
    separator: str = pydantic.Field(default=";", min_length=1)

    map_metric = "column_values.delimited_codes_in_set"
    success_keys = ("value_set", "separator", "mostly")


# --- whole rows ----------------------------------------------------------------------------------

IgnoreRowIf = Literal["all_values_are_missing", "any_value_is_missing", "never"]


class MulticolumnValuesNotAllBlank(MulticolumnMapMetricProvider):
    """Map metric: at least one of the columns holds a non-blank value."""

    condition_metric_name = "multicolumn_values.not_all_blank"

    @multicolumn_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column_list: pd.DataFrame, **kwargs) -> pd.Series:
        filled = np.zeros(len(column_list), dtype=bool)
        for name in column_list.columns:
            filled |= ~is_blank(column_list[name])
        return _aligned(filled, column_list)


class ExpectMulticolumnValuesToNotAllBeBlank(MulticolumnMapExpectation):
    """Expect every row to hold a non-blank value in at least one of column_list.

    `ignore_row_if` defaults to "never": GX's usual default would skip exactly the rows this
    expectation exists to find.
    """

    ignore_row_if: IgnoreRowIf = "never"

    map_metric = "multicolumn_values.not_all_blank"
    success_keys = ("mostly",)


class MulticolumnValueLengthsAtMost(MulticolumnMapMetricProvider):
    """Map metric: no value in the row is longer than max_length characters."""

    condition_metric_name = "multicolumn_values.lengths_at_most"
    condition_value_keys = ("max_length",)

    @multicolumn_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column_list: pd.DataFrame, max_length: int, **kwargs) -> pd.Series:
        fits = np.ones(len(column_list), dtype=bool)
        for name in column_list.columns:
            lengths = _as_text(column_list[name]).str.len()
            fits &= (lengths.isna() | (lengths <= max_length)).to_numpy(dtype=bool)
        return _aligned(fits, column_list)


class ExpectMulticolumnValueLengthsToBeAtMost(MulticolumnMapExpectation):
    """Expect no value in column_list to be longer than max_length characters.

    One expectation covers every column of a file, so a row counts once however many of its
    cells are too long. `ignore_row_if` defaults to "never".
    """

    max_length: int = pydantic.Field(gt=0)
    ignore_row_if: IgnoreRowIf = "never"

    map_metric = "multicolumn_values.lengths_at_most"
    success_keys = ("max_length", "mostly")


# Every custom expectation, for tests and for anyone listing what the suites may use.
CUSTOM_EXPECTATIONS: tuple[type, ...] = (
    ExpectColumnValuesToBeValidNhsNumber,
    ExpectColumnValuesToBeValidUkPostcode,
    ExpectColumnValuesToBeValidUpn,
    ExpectColumnValuesToBeValidSchoolUrn,
    ExpectColumnValuesToBeValidGpPracticeCode,
    ExpectColumnValuesToBeIsoDates,
    ExpectColumnValuesToBeIsoDatesBetween,
    ExpectColumnValuesToBeDelimitedCodesInSet,
    ExpectMulticolumnValuesToNotAllBeBlank,
    ExpectMulticolumnValueLengthsToBeAtMost,
)
