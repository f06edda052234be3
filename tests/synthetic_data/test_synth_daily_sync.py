"""Two days through the real pipeline (no Airflow): the index follows what happened on day 1."""

from __future__ import annotations

import pandas as pd
import pytest

from synthetic_data.daily import DailyChanges, first_day, next_day
from synthetic_data.population import PopulationConfig
from synthetic_data.writer import write_day
from transforms.load import IndexStore
from transforms.pipeline import SyncPaths, sync_drop_zone
from transforms.pseudonymise import pseudonymise_nhs_numbers

CONFIG = PopulationConfig(children=1500, councils=3, seed=12)
CHANGES = DailyChanges(
    death_rate=0.004,
    leave_rate=0.004,
    move_rate=0.004,
    birth_rate=0.004,
    optout_rate=0.004,
    national_optout_rate=0.004,
    shield_rate=0.003,
)


@pytest.fixture(scope="module")
def days():
    day0 = first_day(CONFIG, CHANGES)
    return day0, next_day(day0)


def truth_of(day, key) -> pd.DataFrame:
    truth = pd.concat([cd.truth.to_pandas() for cd in day.councils], ignore_index=True)
    truth = truth[truth["nhs_number"] != ""].copy()  # children matched across days and councils
    truth["pseudonym"] = pseudonymise_nhs_numbers(truth["nhs_number"].astype("string"), key)
    return truth


def sync(home, key, policy, store, run_id):
    reports = sync_drop_zone(SyncPaths(home), key, policy, store, run_id=run_id)
    assert not [r.reason for r in reports if r.status == "refused"]
    return reports


@pytest.fixture(scope="module")
def day_by_day(days, tmp_path_factory, key, policy):
    """Day 0 loaded, then day 1 dropped and loaded: the index after each."""
    root = tmp_path_factory.mktemp("daily")
    store = IndexStore.from_url(f"sqlite:///{root / 'index.sqlite'}", policy)
    write_day(days[0], root / "landing", root / "truth")
    sync(root, key, policy, store, "day0")
    before = store.index_frame()
    write_day(days[1], root / "landing", root / "truth")
    reports = sync(root, key, policy, store, "day1")
    assert {r.sequence for r in reports} == {2}
    yield before, store.index_frame(), store.snapshot()
    store.engine.dispose()


def test_when_a_child_dies_or_leaves_on_day_one_then_they_leave_the_index(days, day_by_day, key):
    before, after, _ = day_by_day
    events = days[1].events.to_pandas()
    truth0 = truth_of(days[0], key)
    gone = events[events["event"].isin(["died", "moved_away", "aged_out"])]["true_child_id"]
    pseudonyms = set(truth0.loc[truth0["true_child_id"].isin(gone), "pseudonym"])
    were_there = pseudonyms & set(before["child_pseudonym"])
    assert len(were_there) >= 3
    assert not were_there & set(after["child_pseudonym"])


def test_when_a_child_opts_out_on_day_one_then_they_leave_the_index(days, day_by_day, key):
    before, after, _ = day_by_day
    events = days[1].events.to_pandas()
    truth1 = truth_of(days[1], key)
    opted = events[events["event"].isin(["opted_out_council", "opted_out_national"])]
    pseudonyms = set(truth1.loc[truth1["true_child_id"].isin(opted["true_child_id"]), "pseudonym"])
    were_there = pseudonyms & set(before["child_pseudonym"])
    assert len(were_there) >= 3
    assert not were_there & set(after["child_pseudonym"])


def test_when_a_household_is_shielded_on_day_one_then_its_fields_are_stripped(
    days, day_by_day, key, policy
):
    before, after, _ = day_by_day
    events = days[1].events.to_pandas()
    truth1 = truth_of(days[1], key)
    shielded = truth1.loc[
        truth1["true_child_id"].isin(events.loc[events["event"] == "shielded", "true_child_id"]),
        "pseudonym",
    ]
    was_open = set(before.loc[~before["shielded"].astype(bool), "child_pseudonym"])
    rows = after[after["child_pseudonym"].isin(set(shielded) & was_open)]
    assert len(rows) >= 2
    assert rows["shielded"].astype(bool).all()
    for f in policy.fields:
        if f.shielded == "drop":
            assert rows[f.name].isna().all(), f.name


def test_movers_and_newborns_are_indexed_with_their_new_council(days, day_by_day, key):
    _, after, _ = day_by_day
    events = days[1].events.to_pandas()
    truth1 = truth_of(days[1], key)
    index = after.set_index("child_pseudonym")
    arrived = events[events["event"] == "moved_in"]
    moved = truth1.merge(arrived, on="true_child_id", suffixes=("", "_event"))
    moved = moved[moved["pseudonym"].isin(index.index) & ~moved["opted_out_any"]]
    assert len(moved) >= 2
    assert (
        index.loc[moved["pseudonym"], "responsible_council"].values == moved["council_code"]
    ).all()
    born = truth1[
        truth1["true_child_id"].isin(events.loc[events["event"] == "born", "true_child_id"])
    ]
    clean = born[(born["defects"] == "") & ~born["opted_out_any"]]
    assert len(clean) and set(clean["pseudonym"]) <= set(index.index)


def test_both_days_in_landing_at_once_give_the_same_index(days, day_by_day, tmp_path, key, policy):
    store = IndexStore.from_url(f"sqlite:///{tmp_path / 'index.sqlite'}", policy)
    for day in days:
        write_day(day, tmp_path / "landing", tmp_path / "truth")
    reports = sync(tmp_path, key, policy, store, "both")
    assert sorted({r.sequence for r in reports}) == [1, 2]
    assert store.snapshot() == day_by_day[2]
    store.engine.dispose()
