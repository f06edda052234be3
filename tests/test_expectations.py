"""Custom GX expectations, the packaged suites and the rule book."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from expectations import custom
from expectations.loader import (
    CHILDREN_SUITE,
    OPTOUT_SUITE,
    RuleBookError,
    SuiteLoadError,
    build_suite,
    check_rules_match_suite,
    load_rules,
    load_suite,
    parse_rules,
    read_suite_json,
)
from transforms import contract, identifiers

POLICY = Path(__file__).resolve().parents[1] / "transforms" / "config" / "policy.yaml"


@pytest.fixture(scope="module")
def batch_definition():
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    return (
        context.data_sources.add_pandas("tests")
        .add_dataframe_asset("frame")
        .add_batch_definition_whole_dataframe("whole")
    )


def failing_rows(batch_definition, expectation, frame: pd.DataFrame) -> list[int]:
    """Run one expectation; return the positions GX reports as unexpected."""
    batch = batch_definition.get_batch(batch_parameters={"dataframe": frame})
    result = batch.validate(
        expectation,
        result_format={"result_format": "COMPLETE", "exclude_unexpected_values": True},
    )
    assert not result.exception_info.get("raised_exception"), result.exception_info
    rows = sorted(result.result.get("unexpected_index_list") or [])
    assert result.success == (not rows)
    return rows


def one_column(values: list[object]) -> pd.DataFrame:
    return pd.DataFrame({"v": pd.array(values, dtype="string")})


# Each case: expectation, column values, positions expected to fail. Blanks ("", spaces, <NA>)
# never fail a format expectation.
CUSTOM_CASES = [
    pytest.param(
        custom.ExpectColumnValuesToBeValidNhsNumber(column="v"),
        ["9434765919", "943 476 5919", "943-476-5919", "9434765918", "943476591", "", None, "  "],
        [3, 4],
        id="nhs_number",
    ),
    pytest.param(
        custom.ExpectColumnValuesToBeValidNhsNumber(column="v"),
        ["94347659190", "abcdefghij", "0000000000"],
        [0, 1],
        id="nhs_number_shape",
    ),
    pytest.param(
        custom.ExpectColumnValuesToBeValidUkPostcode(column="v"),
        ["LS6 2AB", "ls62ab", "SW1A 1AA", "EC1A 1BB", "QS6 2AB", "LS6 2CB", "LS62", "", None],
        [4, 5, 6],
        id="postcode",
    ),
    pytest.param(
        custom.ExpectColumnValuesToBeValidUpn(column="v"),
        ["B801200005001", "A801200005001", "B80120000500", "", None],
        [1, 2],
        id="upn",
    ),
    pytest.param(
        custom.ExpectColumnValuesToBeValidSchoolUrn(column="v"),
        ["107000", "012345", "12345", "1070000", ""],
        [1, 2, 3],
        id="school_urn",
    ),
    pytest.param(
        custom.ExpectColumnValuesToBeValidGpPracticeCode(column="v"),
        ["B86001", "b86001", "B8600", "BB6001", ""],
        [1, 2, 3],
        id="gp_practice_code",
    ),
    pytest.param(
        custom.ExpectColumnValuesToBeIsoDates(column="v"),
        ["2015-03-02", "2024-02-29", "2023-02-29", "2015-3-2", "02/03/2015", "2015-13-01", ""],
        [2, 3, 4, 5],
        id="iso_dates",
    ),
    pytest.param(
        custom.ExpectColumnValuesToBeIsoDatesBetween(
            column="v", min_value="2000-11-26", max_value="2026-11-25"
        ),
        ["2000-11-26", "2026-11-25", "2000-11-25", "2026-11-26", "not a date", ""],
        [2, 3],
        id="iso_dates_between",
    ),
    pytest.param(
        custom.ExpectColumnValuesToBeDelimitedCodesInSet(column="v", value_set=["EH", "CSC"]),
        ["EH", "EH;CSC", "EH; CSC", "eh", "EH;XX", "EH;;CSC", "EH;", "", None],
        [3, 4, 5, 6],
        id="delimited_codes",
    ),
]


@pytest.mark.parametrize(("expectation", "values", "expected"), CUSTOM_CASES)
def test_when_custom_expectation_runs_then_only_bad_values_fail(
    batch_definition, expectation, values, expected
):
    assert failing_rows(batch_definition, expectation, one_column(values)) == expected


def test_when_iso_date_bounds_are_parameters_then_values_come_from_the_run(batch_definition):
    expectation = custom.ExpectColumnValuesToBeIsoDatesBetween(
        column="v", min_value={"$PARAMETER": "lo"}, max_value={"$PARAMETER": "hi"}
    )
    batch = batch_definition.get_batch(
        batch_parameters={"dataframe": one_column(["2010-01-01", "2020-01-01"])}
    )
    result = batch.validate(
        expectation,
        result_format="COMPLETE",
        expectation_parameters={"lo": "2015-01-01", "hi": "2025-01-01"},
    )
    assert result.result["unexpected_index_list"] == [0]


def test_when_date_bound_is_not_a_date_then_expectation_is_refused():
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        custom.ExpectColumnValuesToBeIsoDatesBetween(column="v", min_value="last tuesday")


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        ([("9434765919", ""), ("", "L1"), ("", ""), (None, "  "), ("x", None)], [2, 3]),
    ],
)
def test_when_row_has_no_id_then_not_all_blank_fails(batch_definition, rows, expected):
    frame = pd.DataFrame(rows, columns=["a", "b"], dtype="string")
    expectation = custom.ExpectMulticolumnValuesToNotAllBeBlank(column_list=["a", "b"])
    assert failing_rows(batch_definition, expectation, frame) == expected


def test_when_a_cell_is_too_long_then_its_row_fails_once(batch_definition):
    frame = pd.DataFrame(
        {"a": ["x" * 5, "x" * 6, "x" * 6, None], "b": ["", "x" * 6, "y", "z"]}, dtype="string"
    )
    expectation = custom.ExpectMulticolumnValueLengthsToBeAtMost(
        column_list=["a", "b"], max_length=5
    )
    assert failing_rows(batch_definition, expectation, frame) == [1, 2]


def test_when_nhs_numbers_are_random_then_gx_agrees_with_identifiers(batch_definition):
    rng = np.random.default_rng(20261125)
    values = pd.Series(
        ["".join(map(str, rng.integers(0, 10, 10))) for _ in range(3000)], dtype="string"
    )
    values[rng.random(3000) < 0.1] = ""
    expected = np.flatnonzero(~identifiers.nhs_number_is_valid(values) & values.ne("")).tolist()
    frame = pd.DataFrame({"v": values})
    expectation = custom.ExpectColumnValuesToBeValidNhsNumber(column="v")
    assert failing_rows(batch_definition, expectation, frame) == expected
    assert 0 < len(expected) < 3000


# --- suites ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "count"), [(CHILDREN_SUITE, 22), (OPTOUT_SUITE, 5)])
def test_when_suite_loads_then_no_expectation_is_dropped(name, count):
    raw = read_suite_json(name)
    suite = load_suite(name, load_rules()[name])
    assert len(raw["expectations"]) == count
    assert len(suite.expectations) == count


def test_when_suite_names_unknown_expectation_then_loading_raises():
    raw = read_suite_json(CHILDREN_SUITE)
    raw["expectations"].append(
        {"type": "expect_column_values_to_be_a_valid_unicorn", "kwargs": {"column": "x"},
         "meta": {"rule": "unicorn"}}
    )  # fmt: skip
    with pytest.raises(SuiteLoadError, match="expect_column_values_to_be_a_valid_unicorn"):
        build_suite(raw)


def test_gx_alone_drops_an_unknown_expectation_silently():
    # Why load_suite exists: a canary that fails if GX stops dropping (then the guard may go).
    import great_expectations as gx

    raw = read_suite_json(OPTOUT_SUITE)
    raw["expectations"].append({"type": "expect_no_such_thing", "kwargs": {"column": "x"}})
    suite = gx.ExpectationSuite(name=raw["name"], expectations=raw["expectations"])
    assert len(suite.expectations) == len(raw["expectations"]) - 1


def test_when_gx_drops_an_expectation_anyway_then_the_count_check_raises(monkeypatch):
    from great_expectations.expectations import registry

    known = registry.get_expectation_impl

    def lenient(name):  # let the unknown type past the loader's own check
        return (lambda **_: None) if name == "expect_no_such_thing" else known(name)

    monkeypatch.setattr(registry, "get_expectation_impl", lenient)
    raw = read_suite_json(OPTOUT_SUITE)
    raw["expectations"].append(
        {"type": "expect_no_such_thing", "kwargs": {"column": "x"}, "meta": {"rule": "x"}}
    )
    with pytest.raises(SuiteLoadError, match="GX kept 5 of 6 expectations"):
        build_suite(raw)


def test_when_gx_rejects_expectation_arguments_then_loading_raises():
    raw = read_suite_json(CHILDREN_SUITE)
    raw["expectations"].append(
        {"type": "expect_column_values_to_be_valid_nhs_number", "kwargs": {},
         "meta": {"rule": "nhs_number_mod11"}}
    )  # fmt: skip
    with pytest.raises(
        SuiteLoadError, match=r"expectation 22 \(.*\) has invalid arguments: .*column"
    ):
        build_suite(raw)


def test_when_expectation_has_no_rule_then_loading_raises():
    raw = read_suite_json(OPTOUT_SUITE)
    del raw["expectations"][2]["meta"]
    with pytest.raises(SuiteLoadError, match=r"no meta\.rule"):
        build_suite(raw)


def test_when_suite_loads_with_rules_then_gx_severity_follows_rule_book():
    rules = load_rules()[CHILDREN_SUITE]
    suite = load_suite(CHILDREN_SUITE, rules)
    for expectation in suite.expectations:
        rule = expectation.meta["rule"]
        assert expectation.severity.value == rules.rules[rule].severity


def _expectations(name: str, kind: str) -> list[dict]:
    return [e for e in read_suite_json(name)["expectations"] if e["type"] == kind]


def test_children_suite_is_in_step_with_contract_and_policy():
    (columns,) = _expectations(CHILDREN_SUITE, "expect_table_columns_to_match_set")
    assert columns["kwargs"]["column_set"] == list(contract.CHILDREN_COLUMNS)
    assert columns["kwargs"]["exact_match"] is True
    required = _expectations(CHILDREN_SUITE, "expect_column_values_to_not_be_null")
    assert [e["kwargs"]["column"] for e in required] == list(contract.CHILDREN_REQUIRED_VALUES)
    in_set = {e["kwargs"]["column"]: e["kwargs"]["value_set"] for e in
              _expectations(CHILDREN_SUITE, "expect_column_values_to_be_in_set")}  # fmt: skip
    assert in_set == {
        "sex": list(contract.SEX_CODES),
        "shielded": list(contract.YES_NO),
        "care_leaver": list(contract.YES_NO),
    }
    (services,) = _expectations(CHILDREN_SUITE, "expect_column_values_to_be_delimited_codes_in_set")
    policy = yaml.safe_load(POLICY.read_text(encoding="utf-8"))
    assert sorted(services["kwargs"]["value_set"]) == sorted(policy["services"])
    (lengths,) = _expectations(CHILDREN_SUITE, "expect_multicolumn_value_lengths_to_be_at_most")
    assert lengths["kwargs"] == {
        "column_list": list(contract.CHILDREN_COLUMNS),
        "max_length": contract.MAX_FIELD_CHARS,
    }


def test_optout_suite_is_in_step_with_contract():
    (columns,) = _expectations(OPTOUT_SUITE, "expect_table_columns_to_match_set")
    assert columns["kwargs"]["column_set"] == list(contract.OPTOUT_COLUMNS)
    (ids,) = _expectations(OPTOUT_SUITE, "expect_multicolumn_values_to_not_all_be_blank")
    assert ids["kwargs"]["column_list"] == list(contract.OPTOUT_COLUMNS)


def test_every_custom_expectation_is_registered_with_gx():
    from great_expectations.expectations.registry import get_expectation_impl

    for cls in custom.CUSTOM_EXPECTATIONS:
        assert get_expectation_impl(cls.expectation_type) is cls


# --- rule book ------------------------------------------------------------------------------------


def _rules_document() -> dict:
    from importlib import resources

    text = resources.files("expectations").joinpath("rules.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text)


def test_rule_book_gives_the_agreed_severities():
    children = load_rules()[CHILDREN_SUITE]
    critical = {r for r, spec in children.rules.items() if spec.severity == "critical"}
    assert {
        "nhs_number_mod11", "date_of_birth_format", "date_of_birth_range", "postcode_format",
        "sex_code", "local_child_id_duplicate", "columns_match_contract", "shielded_flag",
        *(f"{c}_missing" for c in contract.CHILDREN_REQUIRED_VALUES),
    } <= critical  # fmt: skip
    warnings = set(children.rules) - critical
    assert warnings == {
        "upn_check_letter", "school_urn_format", "gp_practice_code_format", "services_known",
        "care_leaver_flag",
    }  # fmt: skip
    assert children.max_critical_row_fraction == 0.05


def test_when_rule_book_has_several_errors_then_all_are_reported():
    document = _rules_document()
    broken = copy.deepcopy(document)
    broken["suites"][CHILDREN_SUITE]["max_critical_row_fraction"] = 5
    broken["suites"][CHILDREN_SUITE]["rules"]["sex_code"]["severity"] = "fatal"
    broken["suites"][OPTOUT_SUITE]["rules"]["id_missing"]["fix"] = ""
    with pytest.raises(RuleBookError) as caught:
        parse_rules(broken)
    message = str(caught.value)
    assert "max_critical_row_fraction" in message
    assert "sex_code: severity" in message
    assert "id_missing: fix" in message


def test_when_rule_book_and_suite_disagree_then_both_directions_are_reported():
    book = parse_rules(_rules_document())
    raw = read_suite_json(OPTOUT_SUITE)
    raw["expectations"][2]["meta"]["rule"] = "ids_absent"
    with pytest.raises(RuleBookError) as caught:
        check_rules_match_suite(book[OPTOUT_SUITE], raw)
    assert "'ids_absent' is used by the suite" in str(caught.value)
    assert "'id_missing' is in rules.yaml but no expectation uses it" in str(caught.value)


def test_suite_files_are_plain_json_with_a_rule_per_expectation():
    for name in (CHILDREN_SUITE, OPTOUT_SUITE):
        raw = json.loads(json.dumps(read_suite_json(name)))
        assert all(e["meta"]["rule"] for e in raw["expectations"])
