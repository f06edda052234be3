"""Change detection: a re-sync rewrites only what changed, and ends where a full read would.

Each scenario runs the pipeline twice over the same files: once on an index that already holds
the council's previous extract (the change-detected path) and once on a fresh index given only
the final extracts (every line read). The two indexes must be identical.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from conftest import empty_index

from expectations.loader import load_rules
from synthetic_data.population import PopulationConfig
from synthetic_data.writer import write_extract, write_population
from transforms.changes import digest_key, line_digests, plan_changes, split_lines
from transforms.contract import MANIFEST_SUFFIX
from transforms.load import IndexStore
from transforms.pipeline import SyncPaths, sync_drop_zone
from transforms.pseudonymise import PseudonymKey

DAY1, DAY2, DAY3 = "2026-11-24T06:00:00Z", "2026-11-25T06:00:00Z", "2026-11-26T06:00:00Z"


@pytest.fixture(scope="module")
def population(tmp_path_factory) -> dict[str, pd.DataFrame]:
    """Two councils' first children extracts, as string frames (no opt-out registers)."""
    root = tmp_path_factory.mktemp("population")
    write_population(
        PopulationConfig(children=1200, councils=2, seed=11), root / "landing", root / "truth"
    )
    out = {}
    for path in sorted((root / "landing").glob("E*/children_*.csv")):
        out[path.parent.name] = pd.read_csv(path, dtype=str, keep_default_na=False)
    return out


def drop(home: Path, council: str, frame: pd.DataFrame, created: str, seq: int) -> None:
    write_extract(
        frame,
        home / "landing" / council,
        council_code=council,
        file_kind="children",
        created_at=created,
        sequence=seq,
    )


def store_for(url: str, policy, fresh: bool) -> IndexStore:
    # PostgreSQL's schema is shared by the two stores of a test: the second starts empty.
    return empty_index(url, policy) if fresh else IndexStore.from_url(url, policy)


def comparable(store: IndexStore) -> dict[str, list[tuple]]:
    """The index tables, without the one column that records when a row was last written."""
    snap = {}
    with store.engine.connect() as conn:
        for name in ("child_index", "council_record", "shield"):
            table = store.t[name]
            cols = [c for c in table.c if c.name != "extract_created_at"]
            snap[name] = [
                tuple(r)
                for r in conn.execute(sa.select(*cols).order_by(*table.primary_key.columns))
            ]
    return snap


def critical(rules: dict[str, int]) -> dict[str, int]:
    book = load_rules()["children_extract"].rules
    return {r: n for r, n in rules.items() if r not in book or book[r].severity == "critical"}


def run(home: Path, key, policy, store: IndexStore):
    reports = sync_drop_zone(SyncPaths(home), key, policy, store)
    return {r.folder + "/" + r.file_name: r for r in reports}


def changed_day(frame: pd.DataFrame, seed: int) -> pd.DataFrame:
    """About 1% of lines changed, 1% gone, a few new ones, and the order shuffled."""
    rng = np.random.default_rng(seed)
    out = frame.copy()
    n = len(out)
    edit = rng.choice(n, max(1, n // 100), replace=False)
    out.loc[out.index[edit], "services"] = "EH;YJ"
    gone = rng.choice(np.setdiff1d(np.arange(n), edit), max(1, n // 100), replace=False)
    newcomers = out.iloc[gone[:3]].copy()
    newcomers["local_child_id"] = newcomers["local_child_id"] + "N"
    newcomers["nhs_number"] = ""  # no NHS number: a council-scoped pseudonym
    out = pd.concat([out.drop(out.index[gone]), newcomers])
    return out.sample(frac=1, random_state=seed).reset_index(drop=True)


def both_ways(tmp_path, url, key, policy, first: dict, second: dict):
    """Load `first` then `second` (change-detected), and `second` alone on a fresh index."""
    home = tmp_path / "incremental"
    for council, frame in first.items():
        drop(home, council, frame, DAY1, 1)
    store = store_for(url, policy, fresh=False)
    run(home, key, policy, store)
    for council, frame in second.items():
        drop(home, council, frame, DAY2, 2)
    reports = run(home, key, policy, store)
    incremental = comparable(store)
    store.engine.dispose()

    full_home = tmp_path / "full"
    for council, frame in second.items():
        drop(full_home, council, frame, DAY2, 2)
    full = store_for(url, policy, fresh=True)
    full_reports = run(full_home, key, policy, full)
    expected = comparable(full)
    full.engine.dispose()
    for name, report in reports.items():
        # The council hears the same refusals either way (warnings on unchanged lines were
        # reported when the lines first came, and are not repeated).
        assert critical(report.rules) == critical(full_reports[name].rules), name
        assert report.counts["rejected"] == full_reports[name].counts["rejected"], name
    return reports, incremental, expected


def test_unchanged_resync_rewrites_nothing_and_matches_a_full_read(
    tmp_path, index_url, key, policy, population
):
    second = {c: f.sample(frac=1, random_state=1) for c, f in population.items()}  # reordered
    reports, incremental, expected = both_ways(tmp_path, index_url, key, policy, population, second)
    assert incremental == expected
    for name, report in reports.items():
        assert report.status == "loaded", (name, report.reason)
        rows = report.counts["received"]
        assert report.counts["loaded"] == 0
        skipped = report.counts["rejected"] + report.counts["archived"]  # read again each time
        assert report.counts["unchanged"] + skipped == rows
        assert report.counts["unchanged"] > 0.9 * rows


def test_one_percent_change_rewrites_only_the_changed_children(
    tmp_path, index_url, key, policy, population
):
    second = {c: changed_day(f, n) for n, (c, f) in enumerate(population.items())}
    reports, incremental, expected = both_ways(tmp_path, index_url, key, policy, population, second)
    assert incremental == expected
    for report in reports.values():
        assert report.status == "loaded"
        assert 0 < report.counts["loaded"] < 0.05 * report.counts["received"]


def test_a_changed_line_for_the_same_child_as_an_unchanged_line_refuses_both(
    tmp_path, index_url, key, policy, population
):
    council, frame = next(iter(population.items()))
    with_nhs = frame.index[frame["nhs_number"].str.strip() != ""]
    twin = frame.loc[[with_nhs[0]]].copy()
    twin["local_child_id"] = twin["local_child_id"] + "X"  # a second local id, same NHS number
    second = {council: pd.concat([frame, twin], ignore_index=True)}
    reports, incremental, expected = both_ways(
        tmp_path, index_url, key, policy, {council: frame}, second
    )
    assert incremental == expected
    (report,) = reports.values()
    assert report.rules["duplicate_child_in_file"] == 2
    reason = tmp_path / "incremental" / "quarantine" / council
    assert any(reason.rglob("rejected_rows.csv"))


def test_unshield_then_unchanged_extract_brings_the_fields_back(
    tmp_path, index_url, key, policy, population
):
    council, frame = next(iter(population.items()))
    frame = frame.copy()
    row = frame.index[(frame["nhs_number"].str.strip() != "") & (frame["shielded"] == "N")][0]
    shielded = frame.copy()
    shielded.loc[row, "shielded"] = "Y"
    home = tmp_path / "home"
    store = store_for(index_url, policy, fresh=False)
    drop(home, council, frame, DAY1, 1)
    run(home, key, policy, store)
    before = set(_shielded(store))
    drop(home, council, shielded, DAY2, 2)
    run(home, key, policy, store)
    (pseudonym,) = set(_shielded(store)) - before
    drop(home, council, frame, DAY3, 3)  # flag dropped: sticky, still shielded
    run(home, key, policy, store)
    assert store.index_frame().set_index("child_pseudonym").loc[pseudonym, "shielded"]
    store.unshield(pseudonym, council)
    drop(home, council, frame, "2026-11-27T06:00:00Z", 4)  # the very same lines again
    run(home, key, policy, store)
    row_now = store.index_frame().set_index("child_pseudonym").loc[pseudonym]
    assert not row_now["shielded"]
    assert pd.notna(row_now["postcode_district"])


def _shielded(store: IndexStore) -> list[str]:
    with store.engine.connect() as conn:
        return list(conn.execute(sa.select(store.t["shield"].c.child_pseudonym)).scalars())


def first_extract_loaded(tmp_path, index_url, key, policy, population):
    """The first council's first extract, loaded: (council, frame, home, store)."""
    council, frame = next(iter(population.items()))
    home = tmp_path / "home"
    store = store_for(index_url, policy, fresh=False)
    drop(home, council, frame, DAY1, 1)
    run(home, key, policy, store)
    return council, frame, home, store


def test_two_waiting_extracts_of_one_council_are_each_read_in_full(
    tmp_path, index_url, key, policy, population
):
    council, frame, home, store = first_extract_loaded(tmp_path, index_url, key, policy, population)
    drop(home, council, changed_day(frame, 5), DAY2, 2)
    drop(home, council, changed_day(frame, 6), DAY3, 3)
    reports = run(home, key, policy, store)
    assert [r.status for r in reports.values()] == ["loaded", "loaded"]
    assert [r.counts["unchanged"] for r in reports.values()] == [0, 0]
    after = comparable(store)
    store.engine.dispose()
    full_home = tmp_path / "full"
    drop(full_home, council, changed_day(frame, 6), DAY3, 3)
    full = store_for(index_url, policy, fresh=True)
    run(full_home, key, policy, full)
    assert after == comparable(full)


def test_worker_processes_give_the_reports_and_index_of_one_process(
    tmp_path, index_url, key, policy, population
):
    """`registry-sync run` processes files in forked workers: nothing may differ but the time."""

    def two_days(home: Path, store: IndexStore, n: int) -> list[tuple]:
        seen = []
        for day, seq, change in ((DAY1, 1, None), (DAY2, 2, 5)):
            for council, frame in population.items():
                drop(
                    home, council, frame if change is None else changed_day(frame, change), day, seq
                )
            if seq == 2:
                # A later extract waits beside one council's second: each is read in full.
                council, frame = next(iter(population.items()))
                drop(home, council, changed_day(frame, 7), DAY3, 3)
                # And another council's file is broken (its checksum no longer matches).
                last = sorted((home / "landing").glob("*/children_*.csv"))[-1]
                last.write_bytes(last.read_bytes() + b"\n")
            for r in sync_drop_zone(SyncPaths(home), key, policy, store, workers=n):
                seen.append((r.folder, r.file_name, r.status, r.reason, r.counts, r.rules))
        return seen

    serial_store = store_for(index_url, policy, fresh=True)
    serial = two_days(tmp_path / "serial", serial_store, 1)
    expected = comparable(serial_store)
    serial_store.engine.dispose()
    forked_store = store_for(index_url, policy, fresh=True)
    forked = two_days(tmp_path / "forked", forked_store, 2)
    assert forked == serial
    assert comparable(forked_store) == expected
    forked_store.engine.dispose()
    assert [s[2] for s in serial].count("refused") == 1
    assert {s[2] for s in serial} == {"loaded", "refused"}


def test_a_plan_made_against_an_older_state_is_deferred_and_read_again(
    tmp_path, index_url, key, policy, population
):
    from transforms.ingest import ExtractRef
    from transforms.pipeline import load_staged, process_extract

    council, frame = next(iter(population.items()))
    home, paths = tmp_path / "home", SyncPaths(tmp_path / "home")
    store = store_for(index_url, policy, fresh=False)
    drop(home, council, frame, DAY1, 1)
    run(home, key, policy, store)
    third = changed_day(frame, 6)
    drop(home, council, third, DAY3, 3)
    (name,) = [p.name for p in (home / "landing" / council).glob("children_*.csv")]
    planned = process_extract(
        paths, ExtractRef(council, name, name + MANIFEST_SUFFIX), key, policy, "r1", store
    )
    assert planned.change_base is not None  # compared with the first extract
    # Sequence 2 arrives late and loads first: the plan's base is no longer current.
    drop(home, council, changed_day(frame, 5), DAY2, 2)
    name2 = next(p.name for p in (home / "landing" / council).glob("children_*_0002.csv"))
    ref2 = ExtractRef(council, name2, name2 + MANIFEST_SUFFIX)
    second = load_staged(paths, [process_extract(paths, ref2, key, policy, "r2", store)], store)
    assert [r.status for r in second] == ["loaded"]
    [result] = load_staged(paths, [planned], store)
    assert result.status == "deferred"
    assert (home / "landing" / council / name).exists()  # kept for the next run
    reports = run(home, key, policy, store)
    assert [r.status for r in reports.values()] == ["loaded"]
    after = comparable(store)
    store.engine.dispose()
    full_home = tmp_path / "full"
    drop(full_home, council, third, DAY3, 3)
    full = store_for(index_url, policy, fresh=True)
    run(full_home, key, policy, full)
    assert after == comparable(full)


def test_plan_changes_finds_changed_and_forced_lines(key):
    header = b"local_child_id,nhs_number,notes"
    body = [b"A1,9990000018,x", b"A2,9990000026,y", b'"A3",,"a, b"', b'A4,,"c, d"']
    lines = split_lines(b"\n".join([header, *body]) + b"\n", key)
    assert lines is not None and lines.forced.tolist() == [False, False, True, False]
    gone = 12345  # a row whose line the new snapshot no longer holds
    previous = np.array([*lines.digests[[0, 2, 3]], gone], dtype="int64")
    plan = plan_changes(lines, previous, "sha")
    assert plan.changed.tolist() == [1, 2]  # A2 is new; A3's id is quoted, so is read again
    assert plan.unchanged.tolist() == [0, 3]
    assert sorted(plan.departed.tolist()) == sorted([int(lines.digests[2]), gone])
    assert plan_changes(lines, previous, "sha", snapshot=False).departed.tolist() == []
    multi = b"\n".join([header, b'A1,,"two', b'lines"']) + b"\n"
    assert split_lines(multi, key) is None


@pytest.mark.parametrize("seed", range(5))
def test_departed_digests_are_those_no_unchanged_line_matches(key, seed):
    # Against the definition, with digests the council holds twice (matched by no line),
    # digests of lines that are gone, and a previous set in any order.
    rng = np.random.default_rng(seed)
    header = b"local_child_id,notes"
    lines = split_lines(b"\n".join([header, *(f"C{i},n{i}".encode() for i in range(60))]), key)
    assert lines is not None
    held = rng.choice(lines.digests, 40, replace=False)
    twice = held[:3]
    previous = np.concatenate((held, twice, [7, 8, 8])).astype("int64")
    rng.shuffle(previous)
    plan = plan_changes(lines, previous, "sha")
    matched = set(lines.digests[plan.unchanged].tolist())
    assert matched == set(held.tolist()) - set(twice.tolist())
    expected = {int(d) for d in previous if int(d) not in matched}
    assert sorted(plan.departed.tolist()) == sorted(expected)  # each digest once


def _refused(lines, positions, rules):
    return pd.DataFrame(
        {
            "row_digest": lines.digests[positions],
            "rules": rules,
            "child_pseudonym": [None] * len(positions),
        }
    )


def test_a_repeated_id_is_carried_only_while_all_its_lines_are_unchanged(key):
    header = b"local_child_id,date_of_birth"
    body = [b"A1,2015-01-01", b"A1,2016-01-01", b"B1,2017-01-01"]
    lines = split_lines(b"\n".join([header, *body]) + b"\n", key)
    assert lines.forced.tolist() == [True, True, False]
    refused = _refused(lines, [0, 1], ["local_child_id_duplicate"] * 2)
    previous = lines.digests[[2]]
    plan = plan_changes(lines, previous, "sha", refused)
    assert plan.changed.tolist() == []
    assert plan.refused_again.to_dict() == {0: "local_child_id_duplicate", 1: ROW_RULE}
    # The other line of the id is gone: the one left is no longer repeated, and is read again.
    alone = split_lines(b"\n".join([header, body[0], body[2]]) + b"\n", key)
    assert plan_changes(alone, previous, "sha", refused).changed.tolist() == [0]
    # A third line with the same id is new: all three are read together.
    third = split_lines(b"\n".join([header, *body, b"A1,2018-01-01"]) + b"\n", key)
    plan = plan_changes(third, previous, "sha", _refused(third, [0, 1], [ROW_RULE] * 2))
    assert plan.changed.tolist() == [0, 1, 3]


ROW_RULE = "local_child_id_duplicate"


def test_a_date_of_birth_refusal_is_carried_only_while_still_out_of_range(key):
    from transforms.validate import dates_of_birth_out_of_range

    header = b"local_child_id,date_of_birth"
    body = [b"A1,1990-01-01", b"A2,2026-12-01", b"A3,2015-01-01"]
    lines = split_lines(b"\n".join([header, *body]) + b"\n", key)
    refused = _refused(lines, [0, 1], ["date_of_birth_range"] * 2)

    def plan_on(day: str):
        date = pd.Timestamp(day).date()
        return plan_changes(
            lines,
            lines.digests[[2]],
            "sha",
            refused,
            still_out_of_range=lambda fields: dates_of_birth_out_of_range(fields, date),
        )

    assert plan_on("2026-11-25").changed.tolist() == []  # too old, and not born yet
    assert plan_on("2026-12-02").changed.tolist() == [1]  # born now: read and validated again
    assert plan_changes(lines, lines.digests[[2]], "sha", refused).changed.tolist() == [0, 1]


@pytest.mark.parametrize("newline", [b"\n", b"\r\n"])
@pytest.mark.parametrize("trailing", [True, False])
def test_first_field_numbering_without_a_loop_agrees_with_splitting_lines(key, newline, trailing):
    from transforms.changes import _first_field_codes

    rng = np.random.default_rng(3)
    ids = [f"L{n}".encode() for n in rng.integers(0, 400, 1000)]
    ids[-1] = ids[0] + b"9"  # the last line's id is longer than an id that is a prefix of it
    ids[-2] = ids[0]
    body = [i + (b",x,y" if n % 7 else b"") for n, i in enumerate(ids)]
    data = newline.join([b"local_child_id,a,b", *body]) + (newline if trailing else b"")
    codes = _first_field_codes(*_raw(data, newline))
    expected = pd.factorize(pd.Series(ids, dtype=object))[0]
    assert codes is not None
    assert len(set(zip(codes, expected, strict=True))) == len(set(expected)) == len(set(codes))
    lines = split_lines(data, key)
    assert lines is not None
    assert lines.forced.tolist() == (np.bincount(expected)[expected] > 1).tolist()


def test_first_field_numbering_agrees_with_splitting_lines_at_every_width_and_end():
    """Ids of 1 to 32 bytes (word boundaries, shared prefixes), lines with no comma or only an
    id, and short last lines the raw window runs past: the same groups as splitting lines."""
    from transforms.changes import _first_field_codes

    rng = np.random.default_rng(11)
    settled = 0
    for _ in range(400):
        stem = bytes(rng.choice(list(b"AB01"), int(rng.integers(1, 33))).astype(np.uint8))
        ids = [stem[: int(rng.integers(1, len(stem) + 1))] for _ in range(int(rng.integers(1, 12)))]
        tails = [b"", b",", b",x", b",,", b",x,y" * int(rng.integers(1, 12))]
        body = [i + tails[int(rng.integers(0, len(tails)))] for i in ids]
        data = b"\n".join([b"local_child_id,a", *body]) + b"\n" * int(rng.integers(0, 2))
        codes = _first_field_codes(*_raw(data, b"\n"))
        expected = pd.factorize(pd.Series(ids, dtype=object))[0]
        if codes is None:
            continue
        settled += 1
        assert len(set(zip(codes, expected, strict=True))) == len(set(expected)) == len(set(codes))
    assert settled == 400  # no id here is long, blank-padded or quoted


@pytest.mark.parametrize(
    "data",
    [
        b"local_child_id,a\r\nA1,x\nA2,y\r\n",  # a bare line feed in a CRLF file
        b"local_child_id,a\nA1,x\rA2,y\n",  # a carriage return in an LF file
        b'local_child_id,a\nA1,"x\ny"\nA2,y\n',  # a quoted field holds a line break
    ],
)
def test_lines_that_are_not_records_leave_the_file_to_a_full_read(key, data):
    assert split_lines(data, key) is None


@pytest.mark.parametrize("first", [b' "A1"', b"A1 ", b'"A1"', b"A" * 33, b"A" * 40, b""])
def test_first_fields_the_raw_bytes_cannot_settle_are_left_to_the_line_split(first):
    from transforms.changes import _first_field_codes

    data = b"\n".join([b"local_child_id,a", first + b",x", b"B1,y"]) + b"\n"
    assert _first_field_codes(*_raw(data, b"\n")) is None


def _raw(data: bytes, newline: bytes) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`_first_field_codes`'s arguments for the data lines of `data`."""
    from transforms.changes import line_starts

    header, *body = data.split(newline)
    if body and body[-1] == b"":
        body.pop()
    lengths, starts = line_starts(body, len(header) + len(newline), len(newline))
    return np.frombuffer(data, dtype=np.uint8), lengths, starts


def test_a_changed_rule_book_or_policy_reads_every_line_again(key, policy):
    from dataclasses import replace

    from transforms.changes import verdict_fingerprint

    data = b"local_child_id,a\nA1,x\nA2,y\n"
    before = split_lines(data, key, verdict_fingerprint(policy))
    coarser = replace(policy, fields=policy.fields[:-1])
    after = split_lines(data, key, verdict_fingerprint(coarser))
    assert before is not None and after is not None
    assert not set(before.digests) & set(after.digests)
    assert split_lines(data, key, verdict_fingerprint(policy)).digests.tolist() == (
        before.digests.tolist()
    )


def test_the_digest_set_follows_opt_outs_and_archiving(
    tmp_path, index_url, key, policy, population
):
    """Rows taken by an opt-out or by archiving leave the council's digest set too."""
    from transforms.retention import apply_retention

    council, frame, home, store = first_extract_loaded(tmp_path, index_url, key, policy, population)

    def digest_set_matches_rows() -> bool:
        rec = store.t["council_record"]
        with store.engine.connect() as conn:
            base = store._newest_children_file(conn, council)
            kept = store._digest_set(conn, council, base)
            rows = conn.execute(
                sa.select(rec.c.row_digest).where(
                    rec.c.council_code == council, rec.c.row_digest.is_not(None)
                )
            ).scalars()
            return kept is not None and sorted(kept.tolist()) == sorted(rows)

    assert digest_set_matches_rows()
    # An opt-out register for one child with an NHS number.
    nhs = frame.loc[frame["nhs_number"].str.strip() != "", "nhs_number"].iloc[0]
    optouts = pd.DataFrame({"nhs_number": [nhs], "local_child_id": [""]})
    write_extract(
        optouts,
        home / "landing" / council,
        council_code=council,
        file_kind="optout",
        created_at=DAY2,
        sequence=1,
    )
    reports = run(home, key, policy, store)
    assert [r.counts["opted_out"] for r in reports.values()] == [1]
    assert digest_set_matches_rows()
    # Twenty years on, everyone is archived.
    apply_retention(store, pd.Timestamp("2046-01-01").date())
    assert digest_set_matches_rows()


def test_the_rules_fingerprint_is_the_same_in_every_process(policy):
    """Each DAG task is its own process: a fingerprint that moved would match no digest."""
    import os
    import subprocess
    import sys

    from transforms.changes import verdict_fingerprint

    code = (
        "from transforms.policy import load_policy\n"
        "from transforms.changes import verdict_fingerprint\n"
        "print(verdict_fingerprint(load_policy()).hex())\n"
    )
    seen = {
        subprocess.run(
            [sys.executable, "-c", code],
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        for seed in ("1", "2", "3")
    }
    assert seen == {verdict_fingerprint(policy).hex()}


class _Unpicklable(Exception):
    def __init__(self) -> None:  # unpickling calls it with the message: a TypeError
        super().__init__("the kind of error some libraries raise")


def test_an_error_in_a_worker_comes_back_as_its_type_and_message(
    tmp_path, key, policy, population, monkeypatch
):
    import transforms.pipeline as pipeline

    def broken(*args, **kwargs):
        raise _Unpicklable()

    home = tmp_path / "home"
    for council, frame in population.items():
        drop(home, council, frame, DAY1, 1)
    store = IndexStore.from_url(f"sqlite:///{tmp_path / 'index.sqlite'}", policy)
    monkeypatch.setattr(pipeline, "process_extract", broken)
    with pytest.raises(pipeline.WorkerError, match="_Unpicklable: the kind of error"):
        sync_drop_zone(SyncPaths(home), key, policy, store, workers=2)
    store.engine.dispose()


def test_workers_yield_the_cpu_to_the_loads_in_this_process(
    tmp_path, key, policy, population, monkeypatch
):
    import os

    import transforms.pipeline as pipeline

    seen = tmp_path / "niceness"
    real = pipeline.process_extract

    def recording(*args, **kwargs):
        with seen.open("a") as out:  # forked: the worker runs this copy
            out.write(f"{os.getpid()} {os.nice(0)}\n")
        return real(*args, **kwargs)

    home = tmp_path / "home"
    for council, frame in population.items():
        drop(home, council, frame, DAY1, 1)
    store = IndexStore.from_url(f"sqlite:///{tmp_path / 'index.sqlite'}", policy)
    monkeypatch.setattr(pipeline, "process_extract", recording)
    reports = sync_drop_zone(SyncPaths(home), key, policy, store, workers=2)
    store.engine.dispose()
    assert {r.status for r in reports} == {"loaded"}
    records = [line.split() for line in seen.read_text().splitlines()]
    assert len(records) == len(population)
    assert str(os.getpid()) not in {pid for pid, _ in records}
    # Linux caps niceness at 19: a test run already at 19 cannot see the difference.
    expected = min(os.nice(0) + pipeline.WORKER_NICENESS, 19)
    assert {int(niceness) for _, niceness in records} == {expected}


def _splitmix64_finish(value: int) -> int:
    """The fixed bijective mix pandas' hash_array applies after SipHash (splitmix64's end)."""
    mask = (1 << 64) - 1
    value ^= value >> 30
    value = (value * 0xBF58476D1CE4E5B9) & mask
    value ^= value >> 27
    value = (value * 0x94D049BB133111EB) & mask
    return value ^ (value >> 31)


def test_line_digests_are_siphash_2_4_under_the_derived_key_checked_against_a_reference():
    import siphash24  # the reference implementation (dev dependency)

    key = PseudonymKey(bytes(range(32)))
    derived = digest_key(key, b"rules")
    assert len(derived) == 16 and derived != key.secret[:16]
    # Odd lengths, the empty line, bytes past ASCII and a line longer than a SipHash block.
    lines = [b"", b"a", b"A1,2015-01-02,LS6 1AA", "Zoë,ß".encode(), bytes(range(256)) * 3]
    expected = [
        _splitmix64_finish(siphash24.siphash24(line, key=derived).intdigest() % (1 << 64))
        for line in lines
    ]
    got = line_digests(lines, derived)
    assert got.dtype == np.int64
    assert [int(v) % (1 << 64) for v in got] == expected
    # The digest depends on the key: another pseudonym key or rule set gives other digests.
    assert not np.array_equal(line_digests(lines, digest_key(key, b"other rules")), got)
    other = digest_key(PseudonymKey(bytes(range(1, 33))), b"rules")
    assert not np.array_equal(line_digests(lines, other), got)
    with pytest.raises(ValueError, match="16 bytes"):
        line_digests(lines, bytes(32))


@pytest.mark.parametrize("size", [0, 1, 2, 1000])
def test_sorted_unique_and_digests_in_agree_with_numpy(size):
    from transforms.changes import digests_in, sorted_unique

    rng = np.random.default_rng(size)
    # Repeats, both ends of int64 and negative digests, in no order.
    digests = rng.integers(-(2**63), 2**63 - 1, size, dtype=np.int64, endpoint=True)
    if size > 2:
        digests[: size // 4] = digests[size // 4 : size // 2]
        digests[0], digests[1] = np.iinfo(np.int64).min, np.iinfo(np.int64).max
    got = sorted_unique(digests)
    assert got.dtype == np.int64
    assert np.array_equal(got, np.unique(digests))
    pool = digests[::3]
    assert np.array_equal(digests_in(digests, pool), np.isin(digests, pool))


@pytest.mark.parametrize("seed", range(3))
def test_quotes_and_repeated_ids_found_from_raw_bytes_agree_with_each_line(key, seed):
    # Quoted ids, quoted fields holding commas, ids of exactly the widest width compared
    # without a loop, empty lines and CRLF: forced lines are those a per-line reading gives.
    rng = np.random.default_rng(seed)
    newline = [b"\n", b"\r\n"][seed % 2]
    body = []
    for n in rng.integers(0, 60, 400):
        ident = (b"W" * 31 + bytes([65 + n % 26])) if n % 5 == 0 else f"L{n}".encode()
        if n % 11 == 0:
            ident = b'"' + ident + b'"'
        notes = b'"a, b"' if n % 3 == 0 else b"x"
        body.append(ident + b",y," + notes)
    body[7] = b""
    data = newline.join([b"local_child_id,a,notes", *body]) + newline
    lines = split_lines(data, key)
    assert lines is not None
    first = [line.split(b",", 1)[0].strip().strip(b'"').strip() for line in body]
    codes = pd.factorize(pd.Series(first, dtype=object))[0]
    quoted = np.array([line[:1] == b'"' for line in body])
    assert lines.quoted_id.tolist() == quoted.tolist()
    assert lines.forced.tolist() == ((np.bincount(codes)[codes] > 1) | quoted).tolist()
    from transforms.changes import _first_field_codes

    unquoted = [line for line in body if line and not line.startswith(b'"')]
    plain = newline.join([b"local_child_id,a,notes", *unquoted]) + newline
    assert _first_field_codes(*_raw(plain, newline)) is not None  # 32-byte ids included
