"""transforms.validate: row verdicts, file verdicts and a values-free GX summary."""

from __future__ import annotations

import datetime
import json
import logging

import numpy as np
import pandas as pd
import pytest

from transforms import identifiers
from transforms.contract import CHILDREN_COLUMNS, OPTOUT_COLUMNS
from transforms.validate import (
    RuleOutcome,
    ValidationResult,
    date_of_birth_bounds,
    validate_children,
    validate_optouts,
)

EXTRACT_DATE = datetime.date(2026, 11, 25)
COUNCIL = "E08000035"
N_ROWS = 40  # one bad row is 2.5%, under the 5% that refuses a file
BAD = 7  # the row each case corrupts
TEMPORARY_UPN = identifiers.upn_check_letter("80120000500A") + "80120000500A"


def child(i: int = 0, **overrides: str) -> dict[str, str]:
    row = {
        "local_child_id": f"LC{i:06d}",
        "nhs_number": "943 476 5919",
        "upn": "B801200005001",
        "given_name": "Amelia",
        "family_name": "Jones",
        "former_family_name": "",
        "date_of_birth": "2015-03-02",
        "sex": "F",
        "address": "1 Some Road",
        "postcode": "LS6 2AB",
        "carer_name": "Pat Jones",
        "carer_phone": "0113 496 0000",
        "school_urn": "107000",
        "gp_practice_code": "B86001",
        "services": "EH;CSC",
        "shielded": "N",
        "care_leaver": "",
        "notes": "",
    }
    row.update(overrides)
    return row


def frame_of(rows: list[dict[str, str]], columns=CHILDREN_COLUMNS) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=list(columns), dtype="string")


def children(n: int = N_ROWS, **bad: str) -> pd.DataFrame:
    rows = [child(i) for i in range(n)]
    rows[BAD].update(bad)
    return frame_of(rows)


def run(frame: pd.DataFrame, extract_date: datetime.date = EXTRACT_DATE) -> ValidationResult:
    return validate_children(frame, council_code=COUNCIL, extract_date=extract_date)


# --- one rule at a time ---------------------------------------------------------------------------

CASES = [
    # (overrides of row BAD, rule it breaks, column, severity)
    ({"local_child_id": ""}, "local_child_id_missing", "local_child_id", "critical"),
    ({"given_name": ""}, "given_name_missing", "given_name", "critical"),
    ({"family_name": "   "}, "family_name_missing", "family_name", "critical"),
    ({"date_of_birth": ""}, "date_of_birth_missing", "date_of_birth", "critical"),
    ({"sex": ""}, "sex_missing", "sex", "critical"),
    ({"postcode": ""}, "postcode_missing", "postcode", "critical"),
    ({"shielded": ""}, "shielded_missing", "shielded", "critical"),
    ({"nhs_number": "9434765918"}, "nhs_number_mod11", "nhs_number", "critical"),
    ({"nhs_number": "943476591"}, "nhs_number_mod11", "nhs_number", "critical"),
    ({"date_of_birth": "2015-02-30"}, "date_of_birth_format", "date_of_birth", "critical"),
    ({"date_of_birth": "02/03/2015"}, "date_of_birth_format", "date_of_birth", "critical"),
    ({"date_of_birth": "2026-11-26"}, "date_of_birth_range", "date_of_birth", "critical"),
    ({"date_of_birth": "2000-11-25"}, "date_of_birth_range", "date_of_birth", "critical"),
    ({"sex": "m"}, "sex_code", "sex", "critical"),
    ({"sex": "Q"}, "sex_code", "sex", "critical"),
    ({"postcode": "QS6 2AB"}, "postcode_format", "postcode", "critical"),
    ({"shielded": "yes"}, "shielded_flag", "shielded", "critical"),
    ({"notes": "x" * 2001}, "field_too_long", None, "critical"),
    ({"care_leaver": "maybe"}, "care_leaver_flag", "care_leaver", "warning"),
    ({"upn": "A801200005001"}, "upn_check_letter", "upn", "warning"),
    ({"school_urn": "12345"}, "school_urn_format", "school_urn", "warning"),
    ({"gp_practice_code": "B8600"}, "gp_practice_code_format", "gp_practice_code", "warning"),
    ({"services": "EH;XYZ"}, "services_known", "services", "warning"),
]


@pytest.mark.parametrize(
    ("bad", "rule", "column", "severity"),
    CASES,
    ids=[f"{c[1]}-{i}" for i, c in enumerate(CASES)],
)
def test_when_one_rule_fails_then_that_row_alone_carries_it(bad, rule, column, severity):
    result = run(children(**bad))

    assert result.accepted, result.reason
    assert result.outcomes == (RuleOutcome(rule, column, severity, 1, result.outcomes[0].fix),)
    assert result.outcomes[0].fix
    assert result.row_rules[BAD] == rule
    assert result.row_ok[BAD] == (severity == "warning")
    others = result.row_rules.drop(index=BAD)
    assert (others == "").all()
    assert result.row_ok.drop(index=BAD).all()
    assert result.gx_success is False


ALLOWED = [
    {"nhs_number": ""},
    {"nhs_number": "9434765919"},
    {"nhs_number": "943-476-5919"},
    {"upn": ""},
    {"upn": TEMPORARY_UPN},
    {"postcode": "ls6 2ab"},
    {"postcode": "SW1A1AA"},
    {"date_of_birth": "2026-11-25"},  # born on the extract date
    {"date_of_birth": "2000-11-26"},  # 25 years old, 26 tomorrow
    {"services": ""},
    {"services": "CAMHS"},
    {"services": "EH; CSC;SEN"},
    {"school_urn": "", "gp_practice_code": ""},
    {"care_leaver": "Y"},
    {"shielded": "Y"},
    {"sex": "U"},
    {"former_family_name": "", "address": "", "carer_name": "", "carer_phone": ""},
    {"notes": "x" * 2000},
]


@pytest.mark.parametrize("overrides", ALLOWED, ids=[str(i) for i in range(len(ALLOWED))])
def test_when_value_is_unusual_but_allowed_then_row_is_clean(overrides):
    result = run(children(**overrides))
    assert result.outcomes == ()
    assert result.row_ok.all()
    assert result.gx_success is True


def test_when_local_child_id_repeats_then_both_rows_are_quarantined():
    rows = [child(i) for i in range(N_ROWS)]
    rows[3]["local_child_id"] = rows[4]["local_child_id"]
    result = run(frame_of(rows))
    assert result.accepted
    assert result.row_rules[3] == result.row_rules[4] == "local_child_id_duplicate"
    assert not result.row_ok[3] and not result.row_ok[4]
    assert result.outcomes[0].failed_rows == 2


def test_when_row_breaks_several_rules_then_all_are_listed_in_suite_order():
    result = run(children(sex="", upn="A801200005001", nhs_number="9434765918"))
    assert result.row_rules[BAD] == "sex_missing;nhs_number_mod11;upn_check_letter"
    assert [o.rule for o in result.outcomes] == [
        "sex_missing", "nhs_number_mod11", "upn_check_letter",
    ]  # fmt: skip


# --- file verdicts --------------------------------------------------------------------------------


def test_when_every_row_is_valid_then_file_is_accepted():
    result = run(children())
    assert result.accepted and result.reason is None
    assert result.row_ok.dtype == bool and result.row_ok.all()
    assert (result.row_rules == "").all()
    assert result.outcomes == ()
    assert result.gx_success is True
    assert result.gx_summary["statistics"]["unsuccessful_expectations"] == 0


def test_when_exactly_five_percent_fail_then_file_is_accepted():
    frame = children()
    frame.loc[[1, 2], "nhs_number"] = "9434765918"  # 2 of 40
    result = run(frame)
    assert result.accepted
    assert int((~result.row_ok).sum()) == 2


def test_when_more_than_five_percent_fail_critical_rules_then_file_is_refused():
    frame = children()
    frame.loc[[1, 2], "nhs_number"] = "9434765918"
    frame.loc[3, "postcode"] = "QS6 2AB"
    frame.loc[4, "upn"] = "A801200005001"  # a warning: does not count towards the limit
    result = run(frame)
    assert not result.accepted
    assert result.reason.startswith("3 of 40 rows (7.5%) broke critical rules")
    assert "nhs_number_mod11 (2)" in result.reason and "postcode_format (1)" in result.reason
    assert "upn_check_letter" not in result.reason
    assert result.row_ok.tolist() == [i not in (1, 2, 3) for i in range(N_ROWS)]


def test_when_many_rows_only_warn_then_file_is_accepted():
    frame = children()
    frame["upn"] = "A801200005001"
    result = run(frame)
    assert result.accepted and result.row_ok.all()
    assert result.outcomes[0].failed_rows == N_ROWS


def test_when_file_has_no_rows_then_it_is_refused():
    result = run(frame_of([]))
    assert not result.accepted
    assert result.reason == "the file has no data rows"
    assert len(result.row_ok) == 0


def test_when_a_column_is_missing_then_file_is_refused_naming_it():
    frame = children().drop(columns=["postcode"])
    result = run(frame)
    assert not result.accepted
    assert "missing postcode" in result.reason
    assert not result.row_ok.any()
    assert (result.row_rules == "columns_match_contract").all()
    assert result.outcomes[0].rule == "columns_match_contract"
    assert result.gx_success is False


def test_when_an_extra_column_is_sent_then_file_is_refused_naming_it():
    result = run(children().assign(ethnicity=""))
    assert not result.accepted
    assert "unexpected ethnicity" in result.reason


def test_when_a_column_is_repeated_then_file_is_refused_and_gx_agrees():
    frame = children()
    result = run(pd.concat([frame, frame[["notes"]]], axis=1))
    assert not result.accepted
    assert "1 repeated (notes)" in result.reason
    assert result.gx_success is False  # the column count expectation catches what a set cannot


def test_when_header_is_in_capitals_then_reason_says_so():
    frame = children()
    frame.columns = [c.upper() for c in frame.columns]
    result = run(frame)
    assert not result.accepted
    assert "write the header in lower case" in result.reason


def test_when_header_row_is_missing_then_reason_quotes_no_data():
    rows = children()
    headerless = rows.iloc[1:].copy()
    headerless.columns = list(rows.iloc[0])  # the first data row read as a header
    result = run(headerless)
    assert not result.accepted
    assert "is the header row missing?" in result.reason
    for value in rows.iloc[0]:
        if value:
            assert value not in result.reason


def test_when_frame_has_its_own_index_then_verdicts_align_with_it():
    frame = children(nhs_number="9434765918")
    frame.index = pd.RangeIndex(1000, 1000 + N_ROWS)
    result = run(frame)
    assert result.row_ok.index.equals(frame.index)
    assert result.row_rules.index.equals(frame.index)
    assert not result.row_ok[1000 + BAD]


def test_when_council_code_is_not_a_gss_code_then_value_error():
    with pytest.raises(ValueError, match="GSS code"):
        validate_children(children(), council_code="E07000001", extract_date=EXTRACT_DATE)


@pytest.mark.parametrize(
    ("extract_date", "earliest"),
    [
        (datetime.date(2026, 11, 25), datetime.date(2000, 11, 26)),
        (datetime.date(2028, 2, 29), datetime.date(2002, 3, 1)),  # no 29 Feb in 2002
        (datetime.date(2026, 2, 28), datetime.date(2000, 2, 29)),  # 29 Feb 2000 is 26 on 1 Mar
    ],
)
def test_date_of_birth_bounds(extract_date, earliest):
    assert date_of_birth_bounds(extract_date) == (earliest, extract_date)


# --- GX and the masks agree -----------------------------------------------------------------------


def random_children(n: int, seed: int) -> pd.DataFrame:
    """Valid rows with seeded corruptions across several rules."""
    rng = np.random.default_rng(seed)
    frame = frame_of([child(i) for i in range(n)])
    nhs = pd.Series(["".join(map(str, rng.integers(0, 10, 10))) for _ in range(n)])
    pick = rng.random(n)
    frame["nhs_number"] = np.where(pick < 0.3, nhs, frame["nhs_number"])
    frame.loc[pick > 0.95, "nhs_number"] = ""
    frame.loc[rng.random(n) < 0.05, "postcode"] = "LS6 2CB"
    frame.loc[rng.random(n) < 0.05, "upn"] = "A801200005001"
    frame.loc[rng.random(n) < 0.05, "date_of_birth"] = "2031-01-01"
    return frame.astype("string")


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_row_masks_agree_with_gx_and_with_identifiers(seed):
    frame = random_children(400, seed)
    result = run(frame)

    by_rule = {o.rule: o.failed_rows for o in result.outcomes}
    for entry in result.gx_summary["expectations"]:
        if entry["unexpected_count"] is not None:
            assert by_rule.get(entry["rule"], 0) == entry["unexpected_count"]
        assert entry["success"] == (entry["rule"] not in by_rule)
    assert result.gx_success == (result.outcomes == ())

    nhs_bad = ~identifiers.nhs_number_is_valid(frame["nhs_number"]) & frame["nhs_number"].ne("")
    flagged = result.row_rules.str.contains("nhs_number_mod11", regex=False)
    assert flagged.tolist() == nhs_bad.tolist()
    postcode_bad = ~identifiers.postcode_is_valid(frame["postcode"])
    assert result.row_rules.str.contains("postcode_format").tolist() == postcode_bad.tolist()
    critical = nhs_bad | postcode_bad | frame["date_of_birth"].eq("2031-01-01")
    assert result.row_ok.tolist() == (~critical).tolist()


# --- privacy --------------------------------------------------------------------------------------


def distinctive_frame() -> pd.DataFrame:
    """Rows whose every value is unusual enough to spot in any text, valid and invalid alike."""
    rows = [
        child(
            i,
            local_child_id=f"QZLOCAL{i:04d}",
            given_name=f"Quizzical{i}",
            family_name=f"Zyxwarble{i}",
            former_family_name=f"Formerly{i}",
            address=f"{i} Xylophone Terrace",
            carer_name=f"Carer Vexillum{i}",
            carer_phone=f"07700 9{i:05d}",
            notes=f"SECRET-NOTE-{i}",
            postcode="M1 1AE",  # not the examples the fix sentences give (LS6 2AB, B86001)
            gp_practice_code="Y02906",
        )
        for i in range(30)
    ]
    rows[1].update(nhs_number="9434765918", postcode="QS6 2AB", date_of_birth="1899-12-31")
    rows[2].update(sex="Zorro", shielded="Perhaps", upn="A801200005001", services="EH;QZSECRET")
    rows[3].update(school_urn="QZ1234", gp_practice_code="QZ9999", care_leaver="Sometimes")
    rows[4].update(date_of_birth="31/12/2019", local_child_id=rows[5]["local_child_id"])
    rows[6].update(notes="QZLONG" * 400)
    return frame_of(rows)


def _distinctive_values(frame: pd.DataFrame) -> set[str]:
    skip = set(frame.columns) | {"Y", "N", "M", "F", "X", "U", "EH;CSC"}
    return {v for v in frame.to_numpy().ravel() if v and len(v) >= 4 and v not in skip}


@pytest.mark.parametrize("drop", [None, "notes"])
def test_when_data_is_distinctive_then_no_value_leaks_into_results_or_logs(drop, caplog, capfd):
    frame = distinctive_frame()
    if drop:
        frame = frame.drop(columns=[drop])
    with caplog.at_level(logging.DEBUG):
        result = run(frame)
    text = "\n".join(
        [
            json.dumps(result.gx_summary, default=str),
            json.dumps(result.gx_result, default=str),
            str(result.reason),
            repr(result.outcomes),
            "\n".join(result.row_rules),
            caplog.text,
            *capfd.readouterr(),
        ]
    )
    assert not result.accepted  # several rows break critical rules: the file is refused
    leaked = sorted(v for v in _distinctive_values(frame) if v in text)
    assert leaked == []


def test_gx_summary_is_plain_json_without_value_lists():
    result = run(distinctive_frame())
    dumped = json.dumps(result.gx_summary)  # raises if anything is not plain JSON
    for banned in ("partial_unexpected", "unexpected_list", "unexpected_index", "observed_value"):
        assert banned not in dumped
    entry = result.gx_summary["expectations"][0]
    assert set(entry) == {
        "rule", "severity", "expectation_type", "column", "success", "element_count",
        "missing_count", "unexpected_count", "unexpected_percent", "raised_exception",
    }  # fmt: skip


def test_when_validating_then_gx_draws_no_progress_bars(capfd):
    run(children())
    out, err = capfd.readouterr()
    assert out == "" and err == ""


# --- opt-out register -----------------------------------------------------------------------------


def optouts(rows: list[tuple[str, str]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=list(OPTOUT_COLUMNS), dtype="string")


OPTOUT_ROWS = [("9434765919", ""), ("", "LC000001"), ("943 476 5919", "LC000002")] * 10


def test_when_optout_register_is_valid_then_accepted():
    result = validate_optouts(optouts(OPTOUT_ROWS))
    assert result.accepted and result.row_ok.all() and result.outcomes == ()
    assert result.gx_success


@pytest.mark.parametrize(
    ("row", "rule", "row_ok"),
    [
        (("", ""), "id_missing", False),
        (("  ", ""), "id_missing", False),
        (("9434765918", "LC000009"), "nhs_number_mod11", True),  # the local id still opts out
        (("9434765918", ""), "nhs_number_mod11", True),
    ],
)
def test_when_optout_row_is_bad_then_rule_and_verdict(row, rule, row_ok):
    rows = list(OPTOUT_ROWS)
    rows[BAD] = row
    result = validate_optouts(optouts(rows))
    assert result.accepted
    assert result.row_rules[BAD] == rule
    assert bool(result.row_ok[BAD]) is row_ok
    assert [o.rule for o in result.outcomes] == [rule]


def test_when_optout_register_lacks_a_column_then_refused():
    result = validate_optouts(optouts(OPTOUT_ROWS).drop(columns=["local_child_id"]))
    assert not result.accepted
    assert "missing local_child_id" in result.reason


def test_when_validating_then_gx_does_not_fingerprint_the_frame(monkeypatch):
    from great_expectations.execution_engine import pandas_execution_engine as engine

    hashed = []
    monkeypatch.setattr(pd.util, "hash_pandas_object", lambda *a, **k: hashed.append(1))
    original = engine.hash_pandas_dataframe
    result = run(children())
    assert hashed == [] and engine.hash_pandas_dataframe is original  # swapped for the run only
    assert "pandas_data_fingerprint" not in json.dumps(result.gx_result)


def test_gx_result_keeps_counts_and_suite_configuration_only():
    from transforms.validate import GX_RESULT_COUNTS

    result = run(distinctive_frame())
    data = json.loads(json.dumps(result.gx_result))  # plain JSON
    assert len(data["results"]) == 22 and data["success"] is False
    for entry in data["results"]:
        assert set(entry["result"]) <= {*GX_RESULT_COUNTS, "observed_value"}
    assert data["meta"]["council_code"] == COUNCIL


def _comparable(result: ValidationResult) -> tuple:
    gx = json.loads(json.dumps(result.gx_result, sort_keys=True, default=str))
    gx["meta"].pop("validation_time", None)
    gx["meta"].get("batch_markers", {}).pop("ge_load_time", None)
    return (
        result.accepted,
        result.reason,
        result.row_ok.tolist(),
        result.row_rules.tolist(),
        result.outcomes,
        json.dumps(result.gx_summary, sort_keys=True, default=str),
        json.dumps(gx, sort_keys=True),
    )


@pytest.mark.parametrize("frame", [random_children(300, 4), distinctive_frame(), children()])
def test_when_configurations_are_built_once_then_results_are_gx_own(frame, monkeypatch):
    import contextlib

    from transforms import validate

    once = _comparable(run(frame))
    monkeypatch.setattr(validate, "_configurations_built_once", contextlib.nullcontext)
    assert once == _comparable(run(frame))


def test_when_validating_then_each_expectation_builds_its_configuration_once(monkeypatch):
    from great_expectations.expectations.expectation import Expectation

    from transforms import validate

    gx_own = Expectation.__dict__["configuration"]
    asked: list[int] = []  # the expectations whose configuration was built during GX's run
    in_run = []

    def counted(expectation):
        if in_run:
            asked.append(id(expectation))
        return gx_own.fget(expectation)

    def run_gx(*args, **kwargs):
        in_run.append(True)
        try:
            return gx_run(*args, **kwargs)
        finally:
            in_run.clear()

    gx_run = validate._run_gx
    monkeypatch.setattr(validate, "_run_gx", run_gx)
    monkeypatch.setattr(Expectation, "configuration", property(counted))
    run(random_children(200, 5))
    assert len(asked) == len(set(asked)) > 0  # GX's own property: about 2,400 builds a run
    assert Expectation.__dict__["configuration"].fget is counted  # swapped for the run only
