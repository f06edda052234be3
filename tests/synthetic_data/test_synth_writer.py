"""Writing a population: contract layout, manifests, CSV bytes, determinism, truth kept apart."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import subprocess
import sys

import pandas as pd
import pyarrow.parquet as pq
import pytest

from synthetic_data.councils import COUNCILS
from synthetic_data.population import (
    TRUTH_COLUMNS,
    PopulationConfig,
    generate_national_optouts,
    generate_population,
)
from synthetic_data.writer import (
    SynthSummary,
    csv_chunks,
    encode_csv,
    write_extract,
    write_population,
)
from transforms import contract

CONFIG = PopulationConfig(children=1500, councils=3, seed=4)
DAY = "20261125"


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    summary = write_population(CONFIG, root / "landing", root / "truth")
    return root, summary


def files_under(folder):
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def python_csv(frame: pd.DataFrame) -> bytes:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(frame.columns)
    writer.writerows(frame.itertuples(index=False, name=None))
    return buffer.getvalue().encode("utf-8")


def test_landing_holds_exactly_the_contract_files(written):
    root, _ = written
    codes = [c.gss_code for c in COUNCILS[: CONFIG.councils]]
    expected = set()
    for folder in [*codes, contract.NATIONAL_FOLDER]:
        kinds = ["optout"] if folder == contract.NATIONAL_FOLDER else ["children", "optout"]
        for kind in kinds:
            name = contract.extract_file_name(kind, "2026-11-25T06:00:00Z", 1)
            assert name == f"{kind}_{DAY}_0001.csv"
            expected |= {f"{folder}/{name}", f"{folder}/{contract.manifest_path_for(name)}"}
    assert set(files_under(root / "landing")) == expected


def test_manifests_describe_their_extracts(written):
    root, _ = written
    manifests = sorted((root / "landing").rglob("*" + contract.MANIFEST_SUFFIX))
    assert len(manifests) == 7
    for path in manifests:
        manifest = json.loads(path.read_text("utf-8"))
        assert set(manifest) == set(contract.Manifest.__dataclass_fields__)
        extract = path.with_name(contract.extract_name_for(path.name))
        data = extract.read_bytes()
        assert manifest["file_name"] == extract.name
        assert manifest["sha256"] == hashlib.sha256(data).hexdigest()
        assert (
            manifest["row_count"] == data.count(b"\n") - 1 == len(pd.read_csv(extract, dtype=str))
        )
        assert manifest["schema_version"] == contract.SCHEMA_VERSION
        assert manifest["extract_kind"] == "snapshot" and manifest["sequence"] == 1
        assert manifest["created_at"] == "2026-11-25T06:00:00Z"
        assert manifest["council_code"] == path.parent.name
        assert manifest["file_kind"] == extract.name.split("_")[0]
        assert path.stat().st_mtime_ns >= extract.stat().st_mtime_ns  # manifest written last
        assert path.read_text("utf-8") == contract.Manifest(**manifest).to_json()


def test_csv_reads_back_as_the_generated_frames_and_matches_python_csv_bytes(written):
    root, _ = written
    batches = list(generate_population(CONFIG))
    for b in batches:
        folder = root / "landing" / b.council.gss_code
        for kind, frame in (("children", b.extract), ("optout", b.optouts)):
            data = (folder / f"{kind}_{DAY}_0001.csv").read_bytes()
            assert data == python_csv(frame)
            assert b"\r" not in data
            data.decode("utf-8")
            back = pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False)
            pd.testing.assert_frame_equal(back, frame, check_dtype=False)
    first = root / "landing" / batches[0].council.gss_code / f"children_{DAY}_0001.csv"
    assert b'"' in first.read_bytes()  # some notes and addresses needed quoting


def test_national_register_is_written_for_the_national_folder(written):
    root, summary = written
    folder = root / "landing" / contract.NATIONAL_FOLDER
    manifest = json.loads((folder / f"optout_{DAY}_0001.csv.manifest.json").read_text())
    assert manifest["council_code"] == "national" and manifest["file_kind"] == "optout"
    back = pd.read_csv(folder / f"optout_{DAY}_0001.csv", dtype=str, keep_default_na=False)
    pd.testing.assert_frame_equal(back, generate_national_optouts(CONFIG), check_dtype=False)
    assert summary.national_optouts == len(back)


def test_truth_is_parquet_outside_landing_aligned_with_the_extracts(written):
    root, summary = written
    assert not list((root / "landing").rglob("*.parquet"))
    assert summary.truth_path == root / "truth" / "children.parquet"
    truth = pq.read_table(summary.truth_path).to_pandas()
    assert tuple(truth.columns) == TRUTH_COLUMNS
    assert len(truth) == summary.rows
    expected = pd.concat([b.truth for b in generate_population(CONFIG)], ignore_index=True)
    pd.testing.assert_frame_equal(truth, expected, check_dtype=False)


@pytest.mark.parametrize("truth_inside", ["landing", "landing/truth", "landing/E08000035/x"])
def test_when_truth_dir_inside_landing_then_refused_before_writing(tmp_path, truth_inside):
    with pytest.raises(ValueError, match="inside landing"):
        write_population(CONFIG, tmp_path / "landing", tmp_path / truth_inside)
    assert not (tmp_path / "landing").exists()


def test_same_config_writes_identical_bytes_and_another_seed_does_not(tmp_path):
    config = PopulationConfig(children=600, councils=2, seed=8)
    write_population(config, tmp_path / "a" / "landing", tmp_path / "a" / "truth")
    write_population(config, tmp_path / "b" / "landing", tmp_path / "b" / "truth")
    other = PopulationConfig(children=600, councils=2, seed=9)
    write_population(other, tmp_path / "c" / "landing", tmp_path / "c" / "truth")
    first, again, changed = (files_under(tmp_path / x) for x in "abc")
    assert first == again
    assert set(first) == set(changed)
    for name, data in first.items():
        if name.endswith(".csv") and "national" not in name:
            assert data != changed[name], name


def test_summary_counts_match_the_truth_and_print_as_a_table(written):
    root, summary = written
    assert isinstance(summary, SynthSummary)
    truth = pq.read_table(summary.truth_path).to_pandas()
    for counts in summary.councils:
        rows = truth[truth["council_code"] == counts.council_code]
        assert counts.rows == len(rows)
        assert counts.children == rows["true_child_id"].nunique()
        assert counts.shielded == rows["shielded"].sum()
        assert counts.movers == rows["is_mover"].sum() > 0
        assert counts.defects == (rows["defects"] != "").sum() > 0
        register = root / "landing" / counts.council_code / f"optout_{DAY}_0001.csv"
        assert counts.optouts == len(pd.read_csv(register, dtype=str))
    table = str(summary)
    lines = table.splitlines()
    assert lines[0].split() == [
        "council",
        "name",
        "rows",
        "children",
        "optouts",
        "shielded",
        "movers",
        "defects",
    ]
    assert all(c.gss_code in table for c in COUNCILS[: CONFIG.councils]) and "national" in table
    assert f" {summary.rows} " in lines[-2] + " "


@pytest.mark.parametrize(
    "value",
    ["plain", "", "with, comma", 'say "hi"', "two\nlines", " padded ", "O'Neill", "£5 café"],
)
def test_csv_encoding_quotes_exactly_like_python_csv(value):
    frame = pd.DataFrame({"a": [value, "x"], "b": ["y", value]}, dtype=str)
    assert encode_csv(frame) == python_csv(frame)


def test_csv_encoding_quotes_a_carriage_return_that_python_311_leaves_bare():
    # Python 3.11's writer quotes "\r" only when it is in the line terminator; a bare "\r" would
    # end the record for many readers, so it is quoted here. Generated data never holds one.
    frame = pd.DataFrame({"a": ["cr\r"]}, dtype=str)
    assert encode_csv(frame) == b'a\n"cr\r"\n'
    assert pd.read_csv(io.BytesIO(encode_csv(frame)), dtype=str)["a"][0] == "cr\r"


def test_csv_encoding_splits_large_tables_into_chunks_without_changing_bytes():
    frame = pd.DataFrame({"a": [f"v{i}" for i in range(70_000)], "b": "x,y"}, dtype=str)
    chunks = list(csv_chunks(frame))
    assert len(chunks) == 3  # header and two pieces of at most 65,536 rows
    assert b"".join(bytes(c) for c in chunks) == python_csv(frame)


def test_when_a_cell_is_null_then_encoding_refuses():
    with pytest.raises(ValueError, match="nulls"):
        encode_csv(pd.DataFrame({"a": ["x", None]}, dtype="string"))


def test_write_extract_writes_a_delta_with_its_own_sequence(tmp_path):
    frame = pd.DataFrame({"nhs_number": ["9990000018"], "local_child_id": [""]}, dtype=str)
    manifest = write_extract(
        frame,
        tmp_path / "E08000035",
        council_code="E08000035",
        file_kind="optout",
        created_at="2026-11-26T06:00:00Z",
        extract_kind="delta",
        sequence=2,
    )
    assert manifest.file_name == "optout_20261126_0002.csv"
    assert manifest.extract_kind == "delta" and manifest.row_count == 1
    assert (tmp_path / "E08000035" / "optout_20261126_0002.csv.manifest.json").exists()
    assert not list(tmp_path.rglob("*.partial"))


def test_files_do_not_depend_on_string_hash_randomisation(tmp_path):
    config = PopulationConfig(children=400, councils=2, seed=12)
    write_population(config, tmp_path / "here" / "landing", tmp_path / "here" / "truth")
    script = (
        "import sys; from pathlib import Path; "
        "from synthetic_data import PopulationConfig, write_population; "
        "out = Path(sys.argv[1]); "
        "write_population(PopulationConfig(children=400, councils=2, seed=12), "
        "out / 'landing', out / 'truth')"
    )
    for hash_seed in ("1", "2"):
        out = tmp_path / f"hash{hash_seed}"
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        subprocess.run([sys.executable, "-c", script, str(out)], check=True, env=env)
        assert files_under(out) == files_under(tmp_path / "here")
