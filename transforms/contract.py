"""Extract contract v1: the drop-zone layout, the file schemas and the manifest, in code.

`docs/extract-contract.md` is the same contract written for councils; a test keeps the two in step.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from pathlib import PurePosixPath

SCHEMA_VERSION = "1"

# landing/<council GSS code>/<name>.csv with <name>.csv.manifest.json beside it.
MANIFEST_SUFFIX = ".manifest.json"
NATIONAL_FOLDER = "national"  # landing/national/ holds the national opt-out register only
COUNCIL_CODE_RE = re.compile(r"^E(06|08|09|10)\d{6}$")

EXTRACT_KINDS = ("snapshot", "delta")
FILE_KINDS = ("children", "optout")

# Children extract columns, in order. Every column is required in the header; a value may be
# blank where `CHILDREN_OPTIONAL` says so.
CHILDREN_COLUMNS: tuple[str, ...] = (
    "local_child_id",  # the council's own id for the child; unique within the file
    "nhs_number",  # 10 digits, spaces allowed, Modulus 11; may be blank
    "upn",  # Unique Pupil Number: check letter + 12 characters; may be blank
    "given_name",
    "family_name",
    "former_family_name",  # may be blank
    "date_of_birth",  # YYYY-MM-DD
    "sex",  # one of SEX_CODES
    "address",  # first line(s) of the address, without the postcode
    "postcode",  # UK postcode, e.g. LS6 2AB
    "carer_name",  # parent or carer
    "carer_phone",  # parent or carer contact number
    "school_urn",  # 6-digit school Unique Reference Number; may be blank
    "gp_practice_code",  # ODS code of the GP practice, e.g. B86001; may be blank
    "services",  # service codes separated by ';' (see policy.yaml); may be blank
    "shielded",  # Y or N: increased risk of harm if the child's location became known
    "care_leaver",  # Y or N: retention runs to 25 for care leavers
    "notes",  # free text; never reaches the index
)
CHILDREN_REQUIRED_VALUES: tuple[str, ...] = (
    "local_child_id",
    "given_name",
    "family_name",
    "date_of_birth",
    "sex",
    "postcode",
    "shielded",
)
SEX_CODES: dict[str, str] = {"M": "male", "F": "female", "X": "indeterminate", "U": "not known"}
YES_NO = ("Y", "N")
YES_NO_COLUMNS = ("shielded", "care_leaver")

# Opt-out register: one row per child who has opted out; at least one of the two ids is given.
OPTOUT_COLUMNS: tuple[str, ...] = ("nhs_number", "local_child_id")

# Children older than this on the extract date are refused (care leavers run to 25).
MAX_AGE_YEARS = 25

MAX_FIELD_CHARS = 2000  # a longer cell is refused: no field of the contract needs more


@dataclass(frozen=True)
class Manifest:
    """The JSON manifest that travels beside every extract.

    A file without its manifest is not picked up (it may still be arriving); the manifest is
    written last, after the extract is complete.
    """

    schema_version: str
    council_code: str  # GSS code, or "national" for the national opt-out register
    file_kind: str  # "children" or "optout"
    extract_kind: str  # "snapshot" or "delta"
    sequence: int  # increases by one with every extract of this kind from this council
    created_at: str  # ISO 8601 UTC, e.g. 2026-11-25T06:00:00Z
    file_name: str  # the extract's file name, beside the manifest
    row_count: int  # data rows, header excluded
    sha256: str  # hex digest of the extract's bytes

    def to_json(self) -> str:
        """Return the manifest as the JSON text written beside the extract."""
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"


def manifest_path_for(extract_name: str) -> str:
    """Return the manifest file name that belongs beside `extract_name`."""
    return extract_name + MANIFEST_SUFFIX


def extract_name_for(manifest_name: str) -> str:
    """Return the extract file name a manifest file name describes."""
    if not manifest_name.endswith(MANIFEST_SUFFIX):
        raise ValueError(f"not a manifest file name (expected the suffix {MANIFEST_SUFFIX})")
    return manifest_name[: -len(MANIFEST_SUFFIX)]


def extract_file_name(file_kind: str, created_at: str, sequence: int) -> str:
    """Return the conventional extract name, e.g. children_20261125_0001.csv."""
    day = created_at[:10].replace("-", "")
    return f"{file_kind}_{day}_{sequence:04d}.csv"


def is_safe_relative(path: str) -> bool:
    """Return True when `path` stays inside the folder it is relative to."""
    p = PurePosixPath(path)
    return not p.is_absolute() and ".." not in p.parts and "\\" not in path
