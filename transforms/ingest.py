"""Ingest: find complete extracts in the drop zone, check each against its manifest, read strictly.

Every refusal raises `ExtractRefused` with a reason a council can act on. Reasons name files,
columns, counts and rules, never a value from the extract.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from transforms.contract import (
    CHILDREN_COLUMNS,
    COUNCIL_CODE_RE,
    EXTRACT_KINDS,
    FILE_KINDS,
    MANIFEST_SUFFIX,
    MAX_FIELD_CHARS,
    NATIONAL_FOLDER,
    OPTOUT_COLUMNS,
    SCHEMA_VERSION,
    Manifest,
    extract_name_for,
    is_safe_relative,
)

# A header cell shaped like a column name may be quoted back; anything else might be data.
_SHOWABLE_COLUMN = re.compile(r"[a-z][a-z0-9_]{0,63}")


class ExtractRefused(Exception):
    """An extract cannot be used; `reason` says what the council should fix."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class ExtractRef:
    """A complete extract found in the drop zone: its manifest exists beside it."""

    folder: str  # the council folder: a GSS code, or "national"
    file_name: str
    manifest_name: str

    @property
    def relative_path(self) -> str:
        """The extract's path relative to the landing folder."""
        return f"{self.folder}/{self.file_name}"


def discover_extracts(landing: Path) -> list[ExtractRef]:
    """List the extracts whose manifest has arrived, in a stable order (folder, then file name).

    An extract without a manifest is left alone: it may still be arriving. Opt-out registers sort
    before children extracts of the same folder so suppressions apply first.
    """
    refs: list[ExtractRef] = []
    if not landing.is_dir():
        return refs
    for folder in sorted(p for p in landing.iterdir() if p.is_dir() and not p.is_symlink()):
        for manifest in sorted(folder.glob("*" + MANIFEST_SUFFIX)):
            refs.append(ExtractRef(folder.name, extract_name_for(manifest.name), manifest.name))
    return sorted(refs, key=lambda r: (r.folder, not r.file_name.startswith("optout"), r.file_name))


def parse_manifest(text: bytes, folder: str) -> Manifest:
    """Parse and check a manifest's own fields against the folder it was dropped in."""
    try:
        raw = json.loads(text.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ExtractRefused(
            f"manifest is not valid UTF-8 JSON ({type(exc).__name__}): write it with a JSON library"
        ) from None
    if not isinstance(raw, dict):
        raise ExtractRefused("manifest must be a JSON object")
    fields = set(Manifest.__dataclass_fields__)
    missing, extra = sorted(fields - set(raw)), sorted(set(raw) - fields)
    if missing or extra:
        raise ExtractRefused(f"manifest fields wrong: missing {missing}, unexpected {extra}")
    if str(raw["schema_version"]) != SCHEMA_VERSION:
        version = str(raw["schema_version"])[:10]
        raise ExtractRefused(
            f"schema_version {version!r} is not supported; "
            f"this pipeline reads version {SCHEMA_VERSION}"
        )
    problems = []
    if raw["file_kind"] not in FILE_KINDS:
        problems.append(f"file_kind must be one of {list(FILE_KINDS)}")
    if raw["extract_kind"] not in EXTRACT_KINDS:
        problems.append(f"extract_kind must be one of {list(EXTRACT_KINDS)}")
    if type(raw["row_count"]) is not int or raw["row_count"] < 0:
        problems.append("row_count must be a whole number")
    if type(raw["sequence"]) is not int or raw["sequence"] < 1:
        problems.append("sequence must be a whole number from 1")
    if not isinstance(raw["sha256"], str) or len(raw["sha256"]) != 64:
        problems.append("sha256 must be the 64-character hex digest of the extract")
    if not isinstance(raw["file_name"], str) or not raw["file_name"]:
        problems.append("file_name must be the extract's file name")
    try:
        if not isinstance(raw["created_at"], str) or pd.isna(pd.Timestamp(raw["created_at"])):
            raise ValueError
    except (ValueError, TypeError):
        problems.append("created_at must be an ISO 8601 time such as 2026-11-25T06:00:00Z")
    if folder == NATIONAL_FOLDER:
        if raw["council_code"] != NATIONAL_FOLDER or raw["file_kind"] != "optout":
            problems.append(
                "the national folder holds only the national opt-out register "
                '(council_code "national", file_kind "optout")'
            )
    elif raw["council_code"] != folder:
        problems.append("council_code in the manifest differs from the folder it was dropped in")
    if problems:
        raise ExtractRefused("manifest: " + "; ".join(problems))
    return Manifest(**{k: raw[k] for k in fields})


@dataclass(frozen=True)
class Extract:
    """An extract that passed the file checks: its manifest, its rows, and its original bytes.

    The bytes are kept so that refused rows can be set aside exactly as they arrived.
    """

    manifest: Manifest
    frame: pd.DataFrame
    data: bytes


def read_extract(landing: Path, ref: ExtractRef) -> tuple[Manifest, pd.DataFrame]:
    """Verify an extract against its manifest and read it as strings.

    Args:
        landing: the drop zone root.
        ref: the extract, as found by `discover_extracts`.

    Returns:
        The manifest and the rows, every column a string column, blanks as "".

    Raises:
        ExtractRefused: the folder, manifest, bytes, encoding, CSV shape or header is wrong.
    """
    extract = load_extract(landing, ref)
    return extract.manifest, extract.frame


def load_extract(landing: Path, ref: ExtractRef) -> Extract:
    """As `read_extract`, also returning the file's bytes (for setting refused rows aside).

    Raises:
        ExtractRefused: the folder, manifest, bytes, encoding, CSV shape or header is wrong.
    """
    manifest, data = read_verified(landing, ref)
    frame = parse_rows(data, manifest)
    return Extract(manifest, frame, data)


def read_verified(landing: Path, ref: ExtractRef) -> tuple[Manifest, bytes]:
    """Check an extract's folder, name and checksum against its manifest without parsing rows.

    Returns:
        The manifest and the extract's bytes. `parse_rows` on them makes the full checks; the
        change detector (`transforms/changes.py`) parses only the rows that changed.

    Raises:
        ExtractRefused: the folder, file, manifest or checksum is wrong.
    """
    if ref.folder != NATIONAL_FOLDER and not COUNCIL_CODE_RE.match(ref.folder):
        raise ExtractRefused(
            "the folder name is not the GSS code of a council with children's "
            "services (E06, E08, E09 or E10 followed by six digits)"
        )
    if not is_safe_relative(ref.relative_path):
        raise ExtractRefused("the file name tries to leave the drop zone")
    folder = landing / ref.folder
    manifest_path, path = folder / ref.manifest_name, folder / ref.file_name
    for p in (manifest_path, path):
        if p.is_symlink() or (p.exists() and not p.is_file()):
            raise ExtractRefused(f"{p.name} is not a regular file (links are not followed)")
    if not path.exists():
        raise ExtractRefused("the manifest names an extract that is not in the folder")
    data = path.read_bytes()
    return verify_manifest(data, manifest_path.read_bytes(), ref.folder, ref.file_name), data


def parse_extract(
    data: bytes, manifest_text: bytes, folder: str, file_name: str
) -> tuple[Manifest, pd.DataFrame]:
    """Check extract bytes against their manifest and parse them; no file system involved.

    Args:
        data: the extract's bytes.
        manifest_text: the manifest's bytes.
        folder: the council folder the pair was dropped in (or is checked for).
        file_name: the extract's own file name.

    Returns:
        The manifest and the rows, every column a string column, blanks as "".

    Raises:
        ExtractRefused: the manifest, checksum, row count, encoding, CSV shape or header is wrong.
    """
    manifest = verify_manifest(data, manifest_text, folder, file_name)
    return manifest, parse_rows(data, manifest)


def parse_rows(data: bytes, manifest: Manifest) -> pd.DataFrame:
    """Parse verified extract bytes strictly and check the row count against the manifest.

    Raises:
        ExtractRefused: encoding, CSV shape, header or row count is wrong.
    """
    columns = CHILDREN_COLUMNS if manifest.file_kind == "children" else OPTOUT_COLUMNS
    frame = parse_csv(data, columns)
    if len(frame) != manifest.row_count:
        raise ExtractRefused(
            f"the file has {len(frame)} data rows but the manifest says {manifest.row_count}"
        )
    return frame


def verify_manifest(data: bytes, manifest_text: bytes, folder: str, file_name: str) -> Manifest:
    """Parse a manifest and check it names this file and matches its bytes (sha256).

    Raises:
        ExtractRefused: the manifest is wrong, names another file, or the checksum differs.
    """
    manifest = parse_manifest(manifest_text, folder)
    if not is_safe_relative(manifest.file_name) or "/" in manifest.file_name:
        raise ExtractRefused(
            "the manifest's file_name tries to leave the drop zone: give the bare file name"
        )
    if manifest.file_name != file_name:
        raise ExtractRefused("the manifest's file_name differs from the extract beside it")
    if hashlib.sha256(data).hexdigest() != manifest.sha256.lower():
        raise ExtractRefused(
            "sha256 of the file differs from the manifest: the file changed or "
            "was cut short after the manifest was written"
        )
    return manifest


def original_records(data: bytes, positions: list[int]) -> tuple[bytes, list[tuple[int, int]]]:
    """Return the header and the given data records exactly as they are in `data`, and their lines.

    A record may span several lines (a quoted field holding a line break), so records are found
    with the same CSV reader that parsed the file, following the lines it consumes.

    Args:
        data: the extract's bytes, already accepted by `parse_csv`.
        positions: 0-based positions of data records (header excluded), as in the parsed frame.

    Returns:
        The header's bytes followed by each wanted record's bytes, in file order, byte for byte;
        and for each wanted record its first and last line number (the header is line 1).
    """
    text = data.decode("utf-8")
    starts = [0]  # byte offset at which each line read so far begins

    def lines():
        for line in io.StringIO(text, newline=""):
            starts.append(starts[-1] + len(line.encode("utf-8")))
            yield line

    wanted, out, spans = set(positions), [], []
    reader = csv.reader(lines(), strict=True)
    first_line = 0
    for number, _record in enumerate(reader, start=-1):
        last_line = reader.line_num
        if number == -1 or number in wanted:
            out.append(data[starts[first_line] : starts[last_line]])
            if number != -1:
                spans.append((first_line + 1, last_line))
        first_line = last_line
    return b"".join(out), spans


def parse_csv(data: bytes, columns: tuple[str, ...]) -> pd.DataFrame:
    """Parse extract bytes strictly into a frame of string columns.

    Raises:
        ExtractRefused: encoding, NUL bytes, quoting, ragged rows or a header other than `columns`.
    """
    if not data.strip():
        raise ExtractRefused("the file is empty")
    if data.startswith(b"\xef\xbb\xbf"):
        raise ExtractRefused("the file starts with a byte-order mark: save as UTF-8 without BOM")
    if data[:2] in (b"PK", b"\x1f\x8b") or b"\x00" in data:
        raise ExtractRefused(
            "the file contains binary data (NUL bytes, or it is compressed): "
            "send plain UTF-8 CSV text"
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ExtractRefused(
            f"the file is not UTF-8 (first bad byte at offset {exc.start}): export as UTF-8"
        ) from None
    if "\r\n" in text and "\n" in text.replace("\r\n", ""):
        raise ExtractRefused("the file mixes Windows and Unix line endings: export it in one go")
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        rows = list(reader)
    except csv.Error as exc:
        raise ExtractRefused(
            f"the CSV cannot be parsed near line {reader.line_num} "
            f"({str(exc).split(':')[0]}): check quoting"
        ) from None
    header, body = rows[0], rows[1:]
    if header != list(columns):
        missing = [c for c in columns if c not in header]
        extra = [c for c in header if c not in columns]
        if len(header) == 1 and len(columns) > 1 and (";" in header[0] or "\t" in header[0]):
            raise ExtractRefused("the file is not comma-separated: use commas between columns")
        if len(missing) == len(columns):
            # No contract column at all: the first line may be data (a file without its header),
            # so none of it is quoted.
            raise ExtractRefused(
                f"the header does not match contract v{SCHEMA_VERSION}: none of its columns is "
                "named in the first line; is the header row missing? (a lower-case header, "
                "spelled as in the contract, is needed)"
            )
        if len(set(header)) != len(header):
            raise ExtractRefused("the header names a column more than once")
        shown = [c for c in extra if _SHOWABLE_COLUMN.fullmatch(c)]
        if len(shown) < len(extra):
            shown.append(f"and {len(extra) - len(shown)} more not shown by name")
        detail = f"missing {missing}, unexpected {shown}" if missing or extra else "wrong order"
        raise ExtractRefused(f"the header does not match contract v{SCHEMA_VERSION}: {detail}")
    ragged = [i for i, r in enumerate(body, start=2) if len(r) != len(columns)]
    if ragged:
        raise ExtractRefused(
            f"{len(ragged)} row(s) have the wrong number of fields, first at line {ragged[0]}"
        )
    if body and header in body[:1]:
        raise ExtractRefused("the header row appears again as the first data row")
    frame = pd.DataFrame(body, columns=list(columns), dtype="string")
    too_long = [c for c in columns if len(frame) and frame[c].str.len().max() > MAX_FIELD_CHARS]
    if too_long:
        raise ExtractRefused(
            f"column(s) {too_long} hold a value longer than {MAX_FIELD_CHARS} characters"
        )
    return frame
