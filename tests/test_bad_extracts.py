"""A corpus of malformed extracts, each run through the real pipeline beside a good one.

Every case: the bad file is refused with a reason a council can act on (and no value from the
file), kept byte for byte in quarantine, the council's feedback says why, the index is exactly
what it would be without the bad file, and a good extract from another council still loads.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import os
import shutil
import zipfile
from pathlib import Path

import pytest
from test_ingest import GOOD_ROW as INGEST_ROW

from transforms.contract import CHILDREN_COLUMNS, manifest_path_for
from transforms.identifiers import nhs_check_digit
from transforms.load import IndexStore
from transforms.pipeline import SyncPaths, sync_drop_zone

BAD, GOOD = "E08000035", "E08000003"  # the council sending the broken file; another council
NAME = "children_20261125_0002.csv"
FIRST = "children_20261125_0001.csv"
SECRET_VALUES = ("Zebedee", "Quixley", "943 476 5919", "1 Some Street", "07700 900123")


def nhs(n: int) -> str:
    """Return the n-th valid NHS number counting from 600 000 000 (a test-only range)."""
    base = 600_000_000 + n
    while (check := nhs_check_digit(str(base))) is None:
        base += 1_000_000
    return f"{base}{check}"


def row(local_id="L1", nhs_number="943 476 5919", **changes) -> list[str]:
    """A valid children row; `changes` overrides columns by name."""
    values = dict(zip(CHILDREN_COLUMNS, INGEST_ROW, strict=True))
    values["local_child_id"], values["nhs_number"] = local_id, nhs_number
    values.update(changes)
    return list(values.values())


GOOD_ROW = row()


def filler(n: int, start: int = 100) -> list[list[str]]:
    """n valid rows with distinct local ids and no NHS number."""
    return [row(f"F{start + i}", "") for i in range(n)]


def csv_bytes(rows, header=CHILDREN_COLUMNS, sep=",", eol="\n") -> bytes:
    lines = [sep.join(header)] + [sep.join(r) for r in rows]
    return (eol.join(lines) + eol).encode()


def manifest_fields(data: bytes, name: str, folder: str, **changes) -> dict:
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
    fields.update(changes)
    return fields


def drop(landing: Path, data: bytes, *, name=NAME, folder=BAD, manifest=None, **changes) -> Path:
    """Write an extract, then its manifest (last, as councils must); return the extract's path.

    `manifest` replaces the manifest's bytes outright; `changes` override its fields.
    """
    (landing / folder).mkdir(parents=True, exist_ok=True)
    path = landing / folder / name
    path.write_bytes(data)
    if manifest is None:
        manifest = json.dumps(manifest_fields(data, name, folder, **changes)).encode()
    (landing / folder / manifest_path_for(name)).write_bytes(manifest)
    return path


FIRST_EXTRACT = csv_bytes([GOOD_ROW, row("L2", nhs(1))])
OTHER_EXTRACT = csv_bytes([row("G1", nhs(2)), row("G2", nhs(3)), row("G3", "")])


def new_store(home: Path, policy) -> IndexStore:
    return IndexStore.from_url(f"sqlite:///{home / 'index.sqlite'}", policy)


def index_state(store: IndexStore) -> tuple:
    with store.engine.connect() as conn:
        ledger = sorted(conn.exec_driver_sql("select sha256 from file_ledger").scalars())
    return store.snapshot(), ledger


@pytest.fixture(scope="module")
def first_load(tmp_path_factory, key, policy) -> Path:
    """An index holding the bad council's first extract (copied into each case: fast)."""
    home = tmp_path_factory.mktemp("first_load")
    store = new_store(home, policy)
    drop(home / "landing", FIRST_EXTRACT, name=FIRST)
    reports = sync_drop_zone(SyncPaths(home), key, policy, store, run_id="r1")
    assert [r.status for r in reports] == ["loaded"]
    store.engine.dispose()
    return home / "index.sqlite"


@pytest.fixture(scope="module")
def expected_index(tmp_path_factory, first_load, key, policy):
    """The index after the bad council's first extract and the other council's good one."""
    home = tmp_path_factory.mktemp("reference")
    shutil.copy(first_load, home / "index.sqlite")
    store = new_store(home, policy)
    drop(home / "landing", OTHER_EXTRACT, name=FIRST, folder=GOOD)
    sync_drop_zone(SyncPaths(home), key, policy, store, run_id="r2")
    return index_state(store)


@pytest.fixture
def preloaded(tmp_path, first_load) -> Path:
    """A home whose index already holds the bad council's first extract."""
    shutil.copy(first_load, tmp_path / "index.sqlite")
    (tmp_path / "landing" / BAD).mkdir(parents=True)
    return tmp_path


def run_case(home: Path, key, policy) -> tuple[IndexStore, dict]:
    """Drop the other council's good extract beside whatever the case dropped, and sync."""
    store = new_store(home, policy)
    drop(home / "landing", OTHER_EXTRACT, name=FIRST, folder=GOOD)
    reports = sync_drop_zone(SyncPaths(home), key, policy, store, run_id="r2")
    by_folder = {(r.folder, r.file_name): r for r in reports}
    assert by_folder.pop((GOOD, FIRST)).status == "loaded"
    return store, by_folder


def zipped(data: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("children.csv", data)
    return buf.getvalue()


def _cases() -> dict[str, tuple]:
    """name: (extract bytes, drop() keyword arguments, phrase expected in the reason)."""
    good = csv_bytes([GOOD_ROW])
    twenty = filler(20)
    return {
        "empty file": (b"", {"row_count": 0}, "the file is empty"),
        "blank lines only": (b"\n\n", {"row_count": 0}, "the file is empty"),
        "header only": (csv_bytes([]), {"row_count": 0}, "no data rows"),
        "byte-order mark": (b"\xef\xbb\xbf" + good, {}, "byte-order mark"),
        "latin-1 bytes": (
            good.replace(b"Quixley", "Quixl\xe9y".encode("latin-1")),
            {},
            "not UTF-8",
        ),
        "NUL bytes": (good.replace(b"Street", b"Str\x00et"), {}, "binary"),
        "gzip named .csv": (gzip.compress(good), {}, "compressed"),
        "zip named .csv": (zipped(good), {}, "compressed"),
        "mixed line endings": (
            csv_bytes([GOOD_ROW, row("L2", "")]).replace(b"\n", b"\r\n", 1),
            {},
            "mixes Windows and Unix line endings",
        ),
        "ragged row": (csv_bytes([GOOD_ROW[:-2]]), {}, "wrong number of fields, first at line 2"),
        "unbalanced quote": (good.replace(b"Zebedee", b'"Zebedee'), {}, "cannot be parsed"),
        "text after a closing quote": (
            good.replace(b"Zebedee", b'"Zebe"dee'),
            {},
            "cannot be parsed",
        ),
        "semicolon delimiter": (csv_bytes([GOOD_ROW], sep=";"), {}, "not comma-separated"),
        "tab delimiter": (csv_bytes([GOOD_ROW], sep="\t"), {}, "not comma-separated"),
        "header repeated as first row": (
            csv_bytes([list(CHILDREN_COLUMNS), GOOD_ROW]),
            {},
            "header row appears again",
        ),
        "column named twice": (
            csv_bytes([GOOD_ROW], header=(*CHILDREN_COLUMNS[:-1], "given_name")),
            {},
            "names a column more than once",
        ),
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
        "renamed column": (
            csv_bytes(
                [GOOD_ROW],
                header=tuple("post_code" if c == "postcode" else c for c in CHILDREN_COLUMNS),
            ),
            {},
            "missing ['postcode'], unexpected ['post_code']",
        ),
        "columns out of order": (
            csv_bytes(
                [GOOD_ROW], header=(CHILDREN_COLUMNS[1], CHILDREN_COLUMNS[0], *CHILDREN_COLUMNS[2:])
            ),
            {},
            "wrong order",
        ),
        "header row left out": (
            ("\n".join(",".join(r) for r in [GOOD_ROW, row("L2", "")]) + "\n").encode(),
            {"row_count": 1},
            "is the header row missing?",
        ),
        "upper-case header": (
            csv_bytes([GOOD_ROW], header=tuple(c.upper() for c in CHILDREN_COLUMNS)),
            {},
            "is the header row missing?",
        ),
        "oversized field": (
            csv_bytes([row(notes="x" * 5000)]),
            {},
            "longer than 2000 characters",
        ),
        "wrong checksum": (good, {"sha256": "0" * 64}, "sha256 of the file differs"),
        "cut short after the manifest": (
            good,
            {"sha256": hashlib.sha256(good + b"L9").hexdigest()},
            "cut short",
        ),
        "wrong row count": (good, {"row_count": 7}, "the manifest says 7"),
        "unknown schema version": (good, {"schema_version": "9"}, "'9' is not supported"),
        "manifest not JSON": (good, {"manifest": b"{schema_version: 1,"}, "not valid UTF-8 JSON"),
        "manifest a JSON list": (good, {"manifest": b"[1, 2]"}, "must be a JSON object"),
        "manifest missing fields": (
            good,
            {"manifest": json.dumps({"schema_version": "1", "file_name": NAME}).encode()},
            "missing ['council_code', 'created_at'",
        ),
        "manifest with an unknown field": (
            good,
            {"uploaded_by": "x"},
            "unexpected ['uploaded_by']",
        ),
        "manifest field types wrong": (
            good,
            {"sequence": "two", "file_kind": "pupils", "created_at": 20261125},
            "sequence must be a whole number",
        ),
        "created_at not a time": (good, {"created_at": "yesterday"}, "created_at must be"),
        "council code differs from folder": (
            good,
            {"council_code": GOOD},
            "council_code in the manifest differs from the folder",
        ),
        "file_name leaves the drop zone": (
            good,
            {"file_name": "../x.csv"},
            "tries to leave the drop zone",
        ),
        "file_name differs": (good, {"file_name": FIRST}, "differs from the extract beside it"),
        "more than 5% of rows fail critical rules": (
            csv_bytes([*filler(18), row("B1", "9434765910"), row("B2", "", sex="Q")]),
            {},
            "2 of 20 rows (10.0%) broke critical rules, more than the 5%",
        ),
        "every row invalid": (
            csv_bytes([row(date_of_birth="02/03/2015", postcode="")]),
            {},
            "1 of 1 rows (100.0%) broke critical rules",
        ),
        "shifted columns": (
            csv_bytes([[r[0], *r[2:], ""] for r in twenty]),
            {},
            "20 of 20 rows",
        ),
        "duplicate local ids throughout": (
            csv_bytes([row("SAME", "") for _ in range(3)]),
            {},
            "local_child_id_duplicate (3)",
        ),
    }


CASES = _cases()


def test_the_corpus_has_at_least_thirty_distinct_cases():
    assert len(CASES) >= 30
    assert len({data + repr(sorted(kw.items())).encode() for data, kw, _ in CASES.values()}) == len(
        CASES
    )


def assert_refused_and_kept(home: Path, folder: str, name: str, original: bytes, phrase: str):
    """The extract is in quarantine byte for byte, with reason.json and the council's feedback."""
    kept = list((home / "quarantine" / folder).glob(f"*/{name}"))
    assert len(kept) == 1, f"expected {name} once in quarantine, found {kept}"
    assert kept[0].read_bytes() == original
    assert (kept[0].parent / manifest_path_for(name)).exists()
    reason = json.loads((kept[0].parent / "reason.json").read_text())
    assert phrase in reason["reason"]
    assert not (home / "landing" / folder / name).exists()
    outbox = home / "outbox" / folder
    for suffix in (".feedback.csv", ".feedback.html"):
        text = (outbox / (name + suffix)).read_text()
        assert "refused" in text.lower()
        for value in SECRET_VALUES:
            assert value not in text


@pytest.mark.parametrize("case", list(CASES))
def test_broken_extract_is_refused_kept_intact_and_changes_nothing(
    tmp_path, preloaded, key, policy, expected_index, case
):
    data, changes, phrase = CASES[case]
    changes = {"sequence": 2, **changes}
    folder = changes.pop("folder", BAD)
    drop(tmp_path / "landing", data, folder=folder, **changes)

    store, reports = run_case(tmp_path, key, policy)

    report = reports[(folder, NAME)]
    assert report.status == "refused"
    assert phrase in report.reason
    for value in SECRET_VALUES:
        assert value not in report.reason
    assert_refused_and_kept(tmp_path, folder, NAME, data, phrase)
    assert index_state(store) == expected_index


@pytest.mark.parametrize(
    ("case", "folder", "phrase"),
    [
        ("district council (E07)", "E07000001", "GSS code"),
        ("not a code at all", "leeds", "GSS code"),
        ("children extract in the national folder", "national", "national folder holds only"),
    ],
)
def test_extract_in_a_folder_that_is_not_a_council_is_refused(
    tmp_path, preloaded, key, policy, expected_index, case, folder, phrase
):
    data = csv_bytes([GOOD_ROW])
    drop(tmp_path / "landing", data, folder=folder, sequence=2)
    store, reports = run_case(tmp_path, key, policy)
    assert phrase in reports[(folder, NAME)].reason
    assert_refused_and_kept(tmp_path, folder, NAME, data, phrase)
    assert index_state(store) == expected_index


def test_extract_without_manifest_is_left_in_landing_untouched(
    tmp_path, preloaded, key, policy, expected_index
):
    path = tmp_path / "landing" / BAD / NAME
    data = csv_bytes([GOOD_ROW])
    path.write_bytes(data)
    store, reports = run_case(tmp_path, key, policy)
    assert reports == {}  # not picked up: it may still be arriving
    assert path.read_bytes() == data
    assert not (tmp_path / "quarantine").exists()
    assert not (tmp_path / "outbox" / BAD / (NAME + ".feedback.csv")).exists()
    assert index_state(store) == expected_index


def test_manifest_without_its_extract_is_refused(tmp_path, preloaded, key, policy, expected_index):
    extract = drop(tmp_path / "landing", csv_bytes([GOOD_ROW]), sequence=2)
    extract.unlink()
    store, reports = run_case(tmp_path, key, policy)
    assert "not in the folder" in reports[(BAD, NAME)].reason
    kept = list((tmp_path / "quarantine" / BAD).glob(f"*/{manifest_path_for(NAME)}"))
    assert len(kept) == 1
    assert index_state(store) == expected_index


def test_symbolic_link_is_refused_and_its_target_untouched(
    tmp_path, preloaded, key, policy, expected_index
):
    outside = tmp_path / "elsewhere.csv"
    data = csv_bytes([GOOD_ROW])
    outside.write_bytes(data)
    link = drop(tmp_path / "landing", data, sequence=2)
    link.unlink()
    os.symlink(outside, link)
    store, reports = run_case(tmp_path, key, policy)
    assert "not a regular file" in reports[(BAD, NAME)].reason
    assert outside.read_bytes() == data
    assert not link.is_symlink() and not link.exists()  # the link left the drop zone
    assert list((tmp_path / "quarantine" / BAD).glob(f"*/{manifest_path_for(NAME)}"))
    assert index_state(store) == expected_index


def test_council_folder_that_is_a_link_is_not_followed(
    tmp_path, preloaded, key, policy, expected_index
):
    elsewhere = tmp_path / "elsewhere"
    path = drop(elsewhere, csv_bytes([GOOD_ROW]), folder="E09000001")
    os.symlink(elsewhere / "E09000001", tmp_path / "landing" / "E09000001")
    store, reports = run_case(tmp_path, key, policy)
    assert reports == {}
    assert path.read_bytes() == csv_bytes([GOOD_ROW])
    assert index_state(store) == expected_index


def test_file_already_loaded_changes_nothing(tmp_path, preloaded, key, policy, expected_index):
    drop(tmp_path / "landing", FIRST_EXTRACT, name=FIRST)  # the same file, sent again
    store, reports = run_case(tmp_path, key, policy)
    report = reports[(BAD, FIRST)]
    assert report.status == "already_loaded"
    assert index_state(store) == expected_index
    kept = list((tmp_path / "processed" / BAD).glob(f"*/{FIRST}"))
    assert [p.read_bytes() for p in kept] == [FIRST_EXTRACT]
    feedback = (tmp_path / "outbox" / BAD / (FIRST + ".feedback.csv")).read_text()
    assert "already loaded" in feedback and "loaded before" in feedback


def test_stale_snapshot_is_refused_at_load_and_kept(
    tmp_path, preloaded, key, policy, expected_index
):
    older = csv_bytes([GOOD_ROW])  # other children, but sequence 1 is already loaded
    drop(tmp_path / "landing", older, sequence=1)
    store, reports = run_case(tmp_path, key, policy)
    assert "stale snapshot: sequence 1 is not newer than sequence 1" in reports[(BAD, NAME)].reason
    assert_refused_and_kept(tmp_path, BAD, NAME, older, "stale snapshot")
    assert index_state(store) == expected_index


def test_refusing_the_same_name_twice_never_overwrites_quarantine(tmp_path, key, policy):
    first, second = csv_bytes([GOOD_ROW], sep=";"), b""
    drop(tmp_path / "landing", first)
    sync_drop_zone(SyncPaths(tmp_path), key, policy, new_store(tmp_path, policy), run_id="r1")
    drop(tmp_path / "landing", second, row_count=0)
    sync_drop_zone(SyncPaths(tmp_path), key, policy, new_store(tmp_path, policy), run_id="r2")
    stem = Path(NAME).stem
    assert (tmp_path / "quarantine" / BAD / stem / NAME).read_bytes() == first
    assert (tmp_path / "quarantine" / BAD / f"{stem}.2" / NAME).read_bytes() == second
    reasons = [
        json.loads((tmp_path / "quarantine" / BAD / d / "reason.json").read_text())["reason"]
        for d in (stem, f"{stem}.2")
    ]
    assert "comma-separated" in reasons[0] and "empty" in reasons[1]


def test_formula_in_a_name_loads_and_never_reaches_the_feedback(tmp_path, key, policy):
    rows = [row("L1", "", given_name='=HYPERLINK("http://x")'), *filler(19)]
    drop(tmp_path / "landing", csv_bytes(rows), sequence=1)
    _store, reports = run_case(tmp_path, key, policy)
    assert reports[(BAD, NAME)].status == "loaded"
    assert reports[(BAD, NAME)].counts["loaded"] == 20
    for suffix in (".feedback.csv", ".feedback.html"):
        assert "HYPERLINK" not in (tmp_path / "outbox" / BAD / (NAME + suffix)).read_text()


@pytest.mark.parametrize("formula", ["=1+2", "+1", "-1", "@SUM(A1)", "=cmd|' /C calc'!A0"])
def test_formula_in_a_refused_rows_local_id_is_neutralised(tmp_path, key, policy, formula):
    bad = row(formula, "9434765910")  # fails Modulus 11: the row is refused, the file accepted
    drop(tmp_path / "landing", csv_bytes([*filler(19), bad]), sequence=1)
    _store, reports = run_case(tmp_path, key, policy)
    assert reports[(BAD, NAME)].status == "loaded"
    feedback = (tmp_path / "outbox" / BAD / (NAME + ".feedback.csv")).read_text()
    refused = [r for r in csv.reader(io.StringIO(feedback)) if r[0] == "row"]
    assert [(r[1], r[5], r[6]) for r in refused] == [("nhs_number_mod11", "21", "'" + formula)]
