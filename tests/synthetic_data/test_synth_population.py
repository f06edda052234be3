"""Synthetic populations in memory: clean rows are clean, defects are present where labelled."""

from __future__ import annotations

import datetime
import itertools
import json
import re

import nhs_number
import numpy as np
import pandas as pd
import pytest
from stdnum.gb import upn as stdnum_upn

from synthetic_data import population
from synthetic_data.councils import COUNCILS
from synthetic_data.notes import PII_TYPES
from synthetic_data.population import (
    DEFECT_KINDS,
    TRUTH_COLUMNS,
    PopulationConfig,
    generate_national_optouts,
    generate_population,
    service_codes,
)
from synthetic_data.vocab import HARMLESS_NOTES
from transforms import contract, identifiers

REF = datetime.date(2026, 11, 25)
# Defects common enough that every kind shows up many times in a small population.
CONFIG = PopulationConfig(children=6000, councils=3, seed=5, defect_rate=0.03, mover_rate=0.05)


@pytest.fixture(scope="module")
def batches():
    return list(generate_population(CONFIG))


@pytest.fixture(scope="module")
def rows(batches):
    """Extract and truth side by side, all councils, truth columns prefixed with `t_`."""
    frames = []
    for b in batches:
        truth = b.truth.add_prefix("t_")
        frames.append(pd.concat([b.extract, truth], axis=1))
    return pd.concat(frames, ignore_index=True)


def labelled(rows: pd.DataFrame, kind: str) -> pd.DataFrame:
    return rows[rows["t_defects"].str.split(";").apply(lambda kinds: kind in kinds)]


def clean(rows: pd.DataFrame) -> pd.DataFrame:
    return rows[rows["t_defects"] == ""]


def swap_day_month(dob: str) -> str:
    year, first, second = dob.split("-")
    return f"{year}-{second}-{first}"


def parse_dates(values: pd.Series) -> pd.Series:
    return pd.to_datetime(values, format="%Y-%m-%d", errors="coerce")


# --- shape --------------------------------------------------------------------------------------


def test_each_batch_has_contract_columns_as_strings_and_truth_aligned(batches):
    assert [b.council for b in batches] == list(COUNCILS[:3])
    for b in batches:
        assert tuple(b.extract.columns) == contract.CHILDREN_COLUMNS
        assert tuple(b.optouts.columns) == contract.OPTOUT_COLUMNS
        assert tuple(b.truth.columns) == TRUTH_COLUMNS
        for frame in (b.extract, b.optouts):
            assert all(pd.api.types.is_string_dtype(t) for t in frame.dtypes)
            assert not frame.isna().any().any()
        assert len(b.truth) == len(b.extract)
        assert (b.truth["row_number"] == np.arange(1, len(b.truth) + 1)).all()
        assert (b.truth["local_child_id"] == b.extract["local_child_id"]).all()
        assert (b.truth["council_code"] == b.council.gss_code).all()
        assert (b.extract.map(len) <= contract.MAX_FIELD_CHARS).all().all()


def test_generate_population_streams_one_council_at_a_time():
    stream = generate_population(PopulationConfig(children=300, councils=3))
    first = next(stream)
    assert first.council.name == "Leeds"
    assert [b.council.name for b in stream] == ["Manchester", "Kent"]


@pytest.mark.parametrize("children, councils", [(0, 1), (2, 3), (7, 1), (50, 5)])
def test_tiny_populations_work(children, councils):
    batches = list(generate_population(PopulationConfig(children=children, councils=councils)))
    assert len(batches) == councils
    assert sum(b.truth["true_child_id"].nunique() for b in batches) >= children


# --- clean rows ---------------------------------------------------------------------------------


def test_clean_rows_pass_every_check(rows):
    ok = clean(rows)
    assert len(ok) > 0.6 * len(rows)
    nhs = identifiers.normalise_nhs_number(ok["nhs_number"])
    assert identifiers.nhs_number_is_valid(ok["nhs_number"]).all()
    assert (nhs == ok["t_nhs_number"]).all()
    assert nhs.str.startswith("999").all()
    with_upn = ok[ok["upn"] != ""]
    assert identifiers.upn_is_valid(with_upn["upn"]).all()
    assert (with_upn["upn"] == with_upn["t_upn"]).all()
    assert identifiers.postcode_is_valid(ok["postcode"]).all()
    assert (identifiers.normalise_postcode(ok["postcode"]) == ok["postcode"]).all()
    assert ok["sex"].isin(list(contract.SEX_CODES)).all()
    dob = parse_dates(ok["date_of_birth"])
    assert dob.notna().all()
    assert (dob <= pd.Timestamp(REF)).all()
    assert (dob > pd.Timestamp(REF.replace(year=REF.year - 25))).all()
    for column in ("given_name", "family_name", "date_of_birth", "postcode", "sex"):
        assert (ok[column] == ok[f"t_{column}"]).all(), column
    for column in ("given_name", "family_name", "local_child_id"):
        assert (ok[column] == ok[column].str.strip()).all()
        assert (ok[column] != "").all()
    assert identifiers.urn_is_valid(ok.loc[ok["school_urn"] != "", "school_urn"]).all()
    gp = ok.loc[ok["gp_practice_code"] != "", "gp_practice_code"]
    assert identifiers.gp_practice_code_is_valid(gp).all()
    assert ok["shielded"].isin(contract.YES_NO).all()
    assert ok["care_leaver"].isin(contract.YES_NO).all()
    for _, group in ok.groupby("t_council_code"):
        assert group["local_child_id"].is_unique


def test_columns_no_defect_touches_always_match_truth(rows):
    for column in ("local_child_id", "address", "carer_name", "carer_phone", "former_family_name"):
        assert (rows[column] == rows[f"t_{column}"]).all(), column


def test_services_are_policy_codes_and_include_sensitive_ones(rows):
    codes = {code for code, _ in service_codes()}
    sensitive = {code for code, is_sensitive in service_codes() if is_sensitive}
    used = set(rows["services"].str.split(";").explode()) - {""}
    assert used <= codes
    assert used & sensitive
    assert (rows["services"] != "").mean() > 0.2


# --- defects --------------------------------------------------------------------------------


def test_every_defect_kind_occurs(rows):
    counts = rows["t_defects"].str.split(";").explode().value_counts()
    assert set(DEFECT_KINDS) <= set(counts.index)
    assert (counts[list(DEFECT_KINDS)] >= 20).all()


def test_when_labelled_invalid_nhs_then_checksum_fails_but_truth_is_valid(rows):
    bad = labelled(rows, "invalid_nhs_checksum")
    assert (bad["nhs_number"] != "").all()
    assert not identifiers.nhs_number_is_valid(bad["nhs_number"]).any()
    assert identifiers.nhs_number_is_valid(bad["t_nhs_number"]).all()
    assert (
        identifiers.normalise_nhs_number(bad["nhs_number"]).str[:9] == bad["t_nhs_number"].str[:9]
    ).all()


def test_when_labelled_missing_nhs_then_blank_and_nowhere_else(rows):
    missing = labelled(rows, "missing_nhs_number")
    assert (missing["nhs_number"] == "").all()
    assert (missing["t_nhs_number"] == "").all()
    assert (
        rows.loc[rows["nhs_number"] == "", "t_defects"].str.contains("missing_nhs_number")
    ).all()
    share = rows.drop_duplicates("t_true_child_id")["t_nhs_number"].eq("").mean()
    assert share == pytest.approx(CONFIG.missing_nhs_rate, abs=0.01)


def test_when_labelled_implausible_dob_then_future_or_too_old(rows):
    odd = labelled(rows, "implausible_dob")
    dob = parse_dates(odd["date_of_birth"])
    assert dob.notna().all()
    too_old = dob <= pd.Timestamp(REF.replace(year=REF.year - 26))
    assert ((dob > pd.Timestamp(REF)) | too_old).all()


def test_when_labelled_day_month_swapped_then_swapping_back_gives_truth(rows):
    swapped = labelled(rows, "day_month_swapped")
    assert (swapped["date_of_birth"] != swapped["t_date_of_birth"]).all()
    assert (swapped["date_of_birth"].map(swap_day_month) == swapped["t_date_of_birth"]).all()
    # Some swaps are invalid dates (day > 12), some valid but wrong: both must occur.
    assert parse_dates(swapped["date_of_birth"]).isna().any()
    assert parse_dates(swapped["date_of_birth"]).notna().any()


def test_when_labelled_malformed_postcode_then_invalid_even_after_normalising(rows):
    broken = labelled(rows, "malformed_postcode")
    assert not identifiers.postcode_is_valid(broken["postcode"]).any()
    assert identifiers.postcode_is_valid(broken["t_postcode"]).all()


def test_when_labelled_unknown_sex_then_not_a_contract_code(rows):
    assert not labelled(rows, "unknown_sex_code")["sex"].isin(list(contract.SEX_CODES)).any()


def test_when_labelled_whitespace_case_then_a_field_differs_but_normalises_to_truth(rows):
    messy = labelled(rows, "whitespace_case")
    for _, row in messy.iterrows():
        candidates = ["given_name", "family_name"]
        if "malformed_postcode" not in row["t_defects"]:  # then the postcode is left alone
            candidates.append("postcode")
        changed = [c for c in candidates if row[c] != row[f"t_{c}"]]
        assert len(changed) == 1, row["t_defects"]
        column = changed[0]
        value, truth = row[column], row[f"t_{column}"]
        if column == "postcode":
            assert identifiers.normalise_postcode(pd.Series([value]))[0] == truth
        else:
            assert value.strip().casefold() == truth.casefold()


def test_when_labelled_wrong_upn_letter_then_only_the_letter_differs(rows):
    wrong = labelled(rows, "wrong_upn_check_letter")
    assert not identifiers.upn_is_valid(wrong["upn"]).any()
    assert identifiers.upn_is_valid(wrong["t_upn"]).all()
    assert (wrong["upn"].str[1:] == wrong["t_upn"].str[1:]).all()


def test_when_labelled_duplicate_then_identical_to_another_row_and_vice_versa(batches):
    for b in batches:
        is_duplicate = b.truth["defects"].str.contains("duplicate_row")
        assert is_duplicate.any()
        assert (b.extract.duplicated(keep=False) == is_duplicate).all()
        assert (b.truth.drop(columns="row_number").duplicated(keep=False) == is_duplicate).all()


# --- identifiers across the population ----------------------------------------------------------


def test_nhs_numbers_and_upns_are_valid_test_values_one_per_child(rows):
    sent = identifiers.normalise_nhs_number(rows["nhs_number"])
    assert sent[sent != ""].str.startswith("999").all()  # typos included: never a real range
    children = rows.drop_duplicates("t_true_child_id")
    numbers = children.loc[children["t_nhs_number"] != "", "t_nhs_number"]
    assert numbers.is_unique
    assert numbers.str.startswith("999").all()
    assert all(nhs_number.is_valid(n) for n in numbers.sample(300, random_state=1))
    upns = children.loc[children["t_upn"] != "", "t_upn"]
    assert upns.is_unique
    assert all(stdnum_upn.is_valid(u) for u in upns.sample(300, random_state=1))


def test_postcodes_are_in_the_councils_districts_and_upns_in_its_la(rows, batches):
    for b in batches:
        truth = b.truth
        home = truth[~truth["is_mover"]]
        assert (
            identifiers.postcode_district(truth["postcode"])
            .isin(b.council.postcode_districts)
            .all()
        )
        with_upn = home[home["upn"] != ""]
        assert (with_upn["upn"].str[1:4] == str(b.council.dfe_la_number)).all()


# --- households, ages, people -------------------------------------------------------------------


def test_siblings_share_family_name_address_and_carer_and_twins_exist(rows):
    home = rows[~rows["t_is_mover"] & (rows["t_carer_name"] != "")]
    home = home.drop_duplicates("t_true_child_id")
    households = home.groupby(["t_council_code", "t_address", "t_carer_name", "t_carer_phone"])
    sizes = households.size()
    assert (sizes >= 2).mean() > 0.3
    assert households["t_family_name"].nunique().eq(1).mean() > 0.99
    assert households["t_postcode"].nunique().eq(1).all()
    twins = home.groupby(["t_address", "t_carer_name", "t_date_of_birth"]).size()
    assert (twins >= 2).sum() >= 5


def test_carers_are_17_to_63_years_older_than_the_children(rows):
    with_carer = rows[rows["t_carer_date_of_birth"] != ""]
    gap_days = (
        parse_dates(with_carer["t_date_of_birth"])
        - parse_dates(with_carer["t_carer_date_of_birth"])
    ).dt.days
    assert gap_days.min() >= 17 * 365
    assert gap_days.max() <= 63 * 366


def test_ages_and_care_leavers(rows):
    truth = rows.drop_duplicates("t_true_child_id")
    age_years = (pd.Timestamp(REF) - parse_dates(truth["t_date_of_birth"])).dt.days / 365.25
    assert age_years.min() >= 0 and age_years.max() < 25
    adults = age_years >= 18
    assert adults.any()
    assert truth.loc[adults, "t_care_leaver"].all()
    assert (age_years[truth["t_care_leaver"]] >= 16).all()
    assert (truth.loc[adults, "t_carer_name"] == "").all()
    assert truth["t_sex"].isin(["M", "F"]).mean() > 0.95
    assert set(truth["t_sex"]) <= set(contract.SEX_CODES)
    assert (truth["t_former_family_name"] != "").mean() == pytest.approx(0.03, abs=0.015)


# --- movers, shielding, opt-outs ----------------------------------------------------------------


def test_movers_appear_in_two_councils_with_same_identity_and_new_local_id(rows):
    movers = rows[rows["t_is_mover"]].drop_duplicates(["t_true_child_id", "t_council_code"])
    per_child = movers.groupby("t_true_child_id")
    assert per_child["t_council_code"].nunique().eq(2).all()
    for column in ("t_nhs_number", "t_given_name", "t_family_name", "t_date_of_birth", "t_upn"):
        assert per_child[column].nunique().eq(1).all(), column
    assert per_child["t_local_child_id"].nunique().eq(2).all()
    assert (movers["t_nhs_number"] != "").all()
    assert per_child.ngroups == round(CONFIG.mover_rate * CONFIG.children)
    others = rows[~rows["t_is_mover"]].groupby("t_true_child_id")["t_council_code"].nunique()
    assert others.eq(1).all()


def test_shielding_is_per_household_and_a_moved_child_stays_shielded_in_truth():
    config = PopulationConfig(children=2000, councils=2, seed=3, shielded_rate=0.2, mover_rate=0.2)
    leeds, manchester = generate_population(config)
    truth = leeds.truth[leeds.truth["carer_name"] != ""]
    by_household = truth.groupby(["address", "carer_name"])["shielded"].nunique()
    assert by_household.eq(1).all()
    assert (leeds.extract["shielded"] == leeds.truth["shielded"].map({True: "Y", False: "N"})).all()
    arrived = manchester.truth["is_mover"]
    shielded_arrivals = manchester.truth["shielded"] & arrived
    assert shielded_arrivals.any()
    # The new council has not been told: the flag it sends is N, the truth says shielded.
    assert (manchester.extract.loc[shielded_arrivals, "shielded"] == "N").all()
    home = manchester.truth.loc[~arrived, "shielded"].map({True: "Y", False: "N"})
    assert (manchester.extract.loc[~arrived, "shielded"] == home).all()


def test_council_register_lists_exactly_the_opted_out_children(batches):
    for b in batches:
        truth = b.truth.drop_duplicates("true_child_id")
        opted = truth[truth["opted_out_council"]]
        assert len(b.optouts) == len(opted) > 0
        with_nhs = b.optouts[b.optouts["nhs_number"] != ""]
        assert set(with_nhs["nhs_number"]) == set(
            opted.loc[opted["nhs_number"] != "", "nhs_number"]
        )
        assert (with_nhs["local_child_id"] == "").all()
        by_id = b.optouts[b.optouts["nhs_number"] == ""]
        assert set(by_id["local_child_id"]) == set(
            opted.loc[opted["nhs_number"] == "", "local_child_id"]
        )


def test_national_register_covers_children_of_every_council_and_others(batches):
    national = generate_national_optouts(CONFIG)
    assert tuple(national.columns) == contract.OPTOUT_COLUMNS
    assert (national["local_child_id"] == "").all()
    assert national["nhs_number"].is_monotonic_increasing and national["nhs_number"].is_unique
    assert identifiers.nhs_number_is_valid(national["nhs_number"]).all()
    listed = set(national["nhs_number"])
    in_extracts = set()
    for b in batches:
        opted = b.truth[b.truth["opted_out_national"]]
        assert len(opted) > 0, b.council.name
        assert set(opted["nhs_number"]) <= listed
        assert not (set(b.truth.loc[~b.truth["opted_out_national"], "nhs_number"]) & listed)
        in_extracts |= set(b.truth["nhs_number"])
    assert listed - in_extracts  # children in no extract of this population


def test_opted_out_any_combines_national_own_and_the_other_councils_register(rows):
    direct = rows["t_opted_out_national"] | rows["t_opted_out_council"]
    assert (rows["t_opted_out_any"] >= direct).all()
    elsewhere = rows["t_opted_out_any"] & ~direct
    assert rows.loc[elsewhere, "t_is_mover"].all()
    child = rows["t_true_child_id"]
    expected = set(child[rows["t_opted_out_council"]]) | set(child[rows["t_opted_out_national"]])
    assert set(child[rows["t_opted_out_any"]]) == expected
    assert rows.groupby("t_true_child_id")["t_opted_out_any"].nunique().eq(1).all()


# --- notes --------------------------------------------------------------------------------------

SPAN_SHAPES = {
    "EMAIL_ADDRESS": re.compile(r"[a-z]+\.[a-z]+\d*@example\.(com|org|net)"),
    "UK_NHS": re.compile(r"999 ?\d{3} ?\d{4}"),
    "PHONE_NUMBER": re.compile(r"(\+44 |0)[\d ]{9,12}"),
    "PERSON": re.compile(r"[A-Z][A-Za-z']+ [A-Z][A-Za-z']+"),
    "STREET_ADDRESS": re.compile(r"(Flat \d+, )?\d+ [A-Z][A-Za-z']+ [A-Z][a-z]+"),
}


def test_notes_pii_spans_point_at_the_personal_data(rows):
    with_pii = rows[rows["t_notes_pii_spans"] != "[]"]
    assert len(with_pii) > 100
    seen = set()
    for note, spans_json, emails in zip(
        with_pii["notes"], with_pii["t_notes_pii_spans"], with_pii["t_note_emails"], strict=True
    ):
        spans = json.loads(spans_json)
        assert spans
        placed_emails = []
        for span in spans:
            text = note[span["start"] : span["end"]]
            seen.add(span["type"])
            if span["type"] == "UK_POSTCODE":
                assert identifiers.postcode_is_valid(pd.Series([text]))[0], text
            elif span["type"] == "UK_NHS":
                assert SPAN_SHAPES["UK_NHS"].fullmatch(text), text
                assert nhs_number.is_valid(text.replace(" ", ""))
            else:
                assert SPAN_SHAPES[span["type"]].fullmatch(text), (span["type"], text)
            if span["type"] == "EMAIL_ADDRESS":
                placed_emails.append(text)
        assert emails == ";".join(placed_emails)
        assert all(a["end"] <= b["start"] for a, b in itertools.pairwise(spans))
    assert seen == set(PII_TYPES)


def test_notes_without_spans_are_blank_or_harmless(rows):
    plain = rows.loc[rows["t_notes_pii_spans"] == "[]", "notes"]
    sentences = set(HARMLESS_NOTES)
    for note in plain[plain != ""]:
        assert note in sentences or any(
            note.startswith(s + " ") and note[len(s) + 1 :] in sentences for s in sentences
        ), note
    assert not any(re.search(r"\d|@", s) for s in HARMLESS_NOTES)
    share = (rows["notes"] != "").mean()
    assert share == pytest.approx(CONFIG.notes_rate, abs=0.03)
    pii_share = (rows["t_notes_pii_spans"] != "[]").sum() / (rows["notes"] != "").sum()
    assert pii_share == pytest.approx(CONFIG.notes_pii_rate, abs=0.04)


# --- determinism and configuration --------------------------------------------------------------


def test_same_config_gives_equal_frames_and_another_seed_does_not():
    config = PopulationConfig(children=900, councils=2, seed=9)
    first = list(generate_population(config))
    again = list(generate_population(config))
    other = list(generate_population(PopulationConfig(children=900, councils=2, seed=10)))
    for a, b, c in zip(first, again, other, strict=True):
        pd.testing.assert_frame_equal(a.extract, b.extract)
        pd.testing.assert_frame_equal(a.truth, b.truth)
        pd.testing.assert_frame_equal(a.optouts, b.optouts)
        assert not a.extract.equals(c.extract)


def test_when_config_invalid_then_every_problem_reported_at_once():
    with pytest.raises(ValueError) as error:
        PopulationConfig(
            children=-1,
            councils=999,
            seed=-3,
            optout_rate=1.5,
            defect_rate="x",
            reference_date=datetime.datetime(2026, 11, 25, 6),
        )
    message = str(error.value)
    for field in ("children", "councils", "seed", "optout_rate", "defect_rate", "reference_date"):
        assert field in message


def test_when_more_children_than_test_nhs_numbers_and_range_test_then_error_explains():
    with pytest.raises(ValueError, match=r"nhs_range to 'auto' or 'extended'.*missing_nhs_rate"):
        PopulationConfig(children=1_000_000, nhs_range="test")
    fits = PopulationConfig(children=1_000_000, missing_nhs_rate=0.1, nhs_range="test")
    assert population.nhs_prefixes(fits) == (999,)


def test_when_population_fits_the_test_range_then_auto_uses_it_alone():
    assert population.nhs_prefixes(PopulationConfig()) == (999,)
    assert population.nhs_prefixes(PopulationConfig(children=937_000)) == (999,)
    synthetic = population.SYNTHETIC_NHS_PREFIXES
    assert population.nhs_prefixes(PopulationConfig(children=1_000_000)) == (999, *synthetic)
    assert population.nhs_prefixes(PopulationConfig(nhs_range="extended")) == (999, *synthetic)


def test_synthetic_prefixes_are_outside_every_issued_range_and_hold_england():
    # England and Wales 400-499 and 600-799 (England also 3xx), Scotland 010-311, NI 320-399.
    issued = set(range(10, 500)) | set(range(600, 800))
    assert not issued & set(population.SYNTHETIC_NHS_PREFIXES)
    assert 999 not in population.SYNTHETIC_NHS_PREFIXES
    england = PopulationConfig(children=12_000_000, councils=len(COUNCILS), sizes="real")
    capacity = sum(population.count_valid_nhs_numbers(p) for p in population.nhs_prefixes(england))
    assert capacity >= 12_000_000 > population.count_valid_nhs_numbers(999)


def test_when_even_synthetic_ranges_are_too_small_then_error_not_duplicates():
    with pytest.raises(ValueError, match="no number is ever given twice"):
        PopulationConfig(children=20_000_000, councils=len(COUNCILS), sizes="real")
    with pytest.raises(ValueError, match="hold only 1,818,181"):
        PopulationConfig(children=2_000_000, synthetic_nhs_prefixes=(990,))


@pytest.mark.parametrize("prefixes", [(450,), (999,), (990, 990), [990], ("990",)])
def test_when_synthetic_prefixes_invalid_then_refused(prefixes):
    with pytest.raises(ValueError, match="synthetic_nhs_prefixes"):
        PopulationConfig(synthetic_nhs_prefixes=prefixes)


@pytest.fixture
def tiny_ranges(monkeypatch):
    """Each 3-digit prefix holds only its first 1,000 valid NHS numbers."""

    def first_thousand(prefix: int) -> np.ndarray:
        return real(prefix)[:1000]

    real = population._valid_nhs_numbers
    for cached in (population.count_valid_nhs_numbers, population.test_nhs_numbers):
        cached.cache_clear()
    monkeypatch.setattr(population, "_valid_nhs_numbers", first_thousand)
    yield
    monkeypatch.undo()
    for cached in (population.count_valid_nhs_numbers, population.test_nhs_numbers):
        cached.cache_clear()


def test_when_population_outgrows_the_test_range_then_numbers_stay_unique(tiny_ranges):
    config = PopulationConfig(
        children=2900, councils=3, missing_nhs_rate=0, synthetic_nhs_prefixes=(990, 991)
    )
    truth = pd.concat([b.truth for b in generate_population(config)])
    numbers = truth.drop_duplicates("true_child_id")["nhs_number"]  # movers are in two councils
    assert len(numbers) == 2900 and numbers.is_unique
    assert set(numbers.str[:3]) == {"999", "990", "991"}
    assert nhs_number.is_valid(numbers.iloc[0])
    with pytest.raises(ValueError, match="hold only 3,000"):
        PopulationConfig(
            children=3001, councils=3, missing_nhs_rate=0, synthetic_nhs_prefixes=(990, 991)
        )
    with pytest.raises(ValueError, match="hold only 1,000"):
        PopulationConfig(children=2900, missing_nhs_rate=0, nhs_range="test")


def test_reference_date_moves_the_whole_population():
    earlier = PopulationConfig(children=300, councils=1, reference_date=datetime.date(2025, 1, 31))
    [batch] = generate_population(earlier)
    clean_rows = batch.truth[batch.truth["defects"] == ""]
    dob = parse_dates(batch.extract.loc[clean_rows.index, "date_of_birth"])
    assert (dob <= pd.Timestamp("2025-01-31")).all()
