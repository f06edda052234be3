"""transforms.datadocs: stored GX results and Data Docs, with no value of an extract in any file."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pytest
from test_bad_extracts import FIRST_EXTRACT, csv_bytes, drop, new_store, row
from test_validate import _distinctive_values, distinctive_frame, frame_of, run
from test_validate import children as children_frame

from transforms.contract import CHILDREN_COLUMNS, OPTOUT_COLUMNS
from transforms.datadocs import GxPaths, build_data_docs, record_validation, store_gx_result
from transforms.pipeline import SyncPaths, sync_drop_zone
from transforms.validate import GX_RESULT_COUNTS, validate_optouts

COUNCIL, OTHER = "E08000035", "E08000003"


def headerless_frame() -> pd.DataFrame:
    """A file sent without its header: GX's column-set result would quote the first data row."""
    frame = distinctive_frame()
    first = frame.iloc[0].tolist()
    return frame_of(frame.iloc[1:].to_dict("records")).set_axis(first, axis=1)


def optout_frame() -> pd.DataFrame:
    rows = [("9434765919", f"QZOPTOUT{i:04d}") for i in range(30)]
    rows[3] = ("9434765918", "QZOPTBAD0003")  # fails Modulus 11
    rows[4] = ("", "")
    return pd.DataFrame(rows, columns=list(OPTOUT_COLUMNS), dtype="string")


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, set[str]]:
    """A home whose gx/ holds three values-free results and a fully built Data Docs site."""
    home = tmp_path_factory.mktemp("home")
    frames = {
        (COUNCIL, "children_20261125_0001.csv"): (distinctive_frame(), run),
        (COUNCIL, "children_20261125_0002.csv"): (headerless_frame(), run),
        (OTHER, "optout_20261125_0001.csv"): (optout_frame(), validate_optouts),
    }
    values: set[str] = set()
    contract = {*CHILDREN_COLUMNS, *OPTOUT_COLUMNS}
    for (council, name), (frame, validate) in frames.items():
        result = validate(frame)
        assert not result.gx_success  # every frame has failing rows or columns
        assert record_validation(home, council, name, result.gx_result) is not None
        header = {c for c in frame.columns if len(c) >= 4 and c not in contract}
        values |= _distinctive_values(frame) | header
    build_data_docs(home, index_limit=None)  # a full build also renders the suites' pages
    return home, values


def test_when_extracts_are_distinctive_then_no_value_appears_in_any_gx_file(built):
    home, values = built
    files = [p for p in (home / "gx").rglob("*") if p.is_file()]
    html = [p for p in files if p.suffix == ".html"]
    assert len(html) >= 6  # index, three validation pages, two suite pages
    assert len([p for p in files if p.suffix == ".json"]) == 3
    leaks = {
        str(p.relative_to(home)): sorted(v for v in values if v in p.read_bytes().decode("latin-1"))
        for p in files
    }
    assert {p: v for p, v in leaks.items() if v} == {}
    assert len(values) > 250  # the check had something to find


def test_stored_result_keeps_counts_only(built):
    home, _values = built
    stored = GxPaths(home).result_file(COUNCIL, "children_20261125_0001.csv")
    record = json.loads(stored.read_text("utf-8"))
    assert (record["council"], record["file"]) == (COUNCIL, "children_20261125_0001.csv")
    results = record["gx_result"]["results"]
    assert len(results) == 22 and not record["gx_result"]["success"]
    for entry in results:
        assert set(entry["result"]) <= {*GX_RESULT_COUNTS, "observed_value"}
        assert entry["exception_info"]["exception_traceback"] is None
    failed = {e["expectation_config"]["meta"]["rule"] for e in results if not e["success"]}
    assert {"nhs_number_mod11", "local_child_id_duplicate", "field_too_long"} <= failed
    assert "pandas_data_fingerprint" not in json.dumps(record)


def test_when_header_is_missing_then_column_set_result_names_no_column(built):
    home, _values = built
    stored = GxPaths(home).result_file(COUNCIL, "children_20261125_0002.csv")
    results = json.loads(stored.read_text("utf-8"))["gx_result"]["results"]
    by_type = {e["expectation_config"]["type"]: e["result"] for e in results}
    assert by_type == {
        "expect_table_columns_to_match_set": {},
        "expect_table_column_count_to_equal": {"observed_value": 18},
    }


def test_index_lists_every_stored_result(built):
    home, _values = built
    index = (GxPaths(home).data_docs / "index.html").read_text("utf-8")
    for name in ("children_20261125_0001.csv", "children_20261125_0002.csv", "optout_2026"):
        assert name in index


def test_when_the_pipeline_validates_an_extract_then_its_result_and_page_are_written(
    tmp_path, key, policy
):
    paths = SyncPaths(tmp_path)
    drop(paths.landing, FIRST_EXTRACT, name="children_20261125_0001.csv", folder=COUNCIL)
    refused = csv_bytes([row("L1", "9434765918"), row("L2", "")])  # half the rows fail mod 11
    drop(paths.landing, refused, name="children_20261125_0001.csv", folder=OTHER)
    reports = sync_drop_zone(paths, key, policy, new_store(tmp_path, policy), run_id="t1")
    assert sorted(r.status for r in reports) == ["loaded", "refused"]
    gx = GxPaths(tmp_path)
    name = "children_20261125_0001.csv"
    for council in (COUNCIL, OTHER):
        assert gx.result_file(council, name).is_file()
        assert list(gx.data_docs.glob(f"validations/children_extract/{council}/*/{name}.html"))


def test_when_results_pile_up_then_the_site_shows_the_newest_and_all_stay_stored(tmp_path):
    result = run(children_frame()).gx_result
    names = [f"children_20261125_{n:04d}.csv" for n in range(1, 4)]
    for n, name in enumerate(names):
        stored = store_gx_result(tmp_path, COUNCIL, name, result)
        os.utime(stored, (1_000_000 + n, 1_000_000 + n))  # oldest first
    site = GxPaths(tmp_path).data_docs
    build_data_docs(tmp_path, COUNCIL, names[0], index_limit=2)  # the oldest, and the 2 newest
    pages = sorted(p.name for p in site.glob("validations/children_extract/*/*/*.html"))
    assert pages == [f"{names[0]}.html"]  # only the page asked for is rendered
    index = (site / "index.html").read_text("utf-8")
    assert [name in index for name in names] == [True, False, False]  # pages, not results
    build_data_docs(tmp_path, COUNCIL, names[2], index_limit=1)
    pages = sorted(p.name for p in site.glob("validations/children_extract/*/*/*.html"))
    assert pages == [f"{names[2]}.html"]  # the oldest fell out of the window
    assert len(list(GxPaths(tmp_path).results.glob("*/*.json"))) == 3
    build_data_docs(tmp_path, index_limit=None)
    pages = sorted(p.name for p in site.glob("validations/children_extract/*/*/*.html"))
    assert pages == [f"{name}.html" for name in names]
    index = (site / "index.html").read_text("utf-8")
    assert all(name in index for name in names)


def test_a_process_that_validated_nothing_can_build_the_site(built, tmp_path):
    """`registry-sync run`'s worker, a DAG task or the CLI may build Data Docs in a new process."""
    import shutil
    import subprocess
    import sys

    home = tmp_path / "home"
    shutil.copytree(built[0] / "gx" / "results", home / "gx" / "results")
    code = (
        "import sys, pathlib; from transforms.datadocs import build_data_docs as b; "
        "b(pathlib.Path(sys.argv[1]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(home)], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert (home / "gx" / "data_docs" / "index.html").is_file()
