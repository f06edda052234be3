"""Ingest refuses broken extracts with a reason a council can act on, never echoing a value."""

import hashlib
import os

import pytest

from transforms.contract import CHILDREN_COLUMNS, Manifest, manifest_path_for
from transforms.ingest import ExtractRef, ExtractRefused, discover_extracts, read_extract

COUNCIL = "E08000035"
GOOD_ROW = [
    "L1",
    "943 476 5919",
    "",
    "Zebedee",
    "Quixley",
    "",
    "2015-03-02",
    "F",
    "1 Some Street",
    "LS6 2AB",
    "Carer Name",
    "07700 900123",
    "",
    "",
    "EH",
    "N",
    "N",
    "",
]
SECRET_VALUES = ("Zebedee", "Quixley", "943 476 5919")


def csv_bytes(rows, header=CHILDREN_COLUMNS, sep=",", eol="\n"):
    lines = [sep.join(header)] + [sep.join(r) for r in rows]
    return (eol.join(lines) + eol).encode()


def drop(landing, data, *, name="children_20261125_0001.csv", folder=COUNCIL, **manifest):
    (landing / folder).mkdir(parents=True, exist_ok=True)
    (landing / folder / name).write_bytes(data)
    fields = {
        "schema_version": "1",
        "council_code": folder,
        "file_kind": "children",
        "extract_kind": "snapshot",
        "sequence": 1,
        "created_at": "2026-11-25T06:00:00Z",
        "file_name": name,
        "row_count": max(data.count(b"\n") - 1, 0),
        "sha256": hashlib.sha256(data).hexdigest(),
    }
    fields.update(manifest)
    (landing / folder / manifest_path_for(name)).write_text(Manifest(**fields).to_json())
    return ExtractRef(folder, name, manifest_path_for(name))


def test_good_extract_reads_as_strings(tmp_path):
    ref = drop(tmp_path, csv_bytes([GOOD_ROW]))
    manifest, frame = read_extract(tmp_path, ref)
    assert manifest.row_count == 1 and list(frame.columns) == list(CHILDREN_COLUMNS)
    assert frame.loc[0, "nhs_number"] == "943 476 5919"


def test_extract_without_manifest_is_not_picked_up(tmp_path):
    (tmp_path / COUNCIL).mkdir()
    (tmp_path / COUNCIL / "children_20261125_0001.csv").write_bytes(csv_bytes([GOOD_ROW]))
    assert discover_extracts(tmp_path) == []


def _cases():
    good = csv_bytes([GOOD_ROW])
    return {
        "empty file": (b"", {"row_count": 0}, "empty"),
        "byte-order mark": (b"\xef\xbb\xbf" + good, {}, "byte-order mark"),
        "latin-1": (good.replace(b"Quixley", "Quixl\xe9y".encode("latin-1")), {}, "not UTF-8"),
        "NUL bytes": (good.replace(b"Street", b"Str\x00et"), {}, "binary"),
        "gzip named csv": (b"\x1f\x8b\x08\x00" + good, {}, "binary"),
        "mixed line endings": (
            csv_bytes([GOOD_ROW, GOOD_ROW]).replace(b"\n", b"\r\n", 1),
            {},
            "line endings",
        ),
        "semicolons": (csv_bytes([GOOD_ROW], sep=";"), {}, "not comma-separated"),
        "ragged row": (csv_bytes([GOOD_ROW[:-2]]), {}, "wrong number of fields"),
        "unbalanced quote": (good.replace(b"Zebedee", b'"Zebedee'), {}, "cannot be parsed"),
        "missing column": (
            csv_bytes([GOOD_ROW[:-1]], header=CHILDREN_COLUMNS[:-1]),
            {},
            "missing ['notes']",
        ),
        "extra column": (
            csv_bytes([[*GOOD_ROW, "x"]], header=(*CHILDREN_COLUMNS, "ethnicity")),
            {},
            "unexpected ['ethnicity']",
        ),
        "duplicated header": (
            csv_bytes([list(CHILDREN_COLUMNS), GOOD_ROW]),
            {},
            "header row appears again",
        ),
        "wrong checksum": (good, {"sha256": "0" * 64}, "sha256"),
        "wrong row count": (good, {"row_count": 7}, "manifest says 7"),
        "unknown schema": (good, {"schema_version": "9"}, "not supported"),
        "council differs": (good, {"council_code": "E08000003"}, "differs from the folder"),
        "oversized field": (csv_bytes([[*GOOD_ROW[:-1], "x" * 5000]]), {}, "longer than"),
        # every cell distinct, so nothing but the missing header is wrong; no cell may be quoted
        "no header row": (
            (
                ",".join([*GOOD_ROW[:2], "B801200005001", *GOOD_ROW[3:5], "Old", *GOOD_ROW[6:12]])
                + ",107000,B86001,EH,N,Y,note\n"
            ).encode(),
            {"row_count": 0},
            "is the header row missing?",
        ),
        "file_name leaves the folder": (good, {"file_name": "../x.csv"}, "leave the drop zone"),
        "created_at not text": (good, {"created_at": 20261125}, "created_at must be"),
        "created_at NaT": (good, {"created_at": "NaT"}, "created_at must be"),
        "row_count not a number": (good, {"row_count": True}, "row_count must be"),
    }


@pytest.mark.parametrize("case", sorted(_cases()))
def test_broken_extract_is_refused_with_reason_and_no_values(tmp_path, case):
    data, manifest, expected = _cases()[case]
    ref = drop(tmp_path, data, **manifest)
    with pytest.raises(ExtractRefused) as info:
        read_extract(tmp_path, ref)
    assert expected in info.value.reason
    for value in SECRET_VALUES:
        assert value not in info.value.reason


def test_symbolic_link_is_refused(tmp_path):
    outside = tmp_path / "elsewhere.csv"
    outside.write_bytes(csv_bytes([GOOD_ROW]))
    ref = drop(tmp_path / "landing", csv_bytes([GOOD_ROW]))
    target = tmp_path / "landing" / COUNCIL / ref.file_name
    target.unlink()
    os.symlink(outside, target)
    with pytest.raises(ExtractRefused, match="not a regular file"):
        read_extract(tmp_path / "landing", ref)


def test_folder_that_is_not_a_council_code_is_refused(tmp_path):
    ref = drop(tmp_path, csv_bytes([GOOD_ROW]), folder="E07000001")
    with pytest.raises(ExtractRefused, match="GSS code"):
        read_extract(tmp_path, ref)


def test_opt_out_registers_are_discovered_before_children(tmp_path):
    drop(tmp_path, csv_bytes([GOOD_ROW]))
    drop(
        tmp_path,
        b"nhs_number,local_child_id\n9434765919,\n",
        name="optout_20261125_0001.csv",
        file_kind="optout",
    )
    names = [r.file_name for r in discover_extracts(tmp_path)]
    assert names == ["optout_20261125_0001.csv", "children_20261125_0001.csv"]
