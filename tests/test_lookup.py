"""Look-ups show the minimised row, only a council for the shielded, and log every access."""

import pandas as pd
import pytest
import sqlalchemy as sa

from transforms.load import IndexStore, StagedFile
from transforms.lookup import LookupRefused, audit_entries, lookup_child
from transforms.minimise import KEY_COLUMNS
from transforms.pseudonymise import pseudonymise_nhs_numbers

KNOWN, SHIELDED, OPTED, UNKNOWN = "9434765919", "4010232137", "9990000018", "9990000026"
COUNCIL = "E08000035"


@pytest.fixture
def store(index_url, policy, key):
    store = IndexStore.from_url(index_url, policy)
    p = pseudonymise_nhs_numbers(pd.Series([KNOWN, SHIELDED, OPTED]), key).tolist()
    rows = pd.DataFrame(
        [
            {
                "child_pseudonym": p[0],
                "pseudonym_kind": "nhs",
                "key_version": key.version,
                "council_code": COUNCIL,
                "shielded": False,
                "year_of_birth": 2015,
                "sex": "F",
                "postcode_district": "LS6",
                "school_urn": "107000",
                "gp_practice_code": "B86001",
                "services": "EH",
                "other_service_involved": True,
                "care_leaver": False,
            },
            {
                "child_pseudonym": p[1],
                "pseudonym_kind": "nhs",
                "key_version": key.version,
                "council_code": COUNCIL,
                "shielded": True,
                "care_leaver": False,
            },
            {
                "child_pseudonym": p[2],
                "pseudonym_kind": "nhs",
                "key_version": key.version,
                "council_code": COUNCIL,
                "shielded": False,
                "year_of_birth": 2012,
            },
        ],
        columns=[*KEY_COLUMNS, *policy.field_names],
    )
    store.load(
        StagedFile(
            COUNCIL, "c.csv", "1" * 64, "children", "snapshot", 1, "2026-11-25T06:00:00Z", rows
        )
    )
    store.load(
        StagedFile(
            "national",
            "o.csv",
            "2" * 64,
            "optout",
            "snapshot",
            1,
            "2026-11-25T06:00:00Z",
            pd.DataFrame({"child_pseudonym": [p[2]]}),
        )
    )
    yield store
    store.engine.dispose()


def test_found_child_shows_only_minimised_fields(store, key):
    answer = lookup_child(store, key, "943 476 5919", "Referral from school nurse")
    assert answer["result"] == "found"
    child = answer["child"]
    assert child["postcode_district"] == "LS6" and child["responsible_council"] == COUNCIL
    assert KNOWN not in repr(answer)


def test_shielded_child_shows_only_the_council_to_contact(store, key):
    answer = lookup_child(store, key, SHIELDED, "Safeguarding enquiry from GP")
    assert answer == {"result": "shielded", "message": f"shielded: contact council {COUNCIL}"}


def test_opted_out_and_unknown_children_are_indistinguishable(store, key):
    opted = lookup_child(store, key, OPTED, "Routine check by health visitor")
    unknown = lookup_child(store, key, UNKNOWN, "Routine check by health visitor")
    assert opted == unknown == {"result": "not found"}


def test_every_look_up_is_logged_by_pseudonym_never_by_number(store, key):
    for number in (KNOWN, SHIELDED, UNKNOWN):
        lookup_child(store, key, number, "Multi-agency meeting prep")
    with store.engine.connect() as conn:
        log = conn.execute(sa.select(store.t["access_log"])).fetchall()
    assert [r.outcome for r in log] == ["found", "shielded", "not found"]
    assert all(r.reason == "Multi-agency meeting prep" for r in log)
    text = repr(log)
    assert not any(n in text for n in (KNOWN, SHIELDED, UNKNOWN))


@pytest.mark.parametrize(
    ("number", "reason", "message"),
    [
        (KNOWN, "", "give the reason"),
        (KNOWN, "because", "give the reason"),
        ("9434765918", "Referral from school nurse", "not a valid NHS number"),
    ],
)
def test_refused_look_ups_say_why_without_echoing_the_number(store, key, number, reason, message):
    with pytest.raises(LookupRefused, match=message) as info:
        lookup_child(store, key, number, reason)
    assert number not in str(info.value)


def test_audit_ledger_has_counts_and_no_identities(store):
    entries = audit_entries(store)
    assert [e["event"] for e in entries] == ["load_children", "load_optout"]
    assert entries[0]["loaded"] == 3 and entries[1]["removed"] == 1
    assert not any(len(str(v)) == 64 for e in entries for v in e.values())
