"""Pre-flight: a council checks one extract exactly as the pipeline will, before sending it."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd

from transforms.contract import CHILDREN_COLUMNS, MANIFEST_SUFFIX, OPTOUT_COLUMNS
from transforms.ingest import ExtractRef, ExtractRefused, parse_csv, read_extract
from transforms.validate import validate_children, validate_optouts


def check_extract(
    path: Path, council_code: str | None = None, today: dt.date | None = None
) -> tuple[bool, str]:
    """Check one extract file and say what the pipeline would do with it.

    Args:
        path: the extract CSV. Its manifest is checked too when it is beside it.
        council_code: the council's GSS code; by default the manifest's, else the folder name.
        today: the extract date for age rules when there is no manifest (default: today).

    Returns:
        (would be accepted, a report for council staff). The report holds counts, rule names,
        row numbers and fixes, never a value from the file.
    """
    lines = [f"pre-flight check of {path.name}"]
    manifest_path = path.with_name(path.name + MANIFEST_SUFFIX)
    kind = "optout" if path.name.startswith("optout") else "children"
    try:
        if manifest_path.exists():
            ref = ExtractRef(path.parent.name, path.name, manifest_path.name)
            manifest, frame = read_extract(path.parent.parent, ref)
            kind, council_code = manifest.file_kind, council_code or manifest.council_code
            extract_date = pd.Timestamp(manifest.created_at).date()
            lines.append("manifest: present and matches the file")
        else:
            lines.append(
                "manifest: not found beside the file; the pipeline waits for it, so "
                "write it last (see docs/extract-contract.md)"
            )
            columns = OPTOUT_COLUMNS if kind == "optout" else CHILDREN_COLUMNS
            frame = parse_csv(path.read_bytes(), columns)
            extract_date = today or dt.date.today()
    except ExtractRefused as refused:
        lines.append(f"REFUSED: {refused.reason}")
        return False, "\n".join(lines)
    council_code = council_code or path.parent.name
    if kind == "optout":
        result = validate_optouts(frame)
    else:
        result = validate_children(frame, council_code=council_code, extract_date=extract_date)
    lines.append(
        f"rows: {len(frame)}; would load: {int(result.row_ok.sum())}; "
        f"would be refused: {int((~result.row_ok).sum())}"
    )
    for o in result.outcomes:
        if o.failed_rows:
            lines.append(
                f"  {o.severity:8} {o.rule} ({o.column or 'file'}): {o.failed_rows} row(s). {o.fix}"
            )
    refused_rows = result.row_rules[~result.row_ok]
    for position, rules in list(refused_rows.items())[:50]:
        lines.append(f"  line {int(position) + 2}: {rules}")
    if len(refused_rows) > 50:
        lines.append(f"  ... and {len(refused_rows) - 50} more refused rows")
    ok = result.accepted and manifest_path.exists()
    lines.append("VERDICT: " + ("accepted" if result.accepted else f"REFUSED: {result.reason}"))
    return ok, "\n".join(lines)
