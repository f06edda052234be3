"""Pre-flight: a council checks one extract exactly as the pipeline will, before sending it.

Needs no key, no index and no Airflow. It prints the same report the pipeline writes to the
council's outbox (`transforms.feedback`), preceded by a line on the manifest.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd

from transforms.contract import (
    CHILDREN_COLUMNS,
    COUNCIL_CODE_RE,
    MANIFEST_SUFFIX,
    NATIONAL_FOLDER,
    OPTOUT_COLUMNS,
)
from transforms.feedback import (
    ACCEPTED,
    NOT_PICKED_UP,
    REFUSED,
    build_feedback,
    format_text,
)
from transforms.identifiers import nhs_number_is_valid, normalise_nhs_number
from transforms.ingest import ExtractRefused, parse_csv, parse_extract
from transforms.validate import ValidationResult, validate_children, validate_optouts

NO_MANIFEST = (
    "no manifest beside the file: the pipeline waits for it, so write it last "
    "(see docs/for-councils.md); the rows were checked as they would be"
)


def duplicate_children(frame: pd.DataFrame, validation: ValidationResult) -> dict[int, str]:
    """Rows that pass the rules but share a valid NHS number: the pipeline refuses them all.

    The pipeline finds them by pseudonym; without the key, the normalised NHS number groups the
    same rows (a child's pseudonym is the keyed hash of exactly that number).
    """
    ok = validation.row_ok.to_numpy()
    numbers = frame["nhs_number"]
    digits = normalise_nhs_number(numbers).where(nhs_number_is_valid(numbers))
    digits = digits[ok & digits.notna().to_numpy()]
    dup = digits.duplicated(keep=False)
    return dict.fromkeys(map(int, dup.index[dup]), "duplicate_child_in_file")


def check_extract(
    path: Path, council_code: str | None = None, today: dt.date | None = None
) -> tuple[bool, str]:
    """Check one extract file and say what the pipeline would do with it.

    Args:
        path: the extract CSV. Its manifest is checked too when it is beside it.
        council_code: the council's GSS code; by default the name of the file's folder.
        today: the extract date for age rules when there is no manifest (default: today).

    Returns:
        (would be accepted, the report for council staff). The report is the one the pipeline
        writes to the outbox: counts, rules, fixes, row numbers and the council's own local ids
        of refused rows, never another value from the file.
    """
    path = Path(path)
    folder = council_code or path.parent.name
    manifest_path = path.with_name(path.name + MANIFEST_SUFFIX)
    has_manifest = manifest_path.is_file()
    kind = "optout" if path.name.startswith("optout") else "children"
    lines = [f"Pre-flight check of {path.name} for {folder}"]
    try:
        if folder != NATIONAL_FOLDER and not COUNCIL_CODE_RE.match(folder):
            raise ExtractRefused(
                "the folder name is not the GSS code of a council with children's services "
                "(E06, E08, E09 or E10 followed by six digits): put the file in a folder named "
                "by your council's code, or give --council CODE"
            )
        if path.is_symlink() or not path.is_file():
            raise ExtractRefused(f"{path.name} is not a regular file (links are not followed)")
        data = path.read_bytes()
        if has_manifest:
            manifest, frame = parse_extract(data, manifest_path.read_bytes(), folder, path.name)
            kind, folder = manifest.file_kind, manifest.council_code
            extract_date = pd.Timestamp(manifest.created_at).date()
            lines.append("Manifest: present and matches the file.")
        else:
            lines.append("Manifest: not found beside the file.")
            frame = parse_csv(data, OPTOUT_COLUMNS if kind == "optout" else CHILDREN_COLUMNS)
            extract_date = today or dt.date.today()
    except ExtractRefused as refused:
        feedback = build_feedback(folder, path.name, REFUSED, refused.reason)
        return False, "\n".join([*lines, format_text(feedback)])

    if kind == "optout":
        validation = validate_optouts(frame)
        duplicates: dict[int, str] = {}
    else:
        validation = validate_children(frame, council_code=folder, extract_date=extract_date)
        duplicates = duplicate_children(frame, validation) if validation.accepted else {}
    if not validation.accepted:
        verdict, reason = REFUSED, validation.reason
    elif not has_manifest:
        verdict, reason = NOT_PICKED_UP, NO_MANIFEST
    else:
        verdict, reason = ACCEPTED, None
    feedback = build_feedback(
        folder,
        path.name,
        verdict,
        reason,
        received=len(frame),
        frame=frame,
        validation=validation,
        extra_refused=duplicates,
    )
    return verdict == ACCEPTED, "\n".join([*lines, format_text(feedback)])
