"""The index load: snapshots, opt-outs, sticky shields, idempotence and order independence.

Every test runs on the embedded SQLite index and on PostgreSQL (`index_url` fixture).
"""

import itertools
import random

import pandas as pd
import pytest
import sqlalchemy as sa
from conftest import empty_index

from transforms.load import IndexStore, StagedFile
from transforms.minimise import KEY_COLUMNS

A, B = "E08000035", "E08000003"


def child_rows(policy, pseudonyms, council, shielded=(), **overrides):
    rows = []
    for p in pseudonyms:
        row = {
            "child_pseudonym": p,
            "pseudonym_kind": "nhs",
            "key_version": "v1",
            "council_code": council,
            "shielded": p in shielded,
            "year_of_birth": 2015,
            "sex": "F",
            "postcode_district": "LS6",
            "school_urn": "107000",
            "gp_practice_code": "B86001",
            "services": "EH",
            "other_service_involved": False,
            "care_leaver": False,
        }
        row.update(overrides)
        if p in shielded:
            for f in policy.fields:
                if f.shielded == "drop":
                    row[f.name] = None
        rows.append(row)
    return pd.DataFrame(rows, columns=[*KEY_COLUMNS, *policy.field_names])


def staged(
    rows, council, sha, kind="children", extract_kind="snapshot", created="2026-11-25", seq=1
):
    return StagedFile(
        council,
        f"{kind}_{sha}.csv",
        sha.ljust(64, "0"),
        kind,
        extract_kind,
        seq,
        created + "T06:00:00Z",
        rows,
    )


def optouts(pseudonyms, scope, sha):
    return staged(pd.DataFrame({"child_pseudonym": list(pseudonyms)}), scope, sha, "optout")


def test_index_schema_is_exactly_what_the_policy_allows(index_url, policy):
    store = IndexStore.from_url(index_url, policy)
    columns = [c["name"] for c in sa.inspect(store.engine).get_columns("child_index")]
    assert columns == [
        "child_pseudonym",
        "pseudonym_kind",
        "key_version",
        "responsible_council",
        "shielded",
        *policy.field_names,
    ]


def test_when_snapshot_omits_a_child_then_the_child_leaves_the_index(index_url, policy):
    store = IndexStore.from_url(index_url, policy)
    store.load(staged(child_rows(policy, ["p1", "p2", "p3"], A), A, "a1"))
    outcome = store.load(staged(child_rows(policy, ["p1", "p3"], A), A, "a2", seq=2))
    assert outcome.removed == 1
    assert store.index_frame()["child_pseudonym"].tolist() == ["p1", "p3"]


def test_one_row_per_child_held_by_two_councils_and_kept_until_both_let_go(index_url, policy):
    store = IndexStore.from_url(index_url, policy)
    store.load(
        staged(
            child_rows(policy, ["p1"], A, postcode_district="LS6"), A, "a1", created="2026-11-24"
        )
    )
    store.load(staged(child_rows(policy, ["p1"], B, postcode_district="M1"), B, "b1"))
    index = store.index_frame()
    assert len(index) == 1
    assert index.loc[0, "responsible_council"] == B  # the newest extract speaks for the child
    assert index.loc[0, "postcode_district"] == "M1"
    store.load(staged(child_rows(policy, [], B), B, "b2", seq=2))
    assert store.index_frame().loc[0, "responsible_council"] == A
    store.load(staged(child_rows(policy, [], A), A, "a2", seq=2))
    assert store.index_frame().empty


def test_when_opted_out_then_removed_everywhere_and_never_reloaded(index_url, policy):
    store = IndexStore.from_url(index_url, policy)
    store.load(staged(child_rows(policy, ["p1", "p2"], A), A, "a1"))
    store.load(staged(child_rows(policy, ["p1"], B), B, "b1"))
    outcome = store.load(optouts(["p1"], "national", "n1"))
    assert outcome.removed == 1
    later = store.load(staged(child_rows(policy, ["p1", "p2"], A), A, "a2", seq=2))
    assert later.opted_out == 1
    assert store.index_frame()["child_pseudonym"].tolist() == ["p2"]
    snap = store.snapshot()
    assert [r[0] for r in snap["council_record"]] == ["p2"]
    assert snap["optout"] == [("p1", "national")]
    assert "optout" not in [c["name"] for c in sa.inspect(store.engine).get_columns("child_index")]


def test_when_shielded_by_one_council_then_no_other_extract_unshields(index_url, policy):
    store = IndexStore.from_url(index_url, policy)
    store.load(staged(child_rows(policy, ["p1"], B), B, "b1", created="2026-11-26"))
    store.load(staged(child_rows(policy, ["p1"], A, shielded={"p1"}), A, "a1"))
    store.load(staged(child_rows(policy, ["p1"], B), B, "b2", created="2026-11-27", seq=2))
    row = store.index_frame().iloc[0]
    assert bool(row["shielded"])
    for f in policy.fields:
        if f.shielded == "drop":
            assert pd.isna(row[f.name]), f.name
    with store.engine.connect() as conn:
        rec = store.t["council_record"]
        leaked = conn.execute(
            sa.select(rec.c.postcode_district).where(rec.c.postcode_district.is_not(None))
        ).fetchall()
    assert leaked == []  # other councils' contributions are stripped too


def test_same_file_twice_changes_nothing(index_url, policy):
    store = IndexStore.from_url(index_url, policy)
    file = staged(child_rows(policy, ["p1", "p2"], A), A, "a1")
    store.load(file)
    before = store.snapshot()
    assert store.load(file).status == "already_loaded"
    assert store.snapshot() == before


def test_older_snapshot_arriving_late_is_refused(index_url, policy):
    store = IndexStore.from_url(index_url, policy)
    store.load(staged(child_rows(policy, ["p1"], A), A, "a2", seq=2))
    outcome = store.load(staged(child_rows(policy, ["p1", "p9"], A), A, "a1", seq=1))
    assert outcome.status == "refused" and "stale snapshot" in outcome.reason
    assert store.index_frame()["child_pseudonym"].tolist() == ["p1"]


def test_any_arrival_order_gives_the_same_index(index_url, policy):
    files = [
        staged(child_rows(policy, ["p1", "p2", "p3"], A), A, "a1", created="2026-11-24"),
        staged(child_rows(policy, ["p2", "p4"], B, shielded={"p4"}), B, "b1"),
        staged(
            child_rows(policy, ["p1", "p3", "p4"], A, sex="M"), A, "a2", created="2026-11-25", seq=2
        ),
        optouts(["p3"], A, "o1"),
        staged(child_rows(policy, ["p5"], B), B, "b0", created="2026-11-20", seq=0),
    ]
    orders = list(itertools.permutations(range(len(files))))
    random.Random(3).shuffle(orders)
    snapshots = []
    for n, order in enumerate(orders[:24]):
        store = empty_index(index_url.replace("index.sqlite", f"index{n}.sqlite"), policy)
        for i in order:
            store.load(files[i])
        snapshots.append(store.snapshot())
        store.engine.dispose()
    assert all(s == snapshots[0] for s in snapshots)


def test_only_the_shielding_council_can_unshield_and_it_is_audited(index_url, policy):
    store = IndexStore.from_url(index_url, policy)
    store.load(staged(child_rows(policy, ["p1"], A, shielded={"p1"}), A, "a1"))
    store.load(staged(child_rows(policy, ["p1"], B), B, "b1"))
    with pytest.raises(ValueError, match="only the council that shielded"):
        store.unshield("p1", B)
    assert store.unshield("p1", A) == 1
    assert not store.index_frame().iloc[0]["shielded"]
    # The next unflagged extract brings the fields back; no extract re-hides them by accident.
    store.load(staged(child_rows(policy, ["p1"], B), B, "b2", seq=2, created="2026-11-26"))
    assert store.index_frame().iloc[0]["postcode_district"] == "LS6"
    events = [e for e in store.snapshot_audit() if e[0] == "unshield"]
    assert events == [("unshield", A)]


def test_opt_out_withdrawal_is_explicit_and_the_next_extract_restores(index_url, policy):
    store = IndexStore.from_url(index_url, policy)
    store.load(optouts(["p1"], "national", "n1"))
    store.load(optouts(["p1"], A, "o1"))
    store.load(staged(child_rows(policy, ["p1"], A), A, "a1"))
    assert store.index_frame().empty
    with pytest.raises(ValueError, match="no opt-out of scope"):
        store.withdraw_optout("p1", B)
    store.withdraw_optout("p1", "national")
    store.load(staged(child_rows(policy, ["p1"], A), A, "a2", seq=2))
    assert store.index_frame().empty  # the council's own opt-out still stands
    store.withdraw_optout("p1", A)
    store.load(staged(child_rows(policy, ["p1"], A), A, "a3", seq=3))
    assert store.index_frame()["child_pseudonym"].tolist() == ["p1"]
    assert [e for e in store.snapshot_audit() if e[0] == "optout_withdrawn"] == [
        ("optout_withdrawn", "national"),
        ("optout_withdrawn", A),
    ]


def test_deltas_apply_only_in_sequence(index_url, policy):
    store = IndexStore.from_url(index_url, policy)
    first = store.load(staged(child_rows(policy, ["p1"], A), A, "d1", extract_kind="delta", seq=1))
    assert first.status == "refused" and "send a snapshot first" in first.reason
    store.load(staged(child_rows(policy, ["p1", "p2"], A), A, "a1", seq=1))
    gap = store.load(staged(child_rows(policy, ["p3"], A), A, "d3", extract_kind="delta", seq=3))
    assert gap.status == "refused" and "out-of-sequence delta" in gap.reason
    assert "1 extract(s) in between are missing" in gap.reason
    nxt = store.load(
        staged(child_rows(policy, ["p2", "p3"], A, sex="M"), A, "d2", extract_kind="delta", seq=2)
    )
    assert nxt.status == "loaded"
    index = store.index_frame().set_index("child_pseudonym")
    assert index.index.tolist() == ["p1", "p2", "p3"]  # a delta adds and changes, never removes
    assert index["sex"].tolist() == ["F", "M", "M"]
    late = store.load(staged(child_rows(policy, ["p3"], A), A, "d3", extract_kind="delta", seq=3))
    assert late.status == "loaded"  # the missing delta arrived: the later one now applies


def test_a_delta_replaces_every_value_of_a_changed_child_including_the_archive_month(
    index_url, policy
):
    # A delta's rows are upserted, and the archive month is set apart (only where it differs):
    # a corrected birth date must still move the month, and the other columns still change.
    store = IndexStore.from_url(index_url, policy)
    rows = child_rows(policy, ["p1", "p2"], A).assign(archive_on="2033-05")
    store.load(staged(rows, A, "a1", seq=1))
    changed = child_rows(policy, ["p1", "p2"], A, year_of_birth=2016, sex="M")
    changed["archive_on"] = ["2034-02", "2033-05"]
    assert store.load(staged(changed, A, "d2", extract_kind="delta", seq=2)).status == "loaded"
    rec = store.t["council_record"]
    with store.engine.connect() as conn:
        held = conn.execute(
            sa.select(
                rec.c.child_pseudonym, rec.c.archive_on, rec.c.year_of_birth, rec.c.sex
            ).order_by(rec.c.child_pseudonym)
        ).all()
    assert [tuple(r) for r in held] == [("p1", "2034-02", 2016, "M"), ("p2", "2033-05", 2016, "M")]
    index = store.index_frame().set_index("child_pseudonym")
    assert index["year_of_birth"].tolist() == [2016, 2016]
