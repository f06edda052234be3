"""Faker providers and the council list, checked against the field libraries and by hand."""

from __future__ import annotations

import nhs_number
import pandas as pd
import pytest
from stdnum.gb import nhs as stdnum_nhs
from stdnum.gb import upn as stdnum_upn

from synthetic_data.councils import COUNCILS, council_by_code
from synthetic_data.providers import make_faker
from transforms import contract, identifiers

UPN_LETTERS = "ABCDEFGHJKLMNPQRTUVWXYZ"
DRAWS = 400


def independent_upn_letter(body: str) -> str:
    """Check letter worked out from DOMAIN.md's rule, without the project's helpers."""
    return UPN_LETTERS[sum(int(ch) * pos for pos, ch in enumerate(body, start=2)) % 23]


@pytest.fixture
def fake():
    return make_faker(seed=11)


def test_independent_upn_rule_matches_the_domain_example():
    assert independent_upn_letter("801200005001") == "B"


def test_when_nhs_numbers_drawn_then_valid_and_all_in_the_999_test_range(fake):
    numbers = [fake.nhs_number() for _ in range(DRAWS)]
    assert all(nhs_number.is_valid(n) for n in numbers)
    assert all(stdnum_nhs.is_valid(n) for n in numbers)
    assert all(n.isdigit() and len(n) == 10 and n.startswith("999") for n in numbers)
    assert all(nhs_number.REGION_SYNTHETIC.contains_number(n) for n in numbers)
    assert identifiers.nhs_number_is_valid(pd.Series(numbers)).all()
    assert len(set(numbers)) > DRAWS * 0.95


def test_when_nhs_number_formatted_then_spaced_3_3_4_and_still_valid(fake):
    number = fake.nhs_number(formatted=True)
    assert [len(part) for part in number.split(" ")] == [3, 3, 4]
    assert nhs_number.is_valid(number.replace(" ", ""))


@pytest.mark.parametrize("council", COUNCILS[:8], ids=lambda c: c.name)
def test_when_upn_drawn_for_a_council_then_check_letter_right_and_la_number_leads(fake, council):
    for _ in range(50):
        upn = fake.upn(council.dfe_la_number)
        assert len(upn) == 13 and upn[1:].isdigit()
        assert upn[1:4] == str(council.dfe_la_number)
        assert upn[0] == independent_upn_letter(upn[1:])
        assert stdnum_upn.is_valid(upn)  # also checks the LA number is a known one


def test_when_upn_year_given_then_it_is_digits_8_and_9(fake):
    assert fake.upn(383, year=2019)[8:10] == "19"
    assert identifiers.upn_is_valid(pd.Series([fake.upn() for _ in range(DRAWS)])).all()


@pytest.mark.parametrize("bad", [38, "3830", "abc", 1234])
def test_when_la_number_not_three_digits_then_error_says_what_is_expected(fake, bad):
    with pytest.raises(ValueError, match="3-digit DfE LA number"):
        fake.upn(bad)


def test_when_urns_and_gp_codes_drawn_then_shapes_hold(fake):
    leeds = council_by_code("E08000035")
    urns = pd.Series([fake.school_urn() for _ in range(DRAWS)])
    codes = pd.Series([fake.gp_practice_code(leeds) for _ in range(DRAWS)])
    assert identifiers.urn_is_valid(urns).all()
    assert identifiers.gp_practice_code_is_valid(codes).all()
    assert codes.str.startswith("B86").all()
    assert identifiers.gp_practice_code_is_valid(
        pd.Series([fake.gp_practice_code() for _ in range(DRAWS)])
    ).all()


def test_when_council_postcode_drawn_then_valid_and_in_the_councils_districts(fake):
    for council in COUNCILS:
        postcodes = pd.Series([fake.council_postcode(council) for _ in range(20)])
        assert identifiers.postcode_is_valid(postcodes).all(), council.name
        assert identifiers.postcode_district(postcodes).isin(council.postcode_districts).all()


def test_when_council_drawn_then_it_is_one_of_the_list(fake):
    assert fake.council() in COUNCILS
    assert fake.council_code() in {c.gss_code for c in COUNCILS}


def test_when_same_seed_then_same_values_and_other_seed_other_values():
    def draw(seed):
        f = make_faker(seed)
        return [f.nhs_number(), f.upn(801), f.school_urn(), f.gp_practice_code(), f.name()]

    assert draw(5) == draw(5)
    assert draw(5) != draw(6)


# --- the council list -----------------------------------------------------------------------


def test_council_list_starts_with_the_demo_councils_and_has_known_codes():
    assert len(COUNCILS) >= 8
    assert [c.name for c in COUNCILS[:3]] == ["Leeds", "Manchester", "Kent"]
    known = {
        "E08000035": 383,  # Leeds
        "E08000003": 352,  # Manchester
        "E10000016": 886,  # Kent
        "E08000025": 330,  # Birmingham
        "E06000023": 801,  # Bristol
        "E09000007": 202,  # Camden
    }
    assert {code: council_by_code(code).dfe_la_number for code in known} == known


def test_council_codes_numbers_and_prefixes_are_unique_and_well_formed():
    assert len({c.gss_code for c in COUNCILS}) == len(COUNCILS)
    assert len({c.dfe_la_number for c in COUNCILS}) == len(COUNCILS)
    assert len({c.id_prefix for c in COUNCILS}) == len(COUNCILS)
    for council in COUNCILS:
        assert contract.COUNCIL_CODE_RE.fullmatch(council.gss_code), council.name
        assert 201 <= council.dfe_la_number <= 999
        assert all(len(p) == 3 and p[0].isalpha() and p[1:].isdigit() for p in council.ods_prefixes)


@pytest.mark.parametrize("council", COUNCILS, ids=lambda c: c.name)
def test_council_districts_are_valid_outward_codes_of_its_areas(council):
    sample = pd.Series([f"{d} 1AB" for d in council.postcode_districts])
    assert identifiers.postcode_is_valid(sample).all()
    for district in council.postcode_districts:
        area = "".join(ch for ch in district[:2] if ch.isalpha())
        assert area in council.postcode_areas, (council.name, district)


def test_when_council_code_unknown_then_error_lists_known_codes():
    with pytest.raises(KeyError, match="E08000035"):
        council_by_code("E99999999")
