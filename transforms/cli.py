"""`registry-sync`: the pipeline from the command line, without Airflow.

Configuration is read here, once: REGISTRY_SYNC_HOME (default ./data) holds the drop zone and the
run's folders; REGISTRY_SYNC_INDEX_URL (default sqlite:///<home>/index.sqlite) is the index; the key
comes from REGISTRY_SYNC_KEY or REGISTRY_SYNC_KEY_FILE. Errors go to stderr with exit code 2.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from pathlib import Path

from transforms.settings import home_from_environment, index_url_for


def _home(args: argparse.Namespace) -> Path:
    return home_from_environment(args.home)


class UsageError(Exception):
    """A problem the user can fix; printed without a traceback."""


def cmd_synth(args: argparse.Namespace) -> int:
    """Write a synthetic population (day 0, `--days` more) into the drop zone, truth beside it."""
    from synthetic_data.councils import COUNCILS
    from synthetic_data.population import PopulationConfig
    from synthetic_data.progress import council_progress, wants_progress
    from synthetic_data.writer import write_days

    home = _home(args)
    out = Path(args.out) if args.out else home / "landing"
    truth = Path(args.truth) if args.truth else home / "truth"
    if truth.resolve().is_relative_to(out.resolve()):
        raise UsageError(
            "--truth must be outside the drop zone (--out): the ground truth holds "
            "the raw identifiers"
        )
    if args.days < 0:
        raise UsageError(f"--days must be 0 or more, not {args.days}")
    councils = len(COUNCILS) if args.councils == "all" else args.councils
    try:
        config = PopulationConfig(
            children=args.children,
            councils=int(councils),
            seed=args.seed,
            reference_date=dt.date.fromisoformat(args.day),
            defect_rate=args.defect_rate,
            missing_nhs_rate=args.missing_nhs_rate,
            sizes=args.sizes,
            nhs_range=args.nhs_range,
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    steps = config.councils * (args.days + 1)
    with council_progress(steps, wants_progress(args.progress)) as progress:
        try:
            summaries = write_days(config, args.days, out, truth, progress=progress)
        except ValueError as exc:  # e.g. births run out of test NHS numbers: say what to change
            raise UsageError(str(exc)) from exc
    for summary in summaries:
        if len(summaries) > 1:
            print(f"\n{summary.reference_date} (sequence {summary.sequence})")
        print(summary)
    print(f"extracts in {out}, ground truth in {truth}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    """Sync the whole drop zone into the index and print the per-council table."""
    from transforms.keys import key_from_environment
    from transforms.load import IndexStore
    from transforms.pipeline import SyncPaths, default_workers, format_summary, sync_drop_zone
    from transforms.policy import load_policy

    home = _home(args)
    key = key_from_environment()
    policy = load_policy()
    store = IndexStore.from_url(index_url_for(home, args.index_url), policy)
    workers = args.workers or default_workers()
    reports = sync_drop_zone(SyncPaths(home), key, policy, store, workers=workers)
    print(format_summary(reports))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    """Print the latest run's per-council table and where its artefacts are."""
    import sqlalchemy as sa

    from transforms.pipeline import SyncPaths, format_summary, read_latest_run

    paths = SyncPaths(_home(args))
    run_id, reports = read_latest_run(paths)
    print(f"run {run_id}")
    print(format_summary(reports))
    url = sa.make_url(index_url_for(paths.home, None)).render_as_string(hide_password=True)
    print(f"index: {url}")
    print(f"feedback for councils: {paths.outbox}   refused files: {paths.quarantine}")
    return 0


def _open_store(args: argparse.Namespace):
    from transforms.load import IndexStore
    from transforms.policy import load_policy

    return IndexStore.from_url(
        index_url_for(_home(args), getattr(args, "index_url", None)), load_policy()
    )


def cmd_lookup(args: argparse.Namespace) -> int:
    """Show what a practitioner would see for one NHS number; the look-up is logged."""
    import json

    from transforms.keys import key_from_environment
    from transforms.lookup import LookupRefused, lookup_child

    try:
        answer = lookup_child(
            _open_store(args), key_from_environment(), args.nhs_number, args.reason
        )
    except LookupRefused as refused:
        raise UsageError(str(refused)) from None
    if answer["result"] == "found":
        print(json.dumps(answer["child"], indent=2, sort_keys=True, default=str))
    elif answer["result"] == "shielded":
        print(answer["message"])
    else:
        print("not found")
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    """Print the audit ledger: every load, refusal and suppression with counts, no identities."""
    from transforms.lookup import audit_entries

    for entry in audit_entries(_open_store(args)):
        counts = " ".join(
            f"{k}={v}" for k, v in entry.items() if k not in ("at", "event", "council")
        )
        print(f"{entry['at']}  {entry['event']:<16} {entry['council'] or '':<9}  {counts}")
    return 0


def _child_pseudonym(args: argparse.Namespace, key) -> str:
    import pandas as pd

    from transforms.pseudonymise import pseudonymise_local_ids, pseudonymise_nhs_numbers

    if args.nhs_number:
        value = pseudonymise_nhs_numbers(pd.Series([args.nhs_number], dtype="string"), key)[0]
        if pd.isna(value):
            raise UsageError("that is not a valid NHS number (10 digits, Modulus 11)")
        return str(value)
    if args.local_id and args.local_council:
        ids = pd.Series([args.local_id], dtype="string")
        return str(pseudonymise_local_ids(args.local_council, ids, key)[0])
    raise UsageError("name the child with --nhs-number, or --local-id with --local-council")


def cmd_unshield(args: argparse.Namespace) -> int:
    """Lift one council's shield from a child (audited); other councils' shields stay."""
    from transforms.keys import key_from_environment

    store = _open_store(args)
    try:
        store.unshield(_child_pseudonym(args, key_from_environment()), args.council)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    print(f"shield of council {args.council} lifted; recorded in the audit ledger")
    return 0


def cmd_withdraw_optout(args: argparse.Namespace) -> int:
    """Withdraw one opt-out (audited); the child returns with the council's next extract."""
    from transforms.keys import key_from_environment

    store = _open_store(args)
    try:
        store.withdraw_optout(_child_pseudonym(args, key_from_environment()), args.scope)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    print(f"opt-out ({args.scope}) withdrawn; recorded in the audit ledger")
    return 0


def cmd_check_extract(args: argparse.Namespace) -> int:
    """Pre-flight check of one extract, as the pipeline would check it; no index, no Airflow."""
    from transforms.preflight import check_extract

    verdict, text = check_extract(Path(args.file), council_code=args.council)
    print(text)
    return 0 if verdict else 1


def cmd_rotate_key(args: argparse.Namespace) -> int:
    """Re-key the index from the current key to the one in --new-key-file, in one transaction."""
    from transforms.keys import key_from_environment, key_from_file
    from transforms.pipeline import SyncPaths
    from transforms.rotation import RotationRefused, rotate_key

    paths = SyncPaths(_home(args))
    old_key = key_from_environment()
    new_key = key_from_file(Path(args.new_key_file), "--new-key-file")
    try:
        outcome = rotate_key(_open_store(args), paths.landing, paths.processed, old_key, new_key)
    except RotationRefused as refused:
        raise UsageError(str(refused)) from None
    if outcome.status == "already_rotated":
        print(f"the index is already under key version {outcome.new_version}; nothing to do")
    else:
        rows = ", ".join(f"{name} {n}" for name, n in outcome.rows.items())
        print(
            f"rotated key version {outcome.old_version} -> {outcome.new_version} from "
            f"{outcome.sources_read} source extract(s): {rows}; access log "
            f"{outcome.access_log_rekeyed} re-keyed, {outcome.access_log_retired} retired"
        )
    print(
        "now make the new key the key (REGISTRY_SYNC_KEY / REGISTRY_SYNC_KEY_FILE and the Airflow "
        "connection registry_sync_pseudonym_key) and destroy the old one; loads under the old "
        "key are refused until then"
    )
    return 0


def cmd_retention(args: argparse.Namespace) -> int:
    """Archive children who turn 18 (25 for care leavers) and purge archives 6 years on."""
    from transforms.retention import apply_retention

    try:
        today = dt.date.fromisoformat(args.today) if args.today else dt.datetime.now(dt.UTC).date()
    except ValueError:
        raise UsageError(f"--today must be a date YYYY-MM-DD, not {args.today!r}") from None
    outcome = apply_retention(_open_store(args), today)
    print(" ".join(f"{k}={v}" for k, v in outcome.to_dict().items()))
    return 0


def cmd_audit_leaks(args: argparse.Namespace) -> int:
    """Search every artefact a run left behind for the ground truth's raw identifiers.

    Prints counts per artefact and entity type, never a value; exit 1 on any leak or unreadable
    artefact, 0 when clean.
    """
    import time

    import sqlalchemy as sa

    from transforms.leaks import audit_leaks, collect_artefacts, read_truth

    started = time.perf_counter()
    home = Path(args.audit_home) if args.audit_home else _home(args)
    airflow_home = args.airflow_home or os.environ.get("AIRFLOW_HOME")
    truth_dir = Path(args.truth)
    truth = read_truth(truth_dir)
    try:
        artefacts = collect_artefacts(
            home,
            Path(airflow_home) if airflow_home else None,
            index_url_for(home, args.index_url),
            extra=[Path(p) for p in args.extra],
            exclude=[truth_dir],
        )
    except sa.exc.SQLAlchemyError as exc:
        raise UsageError(
            f"cannot read the index ({type(exc).__name__}); check --index-url"
        ) from None
    report = audit_leaks(artefacts, truth, presidio=not args.no_presidio)
    print(report.format())
    if not airflow_home:
        print("note: no --airflow-home and no AIRFLOW_HOME: Airflow's database and logs not read")
    print(f"audit took {time.perf_counter() - started:.1f} s")
    return 0 if report.clean else 1


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser for every sub-command."""
    parser = argparse.ArgumentParser(prog="registry-sync", description=__doc__.splitlines()[0])
    parser.add_argument("--home", help="folder holding landing/, outbox/ etc. (default ./data)")
    sub = parser.add_subparsers(dest="command", required=True)

    synth = sub.add_parser("synth", help="make a synthetic population in the drop zone")
    synth.add_argument("--children", type=int, default=3000)
    synth.add_argument(
        "--councils",
        type=lambda v: v if v == "all" else int(v),
        default=3,
        help="how many councils, in the order of synthetic_data.councils.COUNCILS, or 'all' (153)",
    )
    synth.add_argument(
        "--sizes",
        choices=("equal", "real"),
        default="equal",
        help="split children equally, or in proportion to each council's real size",
    )
    synth.add_argument(
        "--nhs-range",
        choices=("auto", "test", "extended"),
        default="auto",
        help="NHS numbers from the 999 test range; 'auto' adds synthetic 986-998 numbers only "
        "when the population outgrows it (default auto)",
    )
    synth.add_argument("--seed", type=int, default=1)
    synth.add_argument(
        "--day",
        default="2026-11-25",
        help="the population's reference date, YYYY-MM-DD (never today's clock)",
    )
    synth.add_argument("--out", help="drop zone to write to (default <home>/landing)")
    synth.add_argument("--truth", help="ground-truth folder, outside the drop zone")
    synth.add_argument(
        "--days",
        type=int,
        default=0,
        help="also write this many following days (births, moves, deaths, opt-outs, shields...) "
        "as the next sequences (default 0)",
    )
    synth.add_argument("--defect-rate", type=float, default=0.003, help="per defect kind and row")
    synth.add_argument("--missing-nhs-rate", type=float, default=0.03)
    synth.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress bar on stderr (default: only when stderr is a terminal)",
    )
    synth.set_defaults(func=cmd_synth)

    run = sub.add_parser("run", help="sync the drop zone into the index without Airflow")
    run.add_argument("--index-url", help="SQLAlchemy URL of the index")
    run.add_argument(
        "--workers",
        type=int,
        help="files processed at once, in forked processes (default: one per core, at most 4)",
    )
    run.set_defaults(func=cmd_run)

    report = sub.add_parser("report", help="print the latest run's per-council table")
    report.set_defaults(func=cmd_report)

    lookup = sub.add_parser("lookup", help="what a practitioner sees for one NHS number")
    lookup.add_argument("--nhs-number", required=True)
    lookup.add_argument("--reason", required=True, help="why you ask (kept in the access log)")
    lookup.add_argument("--index-url", help="SQLAlchemy URL of the index")
    lookup.set_defaults(func=cmd_lookup)

    audit = sub.add_parser("audit", help="print the audit ledger (counts, never identities)")
    audit.add_argument("--index-url", help="SQLAlchemy URL of the index")
    audit.set_defaults(func=cmd_audit)

    for name, func, helptext in (
        ("unshield", cmd_unshield, "lift one council's shield from a child (audited)"),
        ("withdraw-optout", cmd_withdraw_optout, "withdraw one opt-out (audited)"),
    ):
        explicit = sub.add_parser(name, help=helptext)
        explicit.add_argument("--nhs-number")
        explicit.add_argument("--local-id", help="for a child without an NHS number")
        explicit.add_argument("--local-council", help="the council whose local id it is")
        explicit.add_argument("--index-url", help="SQLAlchemy URL of the index")
        if name == "unshield":
            explicit.add_argument("--council", required=True, help="the council that shielded")
        else:
            explicit.add_argument(
                "--scope", required=True, help='the register: a council GSS code or "national"'
            )
        explicit.set_defaults(func=func)

    check = sub.add_parser("check-extract", help="a council's pre-flight check of one extract")
    check.add_argument("file", help="the extract CSV; its manifest is read if it is beside it")
    check.add_argument("--council", help="GSS code (default: from the manifest or the folder)")
    check.set_defaults(func=cmd_check_extract)

    leaks = sub.add_parser(
        "audit-leaks", help="search every artefact of a run for the ground truth's identifiers"
    )
    leaks.add_argument("--truth", required=True, help="ground-truth folder (or Parquet file)")
    leaks.add_argument("--home", dest="audit_home", help="same as the top-level --home")
    leaks.add_argument("--airflow-home", help="AIRFLOW_HOME to read (default: the environment's)")
    leaks.add_argument("--index-url", help="SQLAlchemy URL of the index")
    leaks.add_argument(
        "--extra",
        nargs="+",
        action="extend",
        default=[],
        metavar="PATH",
        help="more files or folders to scan, e.g. bench/results",
    )
    leaks.add_argument(
        "--no-presidio", action="store_true", help="skip the Presidio scan of text artefacts"
    )
    leaks.set_defaults(func=cmd_audit_leaks)

    rotate = sub.add_parser(
        "rotate-key", help="re-key every pseudonym in the index to a new key (one transaction)"
    )
    rotate.add_argument(
        "--new-key-file", required=True, help="file holding the new key as hex, outside the repo"
    )
    rotate.add_argument("--index-url", help="SQLAlchemy URL of the index")
    rotate.set_defaults(func=cmd_rotate_key)

    retention = sub.add_parser(
        "retention", help="archive children at 18 (25 for care leavers), purge 6 years later"
    )
    retention.add_argument("--today", help="the run's date, YYYY-MM-DD (default: today, UTC)")
    retention.add_argument("--index-url", help="SQLAlchemy URL of the index")
    retention.set_defaults(func=cmd_retention)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `registry-sync` command."""
    args = build_parser().parse_args(argv)
    from transforms.keys import KeyMissing
    from transforms.policy import PolicyError

    try:
        return int(args.func(args))
    except (UsageError, KeyMissing, PolicyError, FileNotFoundError) as exc:
        print(f"registry-sync {args.command}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
