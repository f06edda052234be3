"""The day after: events are labelled, extracts and truth follow them, and the pipeline agrees."""

from __future__ import annotations

import datetime
import json

import nhs_number
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from synthetic_data import population
from synthetic_data.daily import (
    EVENT_KINDS,
    DailyChanges,
    first_day,
    next_day,
    population_on_day,
)
from synthetic_data.population import TRUTH_COLUMNS, PopulationConfig
from synthetic_data.writer import write_days, write_population
from transforms import contract

CONFIG = PopulationConfig(children=3000, councils=3, seed=8, defect_rate=0.02)
# Busy days, so every kind of event happens to several children of a small population.
BUSY = DailyChanges(
    death_rate=0.003,
    leave_rate=0.003,
    move_rate=0.003,
    birth_rate=0.003,
    optout_rate=0.003,
    national_optout_rate=0.003,
    shield_rate=0.002,
    correction_rate=0.3,
)


@pytest.fixture(scope="module")
def days():
    day0 = first_day(CONFIG, BUSY)
    return day0, next_day(day0)


def frames(day) -> tuple[pd.DataFrame, pd.DataFrame]:
    """All councils' extract and truth rows of a day, side by side (truth columns prefixed t_)."""
    rows = [
        pd.concat([cd.extract.to_pandas(), cd.truth.to_pandas().add_prefix("t_")], axis=1)
        for cd in day.councils
    ]
    return pd.concat(rows, ignore_index=True), day.events.to_pandas()


def ids_of(events: pd.DataFrame, kind: str) -> set[str]:
    return set(events.loc[events["event"] == kind, "true_child_id"])


def test_day_one_is_the_next_sequence_of_the_next_day(days):
    day0, day1 = days
    assert (day0.sequence, day0.created_at) == (1, "2026-11-25T06:00:00Z")
    assert (day1.sequence, day1.date) == (2, datetime.date(2026, 11, 26))
    assert day1.created_at == "2026-11-26T06:00:00Z"
    assert len(day0.events) == 0


def test_every_event_kind_happens_in_every_council_on_a_busy_day(days):
    _, events = frames(days[1])
    for council in (cd.council.gss_code for cd in days[1].councils):
        kinds = set(events.loc[events["council_code"] == council, "event"])
        assert kinds >= set(EVENT_KINDS) - {"aged_out"}, council


def test_extract_and_truth_stay_aligned_with_unique_local_ids(days):
    for cd in days[1].councils:
        extract, truth = cd.extract.to_pandas(), cd.truth.to_pandas()
        assert tuple(extract.columns) == contract.CHILDREN_COLUMNS
        assert tuple(truth.columns) == TRUTH_COLUMNS
        assert len(extract) == len(truth)
        assert (truth["row_number"] == np.arange(1, len(truth) + 1)).all()
        assert (truth["council_code"] == cd.council.gss_code).all()
        assert (extract["local_child_id"] == truth["local_child_id"]).all()
        # One local id per child, never reused for another child.
        pairs = truth[["local_child_id", "true_child_id"]].drop_duplicates()
        assert pairs["local_child_id"].is_unique and pairs["true_child_id"].is_unique
        assert not extract.isna().any().any()


def test_leavers_and_the_dead_are_in_no_council_and_movers_only_in_the_new_one(days):
    day0, day1 = days
    before, _ = frames(day0)
    after, events = frames(day1)
    gone = ids_of(events, "died") | ids_of(events, "moved_away") | ids_of(events, "aged_out")
    assert gone and gone <= set(before["t_true_child_id"])
    assert not gone & set(after["t_true_child_id"])
    moved = events[events["event"] == "moved_out"]
    assert len(moved)
    for child, source, dest in moved[["true_child_id", "council_code", "other_council"]].values:
        old = before[before["t_true_child_id"] == child].iloc[0]
        rows = after[after["t_true_child_id"] == child]
        assert list(rows["t_council_code"]) == [dest] and dest != source
        new = rows.iloc[0]
        # Same child, new local id and address; the new council has not been told of a shield.
        for column in ("nhs_number", "upn", "given_name", "family_name", "date_of_birth"):
            assert new[column] == old[f"t_{column}"]
        assert new["local_child_id"] != old["local_child_id"]
        assert new["shielded"] == "N" and new["t_shielded"] == old["t_shielded"]
        assert new["t_defects"] == ""
    arrived = events[events["event"] == "moved_in"]
    assert set(arrived["true_child_id"]) == set(moved["true_child_id"])


def test_children_who_turn_18_leave_unless_care_leavers_who_leave_at_25():
    day = first_day(CONFIG, DailyChanges(min_per_council=0))
    aged_out = 0
    for _ in range(8):
        day = next_day(day)
        aged_out += int((day.events["event"].to_numpy(zero_copy_only=False) == "aged_out").sum())
        rows, _ = frames(day)
        dob = pd.to_datetime(rows["t_date_of_birth"])
        today = pd.Timestamp(day.date)
        adult = dob + pd.DateOffset(years=18) <= today
        assert not (adult & ~rows["t_care_leaver"]).any()
        assert not (dob + pd.DateOffset(years=25) <= today).any()
    assert aged_out > 0


def test_births_are_new_children_with_new_valid_nhs_numbers(days):
    day0, day1 = days
    before, _ = frames(day0)
    after, events = frames(day1)
    born = after[after["t_true_child_id"].isin(ids_of(events, "born"))]
    assert len(born) and not set(born["t_true_child_id"]) & set(before["t_true_child_id"])
    age = pd.Timestamp(day1.date) - pd.to_datetime(born["t_date_of_birth"])
    assert age.between(pd.Timedelta(0), pd.Timedelta(days=BUSY.registration_days)).all()
    numbers = born.loc[born["t_nhs_number"] != "", "t_nhs_number"]
    assert numbers.map(nhs_number.is_valid).all() and numbers.str.startswith("999").all()
    used = set(before["t_nhs_number"]) | set(day0.national["nhs_number"].to_pylist())
    assert not set(numbers) & used
    people = after.drop_duplicates(["t_council_code", "t_true_child_id"])
    with_nhs = people.loc[people["t_nhs_number"] != ""]
    assert with_nhs.groupby("t_nhs_number")["t_true_child_id"].nunique().max() == 1
    assert set(with_nhs["t_nhs_number"].astype("int64")) <= set(
        population.test_nhs_numbers().tolist()
    )


def test_corrected_records_match_the_truth_and_lose_their_duplicate(days):
    day0, day1 = days
    before, _ = frames(day0)
    after, events = frames(day1)
    for council, child in events.loc[
        events["event"] == "corrected", ["council_code", "true_child_id"]
    ].values:
        was = before[(before["t_council_code"] == council) & (before["t_true_child_id"] == child)]
        now = after[(after["t_council_code"] == council) & (after["t_true_child_id"] == child)]
        assert (was["t_defects"].str.replace("missing_nhs_number", "").str.strip(";") != "").all()
        assert len(now) == 1
        row = now.iloc[0]
        assert row["t_defects"] in ("", "missing_nhs_number")
        for column in ("nhs_number", "upn", "given_name", "family_name", "date_of_birth", "sex"):
            assert row[column] == row[f"t_{column}"], column
        assert row["postcode"] == row["t_postcode"]
    # Rows nobody touched are byte for byte yesterday's.
    touched = set(events["true_child_id"])
    keep = ~before["t_true_child_id"].isin(touched)
    same = after[~after["t_true_child_id"].isin(touched)]
    columns = list(contract.CHILDREN_COLUMNS)
    left = before.loc[keep, columns].reset_index(drop=True)
    assert len(left) > 0.9 * len(before)
    assert left.equals(same[columns].reset_index(drop=True))


def test_new_opt_outs_are_on_the_registers_and_flagged_on_every_council_row(days):
    day0, day1 = days
    after, events = frames(day1)
    registers = {cd.council.gss_code: cd.optouts.to_pandas() for cd in day1.councils}
    for council, child in events.loc[
        events["event"] == "opted_out_council", ["council_code", "true_child_id"]
    ].values:
        row = after[
            (after["t_council_code"] == council) & (after["t_true_child_id"] == child)
        ].iloc[0]
        register = registers[council]
        if row["t_nhs_number"]:
            assert row["t_nhs_number"] in set(register["nhs_number"])
        else:
            assert row["t_local_child_id"] in set(register["local_child_id"])
        assert row["t_opted_out_council"]
        assert after.loc[after["t_true_child_id"] == child, "t_opted_out_any"].all()
    # Registers only grow: yesterday's entries stay.
    for cd0 in day0.councils:
        old = cd0.optouts.to_pandas()
        new = registers[cd0.council.gss_code]
        assert new.iloc[: len(old)].equals(old) and len(new) > len(old)
    national = set(day1.national["nhs_number"].to_pylist())
    assert set(day0.national["nhs_number"].to_pylist()) < national
    joined = ids_of(events, "opted_out_national")
    rows = after[after["t_true_child_id"].isin(joined)]
    assert set(rows["t_nhs_number"]) <= national
    assert rows["t_opted_out_national"].all() and rows["t_opted_out_any"].all()
    assert day1.national["nhs_number"].to_pylist() == sorted(national)


def test_new_shields_cover_the_household_in_extract_and_truth(days):
    after, events = frames(days[1])
    shielded = after[after["t_true_child_id"].isin(ids_of(events, "shielded"))]
    assert len(shielded) and shielded["t_shielded"].all()
    for council, rows in shielded.groupby("t_council_code"):
        flagged = events[(events["event"] == "shielded") & (events["council_code"] == council)]
        mine = rows[rows["t_true_child_id"].isin(flagged["true_child_id"])]
        assert (mine["shielded"] == "Y").all()
    households = shielded.groupby(["t_council_code", "t_address", "t_postcode", "t_family_name"])
    assert households.size().max() >= 2  # siblings are shielded with the child
    everyone = after.set_index(["t_council_code", "t_address", "t_postcode", "t_family_name"])
    for key in households.groups:
        assert everyone.loc[[key], "t_shielded"].all()


def test_rates_without_a_minimum_make_quiet_days_for_small_populations():
    day = next_day(
        first_day(PopulationConfig(children=300, councils=2), DailyChanges(min_per_council=0))
    )
    assert set(day.events["event"].to_pylist()) <= {"aged_out", "corrected", "born"}


def test_when_changes_invalid_then_every_problem_reported_at_once():
    with pytest.raises(ValueError) as raised:
        DailyChanges(birth_rate=2, death_rate=-0.1, min_per_council=-1, registration_days=1.5)
    text = str(raised.value)
    for name in ("birth_rate", "death_rate", "min_per_council", "registration_days"):
        assert name in text


def test_population_on_day_replays_the_same_days():
    replayed = population_on_day(CONFIG, 2, BUSY)
    stepped = next_day(next_day(first_day(CONFIG, BUSY)))
    assert replayed.events.equals(stepped.events)
    for a, b in zip(replayed.councils, stepped.councils, strict=True):
        assert (
            a.extract.equals(b.extract) and a.truth.equals(b.truth) and a.optouts.equals(b.optouts)
        )


def test_when_released_then_the_same_day_and_yesterday_left_empty():
    kept = first_day(CONFIG, BUSY)
    released = first_day(CONFIG, BUSY)
    a, b = next_day(kept), next_day(released, release=True)
    assert len(kept.councils) == CONFIG.councils and released.councils == ()
    assert a.events.equals(b.events) and a.national.equals(b.national)
    for x, y in zip(a.councils, b.councils, strict=True):
        assert x.extract.equals(y.extract) and x.truth.equals(y.truth)
        assert x.optouts.equals(y.optouts) and x.issued_local_ids == y.issued_local_ids


def test_when_spilled_then_the_same_days_from_files_and_yesterdays_files_removed(tmp_path):
    in_memory = next_day(next_day(first_day(CONFIG, BUSY)))
    day0 = first_day(CONFIG, BUSY, spill=tmp_path)
    assert len(list(tmp_path.glob("0_*.arrow"))) == 2 * CONFIG.councils
    day2 = next_day(next_day(day0, release=True, spill=tmp_path), release=True, spill=tmp_path)
    assert sorted(p.name.split("_")[0] for p in tmp_path.iterdir()) == ["2"] * 2 * CONFIG.councils
    assert day2.events.equals(in_memory.events) and day2.national.equals(in_memory.national)
    for x, y in zip(in_memory.councils, day2.councils, strict=True):
        assert x.extract.equals(y.extract) and x.truth.equals(y.truth)
        assert x.optouts.equals(y.optouts) and x.issued_local_ids == y.issued_local_ids


# --- writing ------------------------------------------------------------------------------------


def files_under(folder):
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_write_days_puts_each_day_in_landing_as_the_next_sequence(tmp_path):
    summaries = write_days(CONFIG, 2, tmp_path / "landing", tmp_path / "truth", BUSY)
    assert [s.sequence for s in summaries] == [1, 2, 3]
    names = sorted(p.name for p in (tmp_path / "landing" / "E08000035").glob("*.csv"))
    assert names == [
        f"{kind}_{day}_{seq:04d}.csv"
        for kind in ("children", "optout")
        for day, seq in (("20261125", 1), ("20261126", 2), ("20261127", 3))
    ]
    manifest = json.loads(
        (tmp_path / "landing/national/optout_20261127_0003.csv.manifest.json").read_text()
    )
    assert (manifest["sequence"], manifest["created_at"]) == (3, "2026-11-27T06:00:00Z")
    truth = sorted(p.name for p in (tmp_path / "truth").iterdir())
    assert truth == [
        "children.parquet",
        "children_20261126.parquet",
        "children_20261127.parquet",
        "events_20261126.parquet",
        "events_20261127.parquet",
    ]
    day2 = pq.read_table(tmp_path / "truth/children_20261127.parquet").to_pandas()
    assert len(day2) == summaries[2].rows
    assert set(
        pq.read_table(tmp_path / "truth/events_20261127.parquet")["event"].to_pylist()
    ) <= set(EVENT_KINDS)
    assert "changes since the day before" in str(summaries[1])
    for name in truth:  # whoever finds a truth file is told what it holds
        assert pq.read_schema(tmp_path / "truth" / name).metadata[b"synthetic"].startswith(b"true")


def test_day_zero_of_write_days_is_byte_identical_to_write_population(tmp_path):
    write_population(CONFIG, tmp_path / "a" / "landing", tmp_path / "a" / "truth")
    write_days(CONFIG, 1, tmp_path / "b" / "landing", tmp_path / "b" / "truth")
    a, b = files_under(tmp_path / "a"), files_under(tmp_path / "b")
    assert a and a.items() <= b.items()


def test_same_config_writes_identical_days_and_another_seed_does_not(tmp_path):
    for name, seed in (("a", 8), ("b", 8), ("c", 9)):
        config = PopulationConfig(children=600, councils=2, seed=seed)
        write_days(config, 2, tmp_path / name / "landing", tmp_path / name / "truth", BUSY)
    a, b, c = (files_under(tmp_path / n) for n in "abc")
    assert a == b
    assert (
        a["landing/E08000035/children_20261127_0003.csv"]
        != c["landing/E08000035/children_20261127_0003.csv"]
    )


def test_when_days_negative_then_refused(tmp_path):
    with pytest.raises(ValueError, match="days must be 0 or more"):
        write_days(CONFIG, -1, tmp_path / "landing", tmp_path / "truth")
