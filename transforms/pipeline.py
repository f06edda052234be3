"""The sync pipeline: the phases in order, shared by the DAG, the CLI, the benchmarks and the tests.

`process_extract` takes one extract from the drop zone to a staged file of minimised,
pseudonymised rows (or refuses it into quarantine); `load_staged` applies staged files to the
index. Only these two touch the file system; the phases they call are pure functions of frames.
Reports carry counts, file names and rule names, never a value from an extract.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd

from transforms.column_guard import guard_columns
from transforms.contract import NATIONAL_FOLDER
from transforms.datadocs import record_validation
from transforms.feedback import ACCEPTED, ALREADY_LOADED, REFUSED, build_feedback, write_feedback
from transforms.feedback import refused_rows as feedback_refused_rows
from transforms.ingest import (
    ExtractRef,
    ExtractRefused,
    discover_extracts,
    load_extract,
    original_records,
)
from transforms.load import IndexStore, StagedFile
from transforms.minimise import KEY_COLUMNS, minimise
from transforms.pii import guard_index_values, scan_notes
from transforms.policy import Policy
from transforms.pseudonymise import PseudonymKey, assign_pseudonyms
from transforms.suppress import strip_shielded
from transforms.validate import ValidationResult, validate_children, validate_optouts

COUNT_KEYS = ("received", "rejected", "opted_out", "shielded", "loaded", "notes_with_pii")


@dataclass(frozen=True)
class SyncPaths:
    """Where a deployment keeps its files, all under one home folder."""

    home: Path

    @property
    def landing(self) -> Path:
        """The drop zone councils write to: landing/<GSS code>/."""
        return self.home / "landing"

    @property
    def staging(self) -> Path:
        """Minimised, pseudonymised rows between processing and loading (no personal data)."""
        return self.home / "staging"

    @property
    def processed(self) -> Path:
        """Extracts that were loaded (or were already loaded), kept as they arrived."""
        return self.home / "processed"

    @property
    def quarantine(self) -> Path:
        """Refused files and refused rows, kept intact with the reason."""
        return self.home / "quarantine"

    @property
    def runs(self) -> Path:
        """One values-free JSON summary per run, for `registry-sync report` and the UI."""
        return self.home / "runs"

    @property
    def outbox(self) -> Path:
        """Feedback reports, one folder per council, each about that council's data only."""
        return self.home / "outbox"


@dataclass
class FileReport:
    """What happened to one extract. JSON-safe and values-free: it travels through XCom."""

    folder: str
    file_name: str
    file_kind: str = ""
    status: str = "pending"  # staged | refused | loaded | already_loaded
    reason: str | None = None
    sha256: str = ""
    extract_kind: str = ""
    sequence: int = 0
    created_at: str = ""
    staged_path: str | None = None
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNT_KEYS, 0))
    rules: dict[str, int] = field(default_factory=dict)
    pii: dict[str, int] = field(default_factory=dict)
    column_findings: dict[str, dict] = field(default_factory=dict)  # column guard, no values

    def to_dict(self) -> dict:
        """Return the report as plain JSON types (for XCom)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> FileReport:
        """Rebuild a report from `to_dict` output."""
        return cls(**data)


def _write_feedback(
    paths: SyncPaths,
    report: FileReport,
    rows: pd.DataFrame | None = None,
    validation: ValidationResult | None = None,
    extra_refused: dict[int, str] | None = None,
) -> None:
    """Write the council's feedback (CSV and HTML): verdict, counts per rule, refused rows."""
    verdict = {"refused": REFUSED, "already_loaded": ALREADY_LOADED}.get(report.status, ACCEPTED)
    feedback = build_feedback(
        report.folder,
        report.file_name,
        verdict,
        report.reason,
        received=report.counts.get("received", 0),
        frame=rows,
        validation=validation,
        extra_refused=extra_refused,
    )
    write_feedback(paths.outbox, feedback)


def _move_pair(landing: Path, ref: ExtractRef, dest: Path) -> None:
    """Move an extract and its manifest out of the drop zone; safe to repeat after a crash."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in (ref.file_name, ref.manifest_name):
        src = landing / ref.folder / name
        if src.is_symlink():
            src.unlink()  # a link is not data we hold; the reason records it
        elif src.exists():
            shutil.move(str(src), str(dest / name))


def _free_folder(parent: Path, stem: str) -> Path:
    """Return parent/stem, or parent/stem.2, .3, ...: a refusal never overwrites an earlier one."""
    candidate, n = parent / stem, 1
    while candidate.exists():
        n += 1
        candidate = parent / f"{stem}.{n}"
    return candidate


def _refuse(
    paths: SyncPaths,
    ref: ExtractRef,
    report: FileReport,
    reason: str,
    rows: pd.DataFrame | None = None,
    validation: ValidationResult | None = None,
) -> FileReport:
    """Move the whole extract and its manifest, intact, to quarantine with the reason."""
    report.status, report.reason = "refused", reason
    dest = _free_folder(paths.quarantine / ref.folder, Path(ref.file_name).stem)
    _move_pair(paths.landing, ref, dest)
    record = {"file": ref.file_name, "reason": reason}
    if report.sha256:
        record["sha256"] = report.sha256
    (dest / "reason.json").write_text(json.dumps(record, indent=2) + "\n", "utf-8")
    _write_feedback(paths, report, rows, validation)
    return report


def _set_aside_rows(
    paths: SyncPaths, ref: ExtractRef, report: FileReport, data: bytes, refused: dict[int, str]
) -> Path:
    """Keep the refused rows of an accepted file, byte for byte, with their row numbers and rules.

    Writes quarantine/<council>/<file stem>/rejected_rows.csv (the header line and each refused
    record's original lines) and reason.json. A retry of the same file reuses its folder; any
    other earlier folder is never overwritten.
    """
    parent, stem = paths.quarantine / ref.folder, Path(ref.file_name).stem
    dest, n = parent / stem, 1
    while dest.exists():
        try:
            earlier = json.loads((dest / "reason.json").read_text("utf-8"))
        except (OSError, ValueError):
            earlier = {}
        if earlier.get("sha256") == report.sha256 and earlier.get("kind") == "rows":
            break  # this file's rows, set aside by an earlier attempt of the same run
        n += 1
        dest = parent / f"{stem}.{n}"
    dest.mkdir(parents=True, exist_ok=True)
    original, spans = original_records(data, list(refused))
    (dest / "rejected_rows.csv").write_bytes(original)
    record = {
        "file": ref.file_name,
        "sha256": report.sha256,
        "kind": "rows",
        "reason": f"{len(refused)} row(s) broke critical rules; the rest of the file was accepted",
        "rows": [
            {"row_number": position + 2, "lines": list(span), "rules": rules.split(";")}
            for (position, rules), span in zip(refused.items(), spans, strict=True)
        ],
    }
    (dest / "reason.json").write_text(json.dumps(record, indent=2) + "\n", "utf-8")
    return dest


def process_extract(
    paths: SyncPaths, ref: ExtractRef, key: PseudonymKey, policy: Policy, run_id: str
) -> FileReport:
    """Take one extract from the drop zone to a staged file, or refuse it into quarantine.

    Args:
        paths: the deployment's folders.
        ref: the extract to process.
        key: the pseudonymisation key.
        policy: the minimisation policy.
        run_id: names this run's staging folder (safe characters only).

    Returns:
        A values-free report; `staged_path` is set when the file is ready to load.
    """
    report = FileReport(ref.folder, ref.file_name)
    try:
        extract = load_extract(paths.landing, ref)
    except ExtractRefused as refused:
        return _refuse(paths, ref, report, refused.reason)
    manifest, frame = extract.manifest, extract.frame
    report.file_kind, report.sha256 = manifest.file_kind, manifest.sha256
    report.extract_kind, report.sequence = manifest.extract_kind, manifest.sequence
    report.created_at = manifest.created_at
    report.counts["received"] = len(frame)
    council = manifest.council_code
    guard_reason = None
    if manifest.file_kind == "children":
        # Personal data in the wrong column: blank an optional column now; refusing the file for
        # a key column waits for validation, whose reason (e.g. shifted columns) comes first.
        guarded = guard_columns(frame)
        report.column_findings = guarded.to_report()
        frame, guard_reason = guarded.frame, guarded.refuse_reason

    if manifest.file_kind == "optout":
        validation = validate_optouts(frame)
    else:
        extract_date = pd.Timestamp(manifest.created_at).date()
        validation = validate_children(frame, council_code=council, extract_date=extract_date)
    report.rules = {o.rule: o.failed_rows for o in validation.outcomes if o.failed_rows}
    record_validation(paths.home, ref.folder, ref.file_name, validation.gx_result)  # gx/, no values
    if not validation.accepted:
        return _refuse(
            paths, ref, report, validation.reason or "refused by validation", frame, validation
        )
    if guard_reason:
        return _refuse(paths, ref, report, guard_reason)
    report.counts["rejected"] = int((~validation.row_ok).sum())
    good = frame.loc[validation.row_ok]
    duplicates: dict[int, str] = {}

    pseudonymised = assign_pseudonyms(good, council, key)
    pseudonymised = pseudonymised.loc[pseudonymised["child_pseudonym"].notna()]
    if manifest.file_kind == "optout":
        staged = (
            pseudonymised[["child_pseudonym", "key_version"]]
            .drop_duplicates()
            .reset_index(drop=True)
        )
    else:
        # The same child twice in one file (two local ids, one NHS number) is ambiguous.
        dup = pseudonymised["child_pseudonym"].duplicated(keep=False)
        if dup.any():
            report.counts["rejected"] += int(dup.sum())
            report.rules["duplicate_child_in_file"] = int(dup.sum())
            duplicates = dict.fromkeys(map(int, dup.index[dup]), "duplicate_child_in_file")
            pseudonymised = pseudonymised.loc[~dup]
        scan, _redacted = scan_notes(pseudonymised["notes"])
        report.counts["notes_with_pii"] = scan.rows_with_pii
        report.pii = dict(sorted(scan.entity_counts.items()))
        staged, shielded = strip_shielded(minimise(pseudonymised, policy, council), policy)
        report.counts["shielded"] = shielded
        guarded = [c for c in staged.columns if c not in ("child_pseudonym", "key_version")]
        findings = guard_index_values(staged, guarded)
        if findings:
            detail = "; ".join(
                f"{f.entity_type} in column {f.column} ({f.rows} rows)" for f in findings
            )
            return _refuse(
                paths,
                ref,
                report,
                "personal data found in values bound for the "
                f"index: {detail}; check the columns hold what the contract says",
            )
    refused_rows = feedback_refused_rows(validation, duplicates)
    if refused_rows:
        _set_aside_rows(paths, ref, report, extract.data, refused_rows)
    _write_feedback(paths, report, frame, validation, duplicates)
    out = paths.staging / run_id
    out.mkdir(parents=True, exist_ok=True)
    target = out / f"{ref.folder}__{ref.file_name}.parquet"
    staged.to_parquet(target, index=False)
    report.status, report.staged_path = "staged", str(target)
    return report


def _load_order(report: FileReport) -> tuple:
    # Opt-outs first, then children by council and sequence: the index does not depend on the
    # order, but counts in reports read more naturally this way.
    return (report.file_kind != "optout", report.folder, report.sequence, report.file_name)


def load_staged(paths: SyncPaths, reports: list[FileReport], store: IndexStore) -> list[FileReport]:
    """Load every staged file into the index, each in its own transaction, then archive it.

    Args:
        paths: the deployment's folders.
        reports: the reports of `process_extract`, in any order.
        store: the index.

    Returns:
        The reports, updated with load counts; refused ones unchanged.
    """
    for report in sorted(reports, key=_load_order):
        if report.status != "staged" or report.staged_path is None:
            continue
        rows = pd.read_parquet(report.staged_path)
        council = NATIONAL_FOLDER if report.folder == NATIONAL_FOLDER else report.folder
        outcome = store.load(
            StagedFile(
                council,
                report.file_name,
                report.sha256,
                report.file_kind,
                report.extract_kind,
                report.sequence,
                report.created_at,
                rows,
            )
        )
        ref = ExtractRef(report.folder, report.file_name, report.file_name + ".manifest.json")
        Path(report.staged_path).unlink(missing_ok=True)
        report.staged_path = None
        if outcome.status == "refused":
            _refuse(paths, ref, report, outcome.reason or "refused at load")
            continue
        report.status = outcome.status
        if outcome.status == "already_loaded":
            report.reason = (
                "this file (same sha256) was loaded before; nothing changed. Send new data "
                "as a new extract with the next sequence number"
            )
            _write_feedback(paths, report)
        if report.file_kind == "children":
            report.counts["opted_out"] = outcome.opted_out
            report.counts["loaded"] = outcome.loaded
            report.counts["shielded"] = outcome.shielded
        else:
            report.counts["opted_out"] = outcome.opted_out
        _move_pair(paths.landing, ref, paths.processed / report.folder / report.sha256[:16])
    return reports


def sync_drop_zone(
    paths: SyncPaths,
    key: PseudonymKey,
    policy: Policy,
    store: IndexStore,
    run_id: str | None = None,
) -> list[FileReport]:
    """Run the whole pipeline over the drop zone without Airflow (CLI, benchmarks, tests)."""
    run_id = run_id or "cli_" + dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%f")
    reports = [
        process_extract(paths, ref, key, policy, run_id) for ref in discover_extracts(paths.landing)
    ]
    reports = load_staged(paths, reports, store)
    write_run_summary(paths, run_id, reports)
    return reports


def write_run_summary(paths: SyncPaths, run_id: str, reports: list[FileReport]) -> Path:
    """Record a run's reports (counts, file names, reasons; no values) as runs/<run_id>.json."""
    paths.runs.mkdir(parents=True, exist_ok=True)
    target = paths.runs / f"{run_id}.json"
    payload = {"run_id": run_id, "files": [r.to_dict() for r in reports]}
    target.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n", "utf-8")
    return target


def read_latest_run(paths: SyncPaths) -> tuple[str, list[FileReport]]:
    """Return the newest run summary's id and reports.

    Raises:
        FileNotFoundError: no run has been recorded in this home yet.
    """
    runs = sorted(paths.runs.glob("*.json"), key=lambda p: p.stat().st_mtime)
    if not runs:
        raise FileNotFoundError(
            f"no run recorded in {paths.runs}: run the DAG or `registry-sync run` first"
        )
    payload = json.loads(runs[-1].read_text("utf-8"))
    return payload["run_id"], [FileReport.from_dict(r) for r in payload["files"]]


def summarise(reports: list[FileReport]) -> pd.DataFrame:
    """Per-council table of a run: files, refused files, children rows, opt-outs registered.

    Row counts are of children extracts; `optouts_registered` counts opt-out register rows.
    """
    columns = ["council", "files", "refused_files", *COUNT_KEYS, "optouts_registered"]
    rows = []
    for r in reports:
        children = r.file_kind != "optout"
        rows.append(
            {
                "council": r.folder,
                "files": 1,
                "refused_files": int(r.status == "refused"),
                **{k: r.counts.get(k, 0) if children else 0 for k in COUNT_KEYS},
                "optouts_registered": 0 if children else r.counts.get("opted_out", 0),
            }
        )
    if not rows:
        return pd.DataFrame(columns=columns)
    return pd.DataFrame(rows, columns=columns).groupby("council", as_index=False).sum()


def format_summary(reports: list[FileReport]) -> str:
    """Format the run's per-council table as text, with refusal reasons listed under it."""
    table = summarise(reports)
    lines = [table.to_string(index=False)] if len(table) else ["no extracts found"]
    for r in reports:
        if r.status == "refused":
            lines.append(f"refused {r.folder}/{r.file_name}: {r.reason}")
    return "\n".join(lines)


__all__ = [
    "KEY_COLUMNS",
    "FileReport",
    "SyncPaths",
    "format_summary",
    "load_staged",
    "process_extract",
    "read_latest_run",
    "summarise",
    "sync_drop_zone",
    "write_run_summary",
]
