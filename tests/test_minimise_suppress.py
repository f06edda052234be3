"""Minimisation keeps only the policy's fields at its coarseness; suppression removes and strips."""

import pandas as pd
import pytest

from transforms.minimise import KEY_COLUMNS, RETENTION_COLUMNS, coarsen, minimise
from transforms.suppress import remove_opted_out, strip_shielded


def extract_rows(**overrides):
    row = {
        "local_child_id": "L1",
        "nhs_number": "9434765919",
        "upn": "B801200005001",
        "given_name": "Ada",
        "family_name": "Quill",
        "former_family_name": "Stone",
        "date_of_birth": "2015-03-02",
        "sex": "F",
        "address": "1 Long Lane",
        "postcode": "LS6 2AB",
        "carer_name": "Bea Quill",
        "carer_phone": "07700 900123",
        "school_urn": "107000",
        "gp_practice_code": "B86001",
        "services": "EH;CAMHS",
        "shielded": "N",
        "care_leaver": "N",
        "notes": "Mum rang.",
        "child_pseudonym": "p1",
        "pseudonym_kind": "nhs",
        "key_version": "v1",
    }
    row.update(overrides)
    return pd.DataFrame([row], dtype="string")


def test_minimised_rows_hold_exactly_key_columns_and_policy_fields(policy):
    out = minimise(extract_rows(), policy, "E08000035")
    assert list(out.columns) == [*KEY_COLUMNS, *policy.field_names, *RETENTION_COLUMNS]
    row = out.iloc[0]
    assert row["archive_on"] == "2033-03"  # the month of the 18th birthday, never the day
    assert row["year_of_birth"] == 2015 and row["postcode_district"] == "LS6"
    assert row["services"] == "EH" and bool(row["other_service_involved"]) is True
    assert bool(row["care_leaver"]) is False and row["council_code"] == "E08000035"
    text = out.astype(str).to_string()
    for raw in (
        "9434765919",
        "B801200005001",
        "Ada",
        "Quill",
        "Stone",
        "2015-03-02",
        "Long Lane",
        "LS6 2AB",
        "07700",
        "CAMHS",
        "Mum rang",
        "L1",
    ):
        assert raw not in text


@pytest.mark.parametrize(
    ("how", "value", "expected"),
    [
        ("year", "2015-03-02", 2015),
        ("postcode_district", "sw1a 1aa", "SW1A"),
        ("postcode_district", "not a postcode", None),
        ("non_sensitive_services", "SH;EH;CSC", "CSC;EH"),
        ("non_sensitive_services", "SH;SM", None),
        ("non_sensitive_services", "EH;BOGUS", "EH"),
        ("any_sensitive_service", "EH;SM", True),
        ("any_sensitive_service", "", False),
        ("none", "", None),
    ],
)
def test_coarsening_table(policy, how, value, expected):
    got = coarsen(pd.Series([value], dtype="string"), how, policy).iloc[0]
    assert (None if pd.isna(got) else got) == expected


def test_unknown_coarsening_is_an_error(policy):
    with pytest.raises(ValueError, match="unknown coarsening"):
        coarsen(pd.Series(["x"]), "exact_address", policy)


def test_when_opted_out_then_row_removed_and_counted(policy):
    rows = minimise(
        pd.concat([extract_rows(), extract_rows(child_pseudonym="p2")]), policy, "E08000035"
    )
    kept, removed = remove_opted_out(rows, {"p2", "p9"})
    assert kept["child_pseudonym"].tolist() == ["p1"] and removed == 1


def test_when_shielded_then_only_kept_fields_survive(policy):
    rows = minimise(
        pd.concat([extract_rows(shielded="Y"), extract_rows(child_pseudonym="p2")]),
        policy,
        "E08000035",
    )
    out, count = strip_shielded(rows, policy, also_shielded={"p2"})  # p2: shielded elsewhere
    assert count == 2 and out["shielded"].all()
    for rule in policy.fields:
        if rule.shielded == "drop":
            assert out[rule.name].isna().all(), rule.name
    assert out["care_leaver"].notna().all()  # retention needs it even when shielded
