"""Feedback for councils: one report per extract, as CSV for systems and HTML for people.

The pipeline's outbox and `registry-sync check-extract` render the same `Feedback`. A report is
about one council's own file and holds verdicts, counts, rule names, fixes and row numbers; the
only values it shows are that council's own local child ids of refused rows. Every cell is
neutralised for spreadsheets (no formulas) and every HTML string is escaped.
"""

from __future__ import annotations

import csv
import html
import io
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from transforms.validate import COLUMNS_RULE, CRITICAL, ValidationResult

ACCEPTED, REFUSED, ALREADY_LOADED = "accepted", "refused", "already loaded"
NOT_PICKED_UP = "not picked up"
ROW_LIMIT = 200  # rows shown in the HTML and text reports; the CSV lists every refused row
MAX_SHOWN_ID_CHARS = 64  # a longer "local id" is not an id: it is not echoed back

# Rules the pipeline applies after the GX suite (rows refused once pseudonymised):
# name -> (column, severity, fix).
PIPELINE_RULES: dict[str, tuple[str, str, str]] = {
    "duplicate_child_in_file": (
        "nhs_number",
        CRITICAL,
        "Send one row per child: two or more local ids in the file carry the same NHS number.",
    ),
}
CSV_HEADER = (
    "section",
    "rule",
    "column",
    "severity",
    "rows",
    "row_number",
    "local_child_id",
    "how_to_fix",
)


@dataclass(frozen=True)
class RuleLine:
    """How many rows broke one rule on one column, and the fix sentence."""

    rule: str
    column: str
    severity: str
    rows: int
    fix: str


@dataclass(frozen=True)
class RowLine:
    """One refused row: its number as a spreadsheet shows it (header = 1) and its rules."""

    row_number: int
    local_child_id: str
    rules: tuple[str, ...]


@dataclass(frozen=True)
class Feedback:
    """The report on one extract, independent of how it is rendered."""

    folder: str
    file_name: str
    verdict: str  # accepted | refused | already loaded | not picked up
    reason: str
    received: int
    refused_rows: int
    rules: tuple[RuleLine, ...] = ()
    rows: tuple[RowLine, ...] = ()

    @property
    def accepted_rows(self) -> int:
        """Rows that pass (or passed) the row rules; none load when the file is refused."""
        return self.received - self.refused_rows


def shown_id(value: object) -> str:
    """Return a local child id fit to show back to its council, or a placeholder.

    A cell too long or holding control characters is not an id (a shifted column, say), so it
    is not echoed.
    """
    text = "" if value is None or value is pd.NA else str(value)
    if not text:
        return ""
    if len(text) > MAX_SHOWN_ID_CHARS or not text.isprintable():
        return "(not shown)"
    return text


def build_feedback(
    folder: str,
    file_name: str,
    verdict: str,
    reason: str | None,
    *,
    received: int = 0,
    frame: pd.DataFrame | None = None,
    validation: ValidationResult | None = None,
    extra_refused: Mapping[int, str] | None = None,
) -> Feedback:
    """Build the report on one extract.

    Args:
        folder: the council folder (GSS code) the file came from.
        file_name: the extract's file name.
        verdict: one of ACCEPTED, REFUSED, ALREADY_LOADED, NOT_PICKED_UP.
        reason: why (for a refusal: what to fix); None for a plain acceptance.
        received: data rows in the file (when it could be read).
        frame: the rows as read, for the local ids of refused rows.
        validation: the GX verdicts, for the counts per rule and per row.
        extra_refused: rows refused after validation, by position, with the pipeline rule.

    Returns:
        The values-free report (local ids of refused rows apart).
    """
    refused = refused_rows(validation, extra_refused)
    rules: list[RuleLine] = []
    if validation is not None:
        rules += [
            RuleLine(o.rule, o.column or "", o.severity, o.failed_rows, o.fix)
            for o in validation.outcomes
            if o.failed_rows
        ]
    for rule in dict.fromkeys((extra_refused or {}).values()):
        column, severity, fix = PIPELINE_RULES[rule]
        count = sum(1 for r in (extra_refused or {}).values() if r == rule)
        rules.append(RuleLine(rule, column, severity, count, fix))
    ids = None
    if frame is not None and "local_child_id" in frame:
        # Plain lists, not Series.get or iteration: pandas' Arrow strings go value by value.
        ids = dict(zip(frame.index.tolist(), frame["local_child_id"].tolist(), strict=True))
    rows = tuple(
        RowLine(
            position + 2,
            shown_id(ids.get(position, "")) if ids is not None else "",
            tuple(rule_text.split(";")),
        )
        for position, rule_text in refused.items()
        if rule_text != COLUMNS_RULE  # every row "broke" it: the file-level reason says it all
    )
    return Feedback(
        folder=folder,
        file_name=file_name,
        verdict=verdict,
        reason=reason or verdict,
        received=received,
        refused_rows=len(refused),
        rules=tuple(rules),
        rows=rows,
    )


def refused_rows(
    validation: ValidationResult | None, extra_refused: Mapping[int, str] | None = None
) -> dict[int, str]:
    """Return the refused rows as {0-based position: ';'-joined rules}, in file order.

    Positions are the validated frame's index labels: the data row's place in the file, also
    when only a file's changed rows were validated.
    """
    refused: dict[int, str] = {}
    if validation is not None:
        rules = validation.row_rules.to_numpy()
        labels = validation.row_ok.index.to_numpy()
        refused = {
            int(labels[i]): str(rules[i]) for i in (~validation.row_ok.to_numpy()).nonzero()[0]
        }
    for position, rule in (extra_refused or {}).items():
        refused[int(position)] = ";".join(filter(None, [refused.get(int(position), ""), rule]))
    return dict(sorted(refused.items()))


# --- rendering -----------------------------------------------------------------------------------


def spreadsheet_safe(value: object) -> str:
    """Return a cell a spreadsheet shows as text: a leading = + - @ tab or CR gets a quote."""
    text = str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def feedback_csv(feedback: Feedback) -> str:
    """Render the report as CSV: a file line, a line per rule, a line per refused row."""
    records: list[tuple[object, ...]] = [
        CSV_HEADER,
        ("file", feedback.verdict, "", "", feedback.received, "", "", feedback.reason),
    ]
    records += [
        ("rule", r.rule, r.column, r.severity, r.rows, "", "", r.fix) for r in feedback.rules
    ]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerows([spreadsheet_safe(c) for c in record] for record in records)
    # A line per refused row: only the rule names and the council's local id are text; the
    # rest are constants and numbers, which need no guard (thousands of rows, on every run).
    writer.writerows(
        (
            "row",
            spreadsheet_safe(";".join(r.rules)),
            "",
            CRITICAL,
            1,
            r.row_number,
            spreadsheet_safe(r.local_child_id),
            "",
        )
        for r in feedback.rows
    )
    return buf.getvalue()


def _counts_sentence(feedback: Feedback) -> str:
    if feedback.verdict == REFUSED and not feedback.received:
        return "No rows were read: the whole file was refused."
    loads = "would have passed" if feedback.verdict == REFUSED else "passed"
    return (
        f"Rows received: {feedback.received}; {loads} the row rules: {feedback.accepted_rows}; "
        f"refused: {feedback.refused_rows}."
    )


def format_text(feedback: Feedback, limit: int = ROW_LIMIT) -> str:
    """Render the report as plain text (the pre-flight check prints this)."""
    lines = [
        f"Feedback on {feedback.folder}/{feedback.file_name}",
        f"Verdict: {feedback.verdict.upper()}",
        f"Reason: {feedback.reason}",
        _counts_sentence(feedback),
    ]
    if feedback.rules:
        lines.append("Rules broken (severity, rule, column, rows, how to fix):")
        lines += [
            f"  {r.severity:8} {r.rule} ({r.column or 'file'}): {r.rows} row(s). {r.fix}"
            for r in feedback.rules
        ]
    if feedback.rows:
        lines.append("Refused rows (row number as a spreadsheet shows it, header = row 1):")
        lines += [
            f"  row {r.row_number}  local id {r.local_child_id or '(blank)'}  {', '.join(r.rules)}"
            for r in feedback.rows[:limit]
        ]
        if len(feedback.rows) > limit:
            lines.append(f"  ... and {len(feedback.rows) - limit} more: the CSV report lists all")
    return "\n".join(lines)


_STYLE = (
    "body{font-family:sans-serif;max-width:60em;margin:2em auto;color:#222}"
    "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #999;padding:.3em .6em;"
    "text-align:left;vertical-align:top}.refused{color:#a00}.accepted{color:#060}"
)


def format_html(feedback: Feedback, limit: int = ROW_LIMIT) -> str:
    """Render the report as a self-contained HTML page; every string is escaped."""

    def e(value: object) -> str:
        return html.escape(str(value), quote=True)

    def table(head: tuple[str, ...], body: list[tuple[object, ...]]) -> list[str]:
        out = ["<table>", "<tr>" + "".join(f"<th>{e(h)}</th>" for h in head) + "</tr>"]
        out += ["<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for row in body]
        return [*out, "</table>"]

    verdict_class = "accepted" if feedback.verdict == ACCEPTED else "refused"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta http-equiv="Content-Security-Policy" '
        "content=\"default-src 'none'; style-src 'unsafe-inline'\">",
        f"<title>Feedback on {e(feedback.file_name)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>Feedback on {e(feedback.folder)}/{e(feedback.file_name)}</h1>",
        f'<p>Verdict: <strong class="{verdict_class}">{e(feedback.verdict.upper())}</strong></p>',
        f"<p>Reason: {e(feedback.reason)}</p>",
        f"<p>{e(_counts_sentence(feedback))}</p>",
    ]
    if feedback.rules:
        parts.append("<h2>Rules broken</h2>")
        parts += table(
            ("severity", "rule", "column", "rows", "how to fix"),
            [(r.severity, r.rule, r.column or "file", r.rows, r.fix) for r in feedback.rules],
        )
    if feedback.rows:
        parts.append("<h2>Refused rows</h2>")
        parts.append("<p>Row numbers are as a spreadsheet shows them: the header is row 1.</p>")
        parts += table(
            ("row", "local child id", "rules broken"),
            [
                (r.row_number, r.local_child_id or "(blank)", ", ".join(r.rules))
                for r in feedback.rows[:limit]
            ],
        )
        if len(feedback.rows) > limit:
            parts.append(
                f"<p>... and {len(feedback.rows) - limit} more: the CSV report lists all.</p>"
            )
    parts.append(
        "<p>What each rule means and how to fix it: docs/for-councils.md. Check a file before "
        "sending it with <code>registry-sync check-extract FILE --council CODE</code>.</p>"
    )
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def write_feedback(outbox: Path, feedback: Feedback) -> tuple[Path, Path]:
    """Write outbox/<council>/<file>.feedback.csv and .feedback.html; return both paths."""
    folder = outbox / feedback.folder
    folder.mkdir(parents=True, exist_ok=True)
    csv_path = folder / f"{feedback.file_name}.feedback.csv"
    html_path = folder / f"{feedback.file_name}.feedback.html"
    csv_path.write_text(feedback_csv(feedback), "utf-8")
    html_path.write_text(format_html(feedback), "utf-8")
    return csv_path, html_path
