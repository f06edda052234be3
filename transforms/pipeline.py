"""The sync pipeline: the phases in order, shared by the DAG, the CLI, the benchmarks and the tests.

`process_extract` takes one extract from the drop zone to a staged file of minimised,
pseudonymised rows (or refuses it into quarantine); `load_staged` applies staged files to the
index. Only these two touch the file system; the phases they call are pure functions of frames.
Reports carry counts, file names and rule names, never a value from an extract.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gc
import json
import logging
import multiprocessing as mp
import os
import shutil
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from transforms.changes import (
    ChangePlan,
    Lines,
    digests_in,
    plan_changes,
    sorted_unique,
    split_lines,
    subset_bytes,
    verdict_fingerprint,
)
from transforms.column_guard import guard_columns
from transforms.contract import CHILDREN_COLUMNS, MANIFEST_SUFFIX, NATIONAL_FOLDER, Manifest
from transforms.datadocs import DataDocsError, build_data_docs, record_validation
from transforms.feedback import ACCEPTED, ALREADY_LOADED, REFUSED, build_feedback, write_feedback
from transforms.feedback import refused_rows as feedback_refused_rows
from transforms.ingest import (
    ExtractRef,
    ExtractRefused,
    discover_extracts,
    original_records,
    parse_csv,
    parse_rows,
    read_verified,
)
from transforms.load import (
    ARCHIVED_LINE,
    OPTED_OUT_LINE,
    ChangedUnderneath,
    IndexStore,
    StagedFile,
)
from transforms.minimise import KEY_COLUMNS, minimise
from transforms.pii import guard_index_values, scan_notes
from transforms.policy import Policy
from transforms.pseudonymise import PseudonymKey, assign_pseudonyms
from transforms.suppress import strip_shielded
from transforms.validate import (
    ValidationResult,
    carry_refusals,
    dates_of_birth_out_of_range,
    validate_children,
    validate_optouts,
)

log = logging.getLogger(__name__)

COUNT_KEYS = (
    "received",
    "unchanged",
    "rejected",
    "opted_out",
    "shielded",
    "loaded",
    "archived",
    "local_pseudonyms",
    "notes_with_pii",
)


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
    status: str = "pending"  # staged | refused | loaded | already_loaded | deferred
    reason: str | None = None
    sha256: str = ""
    extract_kind: str = ""
    sequence: int = 0
    created_at: str = ""
    staged_path: str | None = None
    # Change-detected files: the digests of the council's rows to let go (Parquet beside the
    # staged rows) and the council's newest loaded file the lines were compared with.
    digests_path: str | None = None
    change_base: str | None = None
    refused_path: str | None = None  # refused lines to remember (digests and rule names)
    validated: bool = False  # a GX result was stored for it (its Data Docs page may be due)
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
    paths: SyncPaths,
    ref: ExtractRef,
    report: FileReport,
    data: bytes,
    refused: dict[int, str],
    lines: Lines | None = None,
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
    if lines is not None:  # one line a record: no need to parse the file again
        original = lines.newline.join([lines.header, *(lines.body[i] for i in refused)])
        original += lines.newline
        spans = [(i + 2, i + 2) for i in refused]
    else:
        original, spans = original_records(data, list(refused))
    (dest / "rejected_rows.csv").write_bytes(original)
    record = {
        "file": ref.file_name,
        "sha256": report.sha256,
        "kind": "rows",
        "reason": f"{len(refused)} row(s) broke critical rules; the rest of the file was accepted",
    }
    items = _row_items(refused, spans)
    (dest / "reason.json").write_text(_json_rows_per_line(record, items), "utf-8")
    return dest


def _row_items(refused: dict[int, str], spans: list[tuple[int, int]]) -> list[str]:
    """Each refused row as the compact JSON object `json.dumps` writes for it.

    Built by formatting: a file's rows break a handful of rule combinations, each encoded once,
    where a `json.dumps` call a row took most of a re-sync's set-aside (12,000 remembered rows).
    """
    encoded: dict[str, str] = {}
    items = []
    for (position, rules), (first, last) in zip(refused.items(), spans, strict=True):
        names = encoded.get(rules)
        if names is None:
            names = encoded[rules] = json.dumps(rules.split(";"))
        items.append(
            f'{{"row_number": {int(position) + 2}, "lines": [{int(first)}, {int(last)}], '
            f'"rules": {names}}}'
        )
    return items


def _json_rows_per_line(record: dict, items: list[str]) -> str:
    """Format `record` as indented JSON with a `rows` list of `items`, one compact object a line.

    `json.dumps(indent=...)` takes the pure-Python encoder: for the tens of thousands of refused
    rows of a large extract that is most of the time a set-aside takes.
    """
    head = json.dumps(record, indent=2)
    body = '"rows": [\n    ' + ",\n    ".join(items) + "\n  ]" if items else '"rows": []'
    return head[:-2] + ",\n  " + body + "\n}\n"


def _read_rows(
    paths: SyncPaths,
    ref: ExtractRef,
    key: PseudonymKey,
    store: IndexStore | None,
    policy: Policy,
) -> tuple[Manifest, bytes, pd.DataFrame, Lines | None, ChangePlan | None]:
    """Verify an extract and read its rows: all of them, or only those changed since last time.

    Raises:
        ExtractRefused: the file is refused (the reason comes from a full read of the file).
    """
    manifest, data = read_verified(paths.landing, ref)
    lines = None
    if manifest.file_kind == "children":
        lines = split_lines(data, key, verdict_fingerprint(policy))
    plan = _change_plan(paths, ref, manifest, lines, store)
    if plan is not None and lines is not None:
        try:
            frame = parse_csv(subset_bytes(lines, plan.changed), CHILDREN_COLUMNS)
        except ExtractRefused:
            pass  # the full read below says what is wrong in the whole file's line numbers
        else:
            frame.index = pd.Index(plan.changed, dtype="int64")
            return manifest, data, frame, lines, plan
    return manifest, data, parse_rows(data, manifest), lines, None


def _change_plan(
    paths: SyncPaths,
    ref: ExtractRef,
    manifest: Manifest,
    lines: Lines | None,
    store: IndexStore | None,
) -> ChangePlan | None:
    """Compare a children extract's lines with its council's contribution, when that is sound.

    None (read every line): lines are not records, their count differs from the manifest, there
    is no index to compare with, the council has no loaded extract yet, or another extract of the
    council waits too (each would be compared with the same earlier state).
    """
    if lines is None or len(lines) != manifest.row_count or store is None:
        return None
    if len(list((paths.landing / ref.folder).glob("children_*" + MANIFEST_SUFFIX))) != 1:
        return None
    previous, refused, base = store.council_digests(manifest.council_code)
    if base is None:
        return None
    extract_date = pd.Timestamp(manifest.created_at).date()
    return plan_changes(
        lines,
        previous,
        base,
        refused,
        snapshot=manifest.extract_kind == "snapshot",
        still_out_of_range=lambda fields: dates_of_birth_out_of_range(fields, extract_date),
    )


def process_extract(
    paths: SyncPaths,
    ref: ExtractRef,
    key: PseudonymKey,
    policy: Policy,
    run_id: str,
    store: IndexStore | None = None,
    data_docs: bool = True,
) -> FileReport:
    """Take one extract from the drop zone to a staged file, or refuse it into quarantine.

    Args:
        paths: the deployment's folders.
        ref: the extract to process.
        key: the pseudonymisation key.
        policy: the minimisation policy.
        run_id: names this run's staging folder (safe characters only).
        store: the index, read (never written) to find the lines of a children extract that
            the council's contribution already holds; None processes every line.
        data_docs: render the extract's Data Docs page now (False: the caller renders the
            pages of a whole run in one build, `render_data_docs`).

    Returns:
        A values-free report; `staged_path` is set when the file is ready to load.
    """
    report = FileReport(ref.folder, ref.file_name)
    try:
        manifest, data, frame, lines, plan = _read_rows(paths, ref, key, store, policy)
    except ExtractRefused as refused:
        return _refuse(paths, ref, report, refused.reason)
    report.file_kind, report.sha256 = manifest.file_kind, manifest.sha256
    report.extract_kind, report.sequence = manifest.extract_kind, manifest.sequence
    report.created_at = manifest.created_at
    report.counts["received"] = manifest.row_count
    council = manifest.council_code
    departed = plan.departed if plan is not None else None
    kept = plan.unchanged if plan is not None else np.zeros(0, dtype=np.int64)
    report.counts["unchanged"] = 0 if plan is None else len(plan.unchanged)
    carried = plan.refused_again if plan is not None else pd.Series([], dtype="str")
    # Unchanged lines of children opted out (the load checks they still are) or archived last
    # time: skipped, and remembered again. The other carried lines are refused again.
    kept_out = _skipped_lines(lines, plan)
    report.counts["opted_out"] = int((kept_out["rules"] == OPTED_OUT_LINE).sum())
    report.counts["archived"] = int((kept_out["rules"] == ARCHIVED_LINE).sum())
    carried = carried[~carried.isin([OPTED_OUT_LINE, ARCHIVED_LINE])]
    validation, guard_reason = None, None
    if plan is None or not frame.empty:
        if manifest.file_kind == "children":
            # Personal data in the wrong column: blank an optional column now; refusing the file
            # for a key column waits for validation, whose reason (e.g. shifted columns) is first.
            guarded = guard_columns(frame)
            report.column_findings = guarded.to_report()
            frame, guard_reason = guarded.frame, guarded.refuse_reason
        if manifest.file_kind == "optout":
            validation = validate_optouts(frame)
        else:
            validation = validate_children(
                frame,
                council_code=council,
                extract_date=pd.Timestamp(manifest.created_at).date(),
                file_rows=manifest.row_count if plan is not None else None,
            )
        # gx/ holds no values. Data Docs: rendered here, or by the caller for a whole run.
        record_validation(
            paths.home, ref.folder, ref.file_name, validation.gx_result, build=data_docs
        )
        report.validated = bool(validation.gx_result)
    shown = frame
    if len(carried):
        # Unchanged lines refused last time are refused again for the same rules, unvalidated.
        validation = carry_refusals(validation, carried, manifest.row_count)
        ids = [lines.body[i].split(b",", 1)[0].decode("utf-8", "replace") for i in carried.index]
        shown = pd.concat(
            [frame[["local_child_id"]], pd.DataFrame({"local_child_id": ids}, index=carried.index)]
        )
    if validation is None:
        # Nothing changed since the council's last extract: nothing to validate or scan.
        _write_feedback(paths, report)
        held = _held(lines, kept, None, manifest)
        return _stage(
            paths, report, run_id, _empty_staged(policy), plan, key, kept_out, departed, held
        )
    report.rules = {o.rule: o.failed_rows for o in validation.outcomes if o.failed_rows}
    if not validation.accepted:
        return _refuse(
            paths, ref, report, validation.reason or "refused by validation", shown, validation
        )
    if guard_reason:
        return _refuse(paths, ref, report, guard_reason)
    report.counts["rejected"] = int((~validation.row_ok).sum())
    good = frame.loc[validation.row_ok.reindex(frame.index, fill_value=False)]
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
        # The same child twice in one file (two local ids, one NHS number) is ambiguous, also
        # when one of the two lines is unchanged since the last extract.
        dup = pseudonymised["child_pseudonym"].duplicated(keep=False)
        if plan is not None and lines is not None and store is not None and len(plan.unchanged):
            # The council's rows of these children that an unchanged line of this file holds.
            rows = store.council_children(council, pseudonymised["child_pseudonym"].tolist())
            rows = rows.loc[rows["row_digest"].notna()].astype({"row_digest": "int64"})
            # Usually none: a changed child's row holds its old line's digest, which departed.
            # So the few departed digests are ruled out first, and only rows left over are
            # matched against the file's quarter-million unchanged lines.
            rows = rows.loc[~digests_in(rows["row_digest"].to_numpy(), plan.departed)]
            again = np.zeros(0, dtype=np.int64)
            if len(rows):
                unchanged_digests = lines.digests[plan.unchanged]
                rows = rows.loc[digests_in(rows["row_digest"].to_numpy(), unchanged_digests)]
                again = plan.unchanged[digests_in(unchanged_digests, rows["row_digest"].to_numpy())]
            dup |= pseudonymised["child_pseudonym"].isin(set(rows["child_pseudonym"]))
            duplicates.update(dict.fromkeys(map(int, again), "duplicate_child_in_file"))
            report.counts["rejected"] += len(again)
            report.counts["unchanged"] -= len(again)
            # Those lines' rows leave the index with the rest of the refused lines.
            departed = sorted_unique(np.concatenate((departed, rows["row_digest"].to_numpy())))
            if len(again):
                kept = kept[~digests_in(kept, again)]
        if dup.any():
            report.counts["rejected"] += int(dup.sum())
            report.rules["duplicate_child_in_file"] = int(dup.sum()) + len(duplicates)
            duplicates.update(dict.fromkeys(map(int, dup.index[dup]), "duplicate_child_in_file"))
            pseudonymised = pseudonymised.loc[~dup]
        if pseudonymised.empty:
            # No changed line to load (all unchanged or refused): nothing to scan or minimise,
            # and the analyzer is not even built.
            staged = _empty_staged(policy)
        else:
            scan, _redacted = scan_notes(pseudonymised["notes"])
            report.counts["notes_with_pii"] = scan.rows_with_pii
            report.pii = dict(sorted(scan.entity_counts.items()))
            # minimise renumbers rows: take each row's line digest while positions still hold.
            digests = None if lines is None else lines.digests[pseudonymised.index.to_numpy()]
            staged, shielded = strip_shielded(minimise(pseudonymised, policy, council), policy)
            report.counts["shielded"] = shielded
            unguarded = ("child_pseudonym", "key_version", "row_digest")
            guarded = [c for c in staged.columns if c not in unguarded]
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
            if digests is not None:
                staged["row_digest"] = digests
    refused_rows = feedback_refused_rows(validation, duplicates)
    if refused_rows:
        _set_aside_rows(paths, ref, report, data, refused_rows, lines)
    _write_feedback(paths, report, shown, validation, duplicates)
    remembered = None
    if lines is not None:
        remembered = pd.concat([_remembered_refusals(lines, refused_rows), kept_out])
    held = _held(lines, kept, staged, manifest)
    return _stage(paths, report, run_id, staged, plan, key, remembered, departed, held)


def _skipped_lines(lines: Lines | None, plan: ChangePlan | None) -> pd.DataFrame:
    """Unchanged lines skipped as opted out or archived: digest, rules and (opted out) child."""
    if plan is None or lines is None:
        return pd.DataFrame(
            {"row_digest": np.zeros(0, dtype="int64"), "rules": [], "child_pseudonym": []}
        )
    skipped = plan.refused_again[plan.refused_again.isin([OPTED_OUT_LINE, ARCHIVED_LINE])]
    at = skipped.index.to_numpy(dtype="int64")
    return pd.DataFrame(
        {
            "row_digest": lines.digests[at],
            "rules": skipped.to_numpy(dtype=object),
            "child_pseudonym": plan.refused_pseudonyms.loc[skipped.index].to_numpy(dtype=object),
        }
    )


def _remembered_refusals(lines: Lines, refused: dict[int, str]) -> pd.DataFrame:
    """Refused lines whose verdict holds while the line is unchanged: digest and rules."""
    never = {"duplicate_child_in_file"}  # depends on other lines' children, not known unread
    keep = [(p, r) for p, r in refused.items() if not never & set(r.split(";"))]
    return pd.DataFrame(
        {
            "row_digest": np.array([lines.digests[p] for p, _ in keep], dtype="int64"),
            "rules": [r for _, r in keep],
        }
    )


def _empty_staged(policy: Policy) -> pd.DataFrame:
    columns = [*KEY_COLUMNS, *policy.field_names, "row_digest"]
    return pd.DataFrame({c: pd.Series([], dtype="object") for c in columns})


def _held(
    lines: Lines | None, kept: np.ndarray, staged: pd.DataFrame | None, manifest: Manifest
) -> np.ndarray | None:
    """Return the digests of the rows a snapshot leaves its council holding, when known."""
    if lines is None or manifest.file_kind != "children" or manifest.extract_kind != "snapshot":
        return None
    parts = [lines.digests[kept]]
    if staged is not None and "row_digest" in staged.columns:
        parts.append(staged["row_digest"].dropna().to_numpy(dtype="int64"))
    return np.concatenate(parts)


def _stage(
    paths: SyncPaths,
    report: FileReport,
    run_id: str,
    staged: pd.DataFrame,
    plan: ChangePlan | None,
    key: PseudonymKey,
    remembered: pd.DataFrame | None = None,
    departed: np.ndarray | None = None,
    held: np.ndarray | None = None,
) -> FileReport:
    """Write the staged rows, and beside them what change detection needs at load.

    That is: the refused lines to remember (digests and rule names), and the line digests: of
    the council's rows to let go (`departed`, change-detected files) and of the rows the
    council holds once loaded (`held`). Digests are keyed: they hold no value.
    """
    out = paths.staging / run_id
    out.mkdir(parents=True, exist_ok=True)
    stem = f"{report.folder}__{report.file_name}"
    target = out / f"{stem}.parquet"
    staged.to_parquet(target, index=False)
    if remembered is not None:
        refused_path = out / f"{stem}.refused.parquet"
        remembered.to_parquet(refused_path, index=False)
        report.refused_path = str(refused_path)
    if departed is not None or held is not None:
        parts = [
            pd.DataFrame({"row_digest": np.asarray(d, dtype="int64"), "held": flag})
            for d, flag in ((departed, False), (held, True))
            if d is not None
        ]
        frame = pd.concat(parts, ignore_index=True)
        # One value for every row: written as a dictionary from codes, not a string a row.
        codes = np.zeros(len(frame), dtype=np.int8)
        frame["key_version"] = pd.Categorical.from_codes(codes, [key.version])
        path = out / f"{stem}.digests.parquet"
        # A million random 64-bit digests neither compress nor gain from statistics.
        frame.to_parquet(path, index=False, use_dictionary=["key_version"], write_statistics=False)
        report.digests_path = str(path)
        report.change_base = plan.base_sha256 if plan is not None else None
    report.status, report.staged_path = "staged", str(target)
    return report


def _load_order(report: FileReport) -> tuple:
    # Opt-outs first, then children by council and sequence: the index does not depend on the
    # order, but counts in reports read more naturally this way.
    return (report.file_kind != "optout", report.folder, report.sequence, report.file_name)


def _read_parquet(path: str) -> pa.Table:
    """Read a staged Parquet file whole, in one thread: the cores are busy with the workers.

    A plain file reader, not `pq.read_table`/`pd.read_parquet`, which go through the Arrow
    dataset layer: its import and set-up took about 30 ms at a run's first load (the loads are
    one at a time, a re-sync's critical path), and it reads no faster a file read whole.
    """
    with pq.ParquetFile(path) as parquet:
        return parquet.read(use_threads=False)


def _read_staged(path: str) -> pd.DataFrame:
    frame = _read_parquet(path).to_pandas()
    # Text as Python strings: the load matches pseudonyms against sets of thousands, which
    # pandas' Arrow-backed strings do value by value.
    text = [c for c, dtype in frame.dtypes.items() if isinstance(dtype, pd.StringDtype)]
    return frame.astype(dict.fromkeys(text, object)) if text else frame


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
        rows = _read_staged(report.staged_path)
        council = NATIONAL_FOLDER if report.folder == NATIONAL_FOLDER else report.folder
        departed, held, key_version = None, None, None
        if report.digests_path is not None:
            # Straight to arrays: a million digests need no DataFrame on the way.
            digests = _read_parquet(report.digests_path)
            flag = np.asarray(digests.column("held").to_numpy(), dtype=bool)
            row_digests = np.asarray(digests.column("row_digest").to_numpy(), dtype=np.int64)
            if report.change_base is not None:
                departed = row_digests[~flag]
                key_version = digests.column("key_version")[0].as_py() if len(digests) else None
            if flag.any() or report.change_base is None:
                held = row_digests[flag]
        refused_lines = None
        if report.refused_path is not None:
            refused_lines = _read_staged(report.refused_path)
        staged_file = StagedFile(
            council,
            report.file_name,
            report.sha256,
            report.file_kind,
            report.extract_kind,
            report.sequence,
            report.created_at,
            rows,
            key_version=key_version,
            departed=departed,
            held=held,
            unchanged=report.counts.get("unchanged", 0),
            base_sha256=report.change_base,
            refused_lines=refused_lines,
        )
        try:
            outcome = store.load(staged_file)
        except ChangedUnderneath:
            outcome = None
        ref = ExtractRef(report.folder, report.file_name, report.file_name + ".manifest.json")
        for staged_path in (report.staged_path, report.digests_path, report.refused_path):
            if staged_path:
                Path(staged_path).unlink(missing_ok=True)
        report.staged_path = report.digests_path = report.refused_path = None
        if outcome is None:
            # Left in the drop zone: processed again against the council's current state.
            report.status = "deferred"
            report.reason = (
                "another extract from this council loaded after this one was read; it is "
                "read again and loaded in order"
            )
            continue
        if outcome.status == "refused":
            _refuse(paths, ref, report, outcome.reason or "refused at load")
            continue
        report.status = outcome.status
        if outcome.status == "already_loaded":
            report.reason = (
                "this extract (same sha256 and sequence) was loaded before; nothing changed. "
                "Send new data as a new extract with the next sequence number"
            )
            _write_feedback(paths, report)
        if report.file_kind == "children":
            report.counts["opted_out"] = outcome.opted_out
            report.counts["loaded"] = outcome.loaded
            report.counts["shielded"] = outcome.shielded
            report.counts["unchanged"] = outcome.unchanged
            report.counts["archived"] = outcome.archived
            report.counts["local_pseudonyms"] = outcome.local_pseudonyms
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
    workers: int = 1,
) -> list[FileReport]:
    """Run the whole pipeline over the drop zone without Airflow (CLI, benchmarks, tests).

    Files are processed in load order (opt-outs first, then each council's files by sequence)
    and each is loaded as soon as it and every file before it are processed. With `workers` > 1
    the files are processed by that many forked worker processes, as the DAG's mapped tasks
    are, while this process loads; loads stay one at a time, in the same order, so the reports
    and the index are those of `workers=1`. A council with several children extracts waiting
    has each read in full, as in the DAG, where every file is read before any is loaded.
    """
    run_id = run_id or "cli_" + dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%f")
    refs = sorted(discover_extracts(paths.landing), key=lambda r: _ref_order(paths.landing, r))
    reports: list[FileReport] = []
    # The run's Data Docs pages are rendered once every file is processed (by a worker, while
    # this process loads the last files).
    for report in _processed(paths, refs, key, policy, run_id, store, workers):
        reports += load_staged(paths, [report], store)
    for _attempt in range(3):
        # A file read against a state another file of its council then changed: read it again.
        again = [r for r in reports if r.status == "deferred"]
        if not again:
            break
        redo = [
            process_extract(
                paths,
                ExtractRef(r.folder, r.file_name, r.file_name + MANIFEST_SUFFIX),
                key,
                policy,
                run_id,
                store,
            )
            for r in again
        ]
        redo = load_staged(paths, redo, store)
        reports = [r for r in reports if r.status != "deferred"] + redo
    write_run_summary(paths, run_id, reports)
    return reports


def default_workers() -> int:
    """How many files the CLI processes at once: one per core, at most four."""
    return max(1, min(os.cpu_count() or 1, 4))


def _ref_order(landing: Path, ref: ExtractRef) -> tuple:
    """`_load_order` before the file is read: the sequence from its manifest, when readable.

    A manifest that cannot be read sorts its file last; processing refuses it with the reason.
    """
    try:
        manifest = json.loads((landing / ref.folder / ref.manifest_name).read_bytes())
        sequence = int(manifest["sequence"])
    except (OSError, ValueError, TypeError, KeyError):
        sequence = None
    return (
        not ref.file_name.startswith("optout"),
        ref.folder,
        sequence is None,
        sequence or 0,
        ref.file_name,
    )


# Allocations between collections of the youngest generation, in a worker process.
WORKER_GC_THRESHOLD = 50_000
# Added to a worker process's niceness: the loads, one at a time in this process, are the run's
# critical path, and the workers need only stay ahead of them.
WORKER_NICENESS = 5
# What a forked worker process works with: set in the parent just before the pool forks, so
# the key, the policy and the index's engine are inherited, never pickled or sent.
_WORKER: tuple | None = None


def _processed(
    paths: SyncPaths,
    refs: list[ExtractRef],
    key: PseudonymKey,
    policy: Policy,
    run_id: str,
    store: IndexStore,
    workers: int,
) -> Iterator[FileReport]:
    """Yield the files' reports in `refs` order, processed here or by forked workers.

    Then render the run's Data Docs pages: here once the caller has taken every report, or by
    a worker as soon as every file is processed.
    """
    children = Counter(r.folder for r in refs if not r.file_name.startswith("optout"))
    compare = [children[r.folder] == 1 for r in refs]  # else each is compared with the same state
    if workers <= 1 or len(refs) <= 1 or "fork" not in mp.get_all_start_methods():
        reports = []
        for ref, compared in zip(refs, compare, strict=True):
            reports.append(
                process_extract(paths, ref, key, policy, run_id, store if compared else None, False)
            )
            yield reports[-1]
        render_data_docs(paths, reports)
        return
    preload()
    global _WORKER
    _WORKER = (paths, key, policy, run_id, store)
    try:
        with ProcessPoolExecutor(
            max_workers=min(workers, len(refs)),
            mp_context=mp.get_context("fork"),
            initializer=_start_worker,
        ) as pool:
            futures = [
                pool.submit(_process_in_worker, ref, compared)
                for ref, compared in zip(refs, compare, strict=True)
            ]
            docs = None
            for future in futures:
                report = future.result()
                if docs is None and all(f.done() for f in futures):
                    reports = [f.result() for f in futures]
                    docs = pool.submit(_in_worker, render_data_docs, paths, reports)
                yield report
            if docs is not None:
                docs.result()
    finally:
        _WORKER = None


def preload() -> None:
    """Import GX (with our expectations) and build the PII analyzer here (later calls: free).

    `sync_drop_zone` calls it before its workers fork: each worker would otherwise pay for
    them (GX's import alone takes seconds) the first time it validates or scans a changed line,
    and again at every run; forked, they share this process's. A run with no line to validate
    pays for them too, where one process would not. A long-lived caller (the benchmarks) calls
    it up front, as a scheduler's worker has its libraries loaded before a run starts.
    """
    import great_expectations  # noqa: F401

    import expectations.custom  # noqa: F401  (the suite's own GX expectation classes)
    from transforms.pii import build_analyzer

    build_analyzer()


def _start_worker() -> None:
    # The parent's pooled database connections must not be used across a fork.
    assert _WORKER is not None
    _WORKER[4].engine.dispose(close=False)
    # Everything inherited (GX, the analyzer's models, the parent's data) lives as long as the
    # worker: kept out of the collector's reach, a full collection no longer walks millions of
    # objects (measured: 0.3-0.45 s a worker at a 1%-changed re-sync of 1,000,000 children).
    gc.freeze()
    # A file's run allocates millions of short-lived objects (pandas, GX, Presidio) and frees
    # them by reference counting; at the default threshold (700) the young generation was
    # collected over a hundred times a file, 0.06-0.14 s of its CPU. Cycles still go, in fewer
    # and larger collections.
    gc.set_threshold(WORKER_GC_THRESHOLD, 10, 10)
    # Loads are one at a time, in order, in the parent; a file processed early waits for its
    # turn anyway. With as many workers as cores, a load shared a core with two workers busy on
    # later files and took half as long again (measured at a 1%-changed re-sync of 1,000,000
    # children: the run took 8-10% less time with the workers yielding to it).
    with contextlib.suppress(OSError):  # a platform that refuses it: slower, not wrong
        os.nice(WORKER_NICENESS)


def _process_in_worker(ref: ExtractRef, compared: bool) -> FileReport:
    assert _WORKER is not None
    paths, key, policy, run_id, store = _WORKER
    return _in_worker(
        process_extract, paths, ref, key, policy, run_id, store if compared else None, False
    )


class WorkerError(RuntimeError):
    """An error raised in a worker process, as its type name and message.

    The original cannot always cross back (some libraries' exceptions do not unpickle, which
    would break the whole pool); messages here are written to hold no value from an extract.
    """


def _in_worker(function: Callable[..., Any], *args: Any) -> Any:
    try:
        return function(*args)
    except Exception as exc:
        raise WorkerError(f"{type(exc).__name__}: {exc}") from None


def render_data_docs(paths: SyncPaths, reports: list[FileReport]) -> None:
    """Render the Data Docs pages of a run's validated extracts in one build (logged if it fails).

    The pages show no values (see transforms/datadocs.py); the engineers' site is refreshed
    once a run instead of once an extract.
    """
    pages = [(r.folder, r.file_name) for r in reports if r.validated]
    if not pages:
        return
    try:
        build_data_docs(paths.home, pages=pages)
    except DataDocsError as err:
        log.warning("Data Docs not built for this run: %s", err)


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
    "default_workers",
    "format_summary",
    "load_staged",
    "process_extract",
    "read_latest_run",
    "summarise",
    "sync_drop_zone",
    "write_run_summary",
]
