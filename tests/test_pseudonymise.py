"""Pseudonyms are keyed, stable, domain-separated, and the key never shows."""

import pandas as pd
import pytest

from transforms.keys import KeyMissing, key_from_environment
from transforms.pseudonymise import PseudonymKey, assign_pseudonyms, pseudonymise_nhs_numbers

# Known answers under the fixed test key (tests/conftest.py): HMAC-SHA256 over "nhs|<digits>"
# and "local|<council>|<local id>".
NHS_VECTOR = "1a1d4e0584ee4710c71e31712ffe372c2796e03e3a22154d799f1f784e687fb5"
LOCAL_VECTOR = "9c348da063d042012614dc57ddc0207c34b1f71e0f20b0638a650945734dfb92"


def test_known_answer_for_nhs_number_in_any_spacing(key):
    got = pseudonymise_nhs_numbers(pd.Series(["9434765919", "943 476 5919", "943-476-5919"]), key)
    assert got.tolist() == [NHS_VECTOR] * 3


def test_key_version_is_derived_from_key_without_revealing_it(key):
    assert key.version == "f9c3d53f446c"
    assert key.secret.hex() not in repr(key)


def test_when_nhs_number_invalid_or_blank_then_no_national_pseudonym(key):
    got = pseudonymise_nhs_numbers(pd.Series(["9434765918", "", None]), key)
    assert got.isna().all()


def test_when_no_nhs_number_then_council_scoped_pseudonym(key):
    frame = pd.DataFrame(
        {"nhs_number": ["", "9434765919"], "local_child_id": ["L0001", "L0002"]}, dtype="string"
    )
    out = assign_pseudonyms(frame, "E08000035", key)
    assert out["child_pseudonym"].tolist() == [LOCAL_VECTOR, NHS_VECTOR]
    assert out["pseudonym_kind"].tolist() == ["local", "nhs"]
    other = assign_pseudonyms(frame, "E08000003", key)
    assert other["child_pseudonym"].iloc[0] != LOCAL_VECTOR  # never links across councils
    assert other["child_pseudonym"].iloc[1] == NHS_VECTOR  # the NHS number does


def test_different_key_gives_unrelated_pseudonyms(key):
    other = PseudonymKey(b"\x01" * 32)
    a = pseudonymise_nhs_numbers(pd.Series(["9434765919"]), key).iloc[0]
    b = pseudonymise_nhs_numbers(pd.Series(["9434765919"]), other).iloc[0]
    assert a != b and other.version != key.version


def test_short_key_is_refused():
    with pytest.raises(ValueError, match="32 bytes"):
        PseudonymKey(b"short")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "no pseudonymisation key"),
        ({"REGISTRY_SYNC_KEY": "not hex at all"}, "not hex"),
        ({"REGISTRY_SYNC_KEY": "ab" * 8}, "shorter than 32 bytes"),
        ({"REGISTRY_SYNC_KEY_FILE": "/nonexistent/key"}, "does not exist"),
    ],
)
def test_key_errors_say_what_to_fix_without_echoing_the_value(env, message):
    with pytest.raises(KeyMissing, match=message) as info:
        key_from_environment(env)
    for value in env.values():
        if "nonexistent" not in value:
            assert value not in str(info.value)


def test_key_from_file(tmp_path):
    path = tmp_path / "k"
    path.write_text("ab" * 32 + "\n")
    assert key_from_environment({"REGISTRY_SYNC_KEY_FILE": str(path)}).secret == b"\xab" * 32
