"""Our vectorised identifier checks agree with the field libraries and the DOMAIN rules."""

import random

import nhs_number
import pandas as pd
import pytest

from transforms.identifiers import (
    nhs_check_digit,
    nhs_number_is_valid,
    normalise_postcode,
    postcode_district,
    postcode_is_valid,
    postcode_sector,
    upn_check_letter,
    upn_is_valid,
)


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ("9434765919", True),
        ("943 476 5919", True),
        ("943-476-5919", True),
        ("9434765918", False),
        ("943476591", False),
        ("94347659190", False),
        ("", False),
        ("abcdefghij", False),
        ("4010232137", True),
    ],
)
def test_nhs_number_known_answers(value, valid):
    assert bool(nhs_number_is_valid(pd.Series([value])).iloc[0]) is valid


def test_nhs_number_agrees_with_nhs_number_library_on_random_values():
    # The library also applies Scotland's CHI date rule to 010 101 0000-311 299 9999; the
    # DOMAIN rule for the index is Modulus 11 alone, so compare outside that range.
    rng = random.Random(11)
    values = [f"{rng.randrange(3_200_000_000, 10**10):010d}" for _ in range(20000)]
    ours = nhs_number_is_valid(pd.Series(values)).tolist()
    theirs = [nhs_number.is_valid(v) for v in values]
    assert ours == theirs
    assert sum(ours) > 1000  # the sample holds plenty of valid numbers


def test_nhs_number_mod11_agrees_with_library_checksum_over_whole_range():
    from nhs_number import calculate_checksum

    rng = random.Random(12)
    values = [f"{rng.randrange(10**10):010d}" for _ in range(20000)]
    ours = nhs_number_is_valid(pd.Series(values)).tolist()
    theirs = [calculate_checksum(v[:9]) == int(v[9]) for v in values]
    assert ours == theirs


def test_check_digit_of_domain_example():
    assert nhs_check_digit("943476591") == 9


def test_upn_domain_example_and_temporary_upn():
    assert upn_check_letter("801200005001") == "B"
    body = "80120000500"
    temporary = upn_check_letter(body + "A") + body + "A"
    assert upn_is_valid(pd.Series(["B801200005001", temporary, "A801200005001", ""])).tolist() == [
        True,
        True,
        False,
        False,
    ]


def test_upn_vectorised_agrees_with_scalar_rule():
    rng = random.Random(5)
    bodies = [f"{rng.randrange(10**12):012d}" for _ in range(5000)]
    upns = [upn_check_letter(b) + b for b in bodies]
    wrong = [("A" if u[0] != "A" else "B") + u[1:] for u in upns]
    assert upn_is_valid(pd.Series(upns)).all()
    assert not upn_is_valid(pd.Series(wrong)).any()


@pytest.mark.parametrize(
    ("value", "valid", "district", "sector"),
    [
        ("LS6 2AB", True, "LS6", "LS6 2"),
        ("ls62ab", True, "LS6", "LS6 2"),
        ("SW1A 1AA", True, "SW1A", "SW1A 1"),
        ("M1 1AE", True, "M1", "M1 1"),
        ("W1A 0AX", True, "W1A", "W1A 0"),
        ("EC1A 1BB", True, "EC1A", "EC1A 1"),
        ("QX1 1AA", False, None, None),  # Q never first
        ("LS6 2AC", False, None, None),  # C never in the inward letters
        ("LS6", False, None, None),
        ("", False, None, None),
        ("12345", False, None, None),
    ],
)
def test_postcode_rules(value, valid, district, sector):
    s = pd.Series([value])
    assert bool(postcode_is_valid(s).iloc[0]) is valid
    got_d, got_s = postcode_district(s).iloc[0], postcode_sector(s).iloc[0]
    assert (None if pd.isna(got_d) else got_d) == district
    assert (None if pd.isna(got_s) else got_s) == sector


def test_postcode_normalisation_spaces_outward_and_inward():
    assert normalise_postcode(pd.Series([" sw1a1aa ", "M1  1AE"])).tolist() == [
        "SW1A 1AA",
        "M1 1AE",
    ]
