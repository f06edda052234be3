"""GX results and Data Docs for the engineers: stored per extract, built offline, values-free.

`transforms.validate` hands over GX's validation result with every extract value removed
(`values_free_gx_result`); this module keeps it as `<home>/gx/results/<council>/<file>.json` and
renders GX Data Docs from the newest of them into `<home>/gx/data_docs/` (open `index.html`).
The docs are built by an ephemeral GX context whose only file-backed store is the local site, so
nothing needs a network or a `gx/` project folder. Each build renders the new extract's page and
the index; earlier pages stay as built until they fall out of the site's window of the newest
`INDEX_LIMIT` results. Builds from concurrent tasks take turns on a file lock.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

GX_FOLDER = "gx"
SITE_NAME = "local_site"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
_FALLBACK_RUN_TIME = "1970-01-01T00:00:00+00:00"
INDEX_LIMIT = 200  # the site shows the newest results only; see build_data_docs
log = logging.getLogger(__name__)


class DataDocsError(RuntimeError):
    """GX did not write an expected Data Docs page (GX logs rendering errors instead of raising)."""


@dataclass(frozen=True)
class GxPaths:
    """Where GX results and Data Docs live under a deployment's home folder."""

    home: Path

    @property
    def results(self) -> Path:
        """Values-free validation results, one JSON file per extract: results/<council>/."""
        return self.home / GX_FOLDER / "results"

    @property
    def data_docs(self) -> Path:
        """The Data Docs site; open index.html."""
        return self.home / GX_FOLDER / "data_docs"

    def result_file(self, council: str, file_name: str) -> Path:
        """Return the stored result's path for one extract."""
        return self.results / _safe(council) / f"{_safe(file_name)}.json"


def _safe(name: str) -> str:
    # Folder and file names come from the drop zone, already checked by ingest; this only keeps
    # GX's key rules (no '/' or '\\') and the path inside the results folder whatever happens.
    return _UNSAFE.sub("_", name).lstrip(".") or "_"


def store_gx_result(home: Path, council: str, file_name: str, gx_result: dict[str, Any]) -> Path:
    """Write one extract's values-free GX result as JSON, atomically (a retry overwrites it).

    Args:
        home: the deployment's home folder.
        council: the drop-zone folder (GSS code or "national").
        file_name: the extract's file name.
        gx_result: `ValidationResult.gx_result`, already values-free.

    Returns:
        The path written.
    """
    target = GxPaths(home).result_file(council, file_name)
    target.parent.mkdir(parents=True, exist_ok=True)
    record = {"council": council, "file": file_name, "gx_result": gx_result}
    partial = target.with_name(target.name + ".partial")
    partial.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n", "utf-8")
    os.replace(partial, target)
    return target


@contextmanager
def _locked(folder: Path) -> Iterator[None]:
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".build.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _result_key(council: str, file_name: str, gx_result: dict[str, Any]) -> Any:
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    run_time = (gx_result.get("meta") or {}).get("validation_time") or _FALLBACK_RUN_TIME
    return ValidationResultIdentifier(
        ExpectationSuiteIdentifier(str(gx_result.get("suite_name"))),
        RunIdentifier(run_name=_safe(council), run_time=run_time),
        batch_identifier=_safe(file_name),
    )


def _page_of(site: Path, key: Any) -> Path:
    suite, run_name, run_time, batch = key.to_tuple()
    return site / "validations" / suite / run_name / run_time / f"{batch}.html"


def _indexed_results(
    paths: GxPaths, targets: list[tuple[str, str]] | None, limit: int | None
) -> list[Path]:
    """Return the stored results the index lists: the newest `limit` (all if None), and ours."""
    stored = sorted(paths.results.glob("*/*.json"), key=lambda p: (p.stat().st_mtime, p))
    if limit is None:
        return stored
    chosen = stored[-limit:]
    for council, file_name in targets or ():
        target = paths.result_file(council, file_name)
        if target.is_file() and target not in chosen:
            chosen.append(target)
    return chosen


def build_data_docs(
    home: Path,
    council: str | None = None,
    file_name: str | None = None,
    index_limit: int | None = INDEX_LIMIT,
    pages: Sequence[tuple[str, str]] | None = None,
) -> Path:
    """Build the Data Docs site from stored results; render one extract's page, or all.

    Each build costs a few milliseconds per result in the site (GX reads every listed result back
    to index it), so the site is a window on the newest `index_limit` stored results: GX removes
    the pages of older ones. Their JSON stays in `gx/results/`, and a full rebuild
    (`build_data_docs(home, index_limit=None)`) renders every stored result again.

    Args:
        home: the deployment's home folder.
        council: the drop-zone folder of the extract just validated; only its page (and the
            index) is rendered. Leave it out to render every stored result's page again.
        file_name: that extract's file name.
        index_limit: how many of the newest stored results the site keeps; None for all.
        pages: several extracts' (council, file name) to render in one build (one build costs
            about a second whatever it renders, so a run renders its extracts together).

    Returns:
        The site's index.html.

    Raises:
        DataDocsError: GX did not write the index or the extract's page.
    """
    import great_expectations as gx
    from great_expectations.core import ExpectationSuiteValidationResult
    from great_expectations.data_context import EphemeralDataContext
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    from expectations.loader import load_rules, load_suite

    paths = GxPaths(home)
    site = paths.data_docs
    targets = list(pages) if pages else None
    if council is not None and file_name is not None:
        targets = [*(targets or []), (council, file_name)]
    with _locked(paths.home / GX_FOLDER):
        config = DataContextConfig(
            store_backend_defaults=InMemoryStoreBackendDefaults(),
            analytics_enabled=False,
            progress_bars=ProgressBarsConfig(globally=False),
            data_docs_sites={
                SITE_NAME: {
                    "class_name": "SiteBuilder",
                    "show_how_to_buttons": False,
                    "store_backend": {
                        "class_name": "TupleFilesystemStoreBackend",
                        "base_directory": str(site),
                    },
                    "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
                }
            },
        )
        # Through gx.get_context, which makes it GX's current project: suites and results
        # look that up, and a process that has not validated anything yet has none.
        context = gx.get_context(project_config=config, mode="ephemeral")
        assert isinstance(context, EphemeralDataContext)
        for suite_name, rules in load_rules().items():
            context.suites.add(load_suite(suite_name, rules))
        store = context.validation_results_store
        wanted = []
        for stored in _indexed_results(paths, targets, index_limit):
            record = json.loads(stored.read_text("utf-8"))
            result = record["gx_result"]
            key = _result_key(record["council"], record["file"], result)
            if targets is None or (record["council"], record["file"]) in targets:
                store.set(key, ExpectationSuiteValidationResult(**result))  # checked by GX
                wanted.append(key)
            else:
                # Already checked when it was rendered: put its JSON in as is. GX's own `set`
                # re-serialises through marshmallow, most of a build's time once results pile up.
                store.store_backend.set(store.key_to_tuple(key), json.dumps(result))
        if targets is not None and not wanted:
            raise DataDocsError(f"no stored GX result for {targets[0][0]}/{targets[0][1]}")
        context.build_data_docs(
            site_names=[SITE_NAME], resource_identifiers=wanted if targets is not None else None
        )
    index = site / "index.html"
    missing = [p for p in [index, *(_page_of(site, k) for k in wanted)] if not p.is_file()]
    if missing:
        raise DataDocsError(
            f"GX did not write {len(missing)} Data Docs page(s), e.g. {missing[0]}; "
            "see the great_expectations log"
        )
    return index


def record_validation(
    home: Path, council: str, file_name: str, gx_result: dict[str, Any], build: bool = True
) -> Path | None:
    """Store one extract's values-free GX result and render its Data Docs page and the index.

    With `build` False only the result is stored; `build_data_docs(home, pages=...)` renders
    the pages of several extracts later, in one build.

    Data Docs are for the engineers: a rendering failure is logged (without values) and the
    extract goes on; the stored JSON result is written first either way.

    Returns:
        The site's index.html, or None when there was no result or the docs failed to build.
    """
    if not gx_result:
        return None
    stored = store_gx_result(home, council, file_name, gx_result)
    if not build:
        return stored
    try:
        return build_data_docs(home, council, file_name)
    except DataDocsError as err:
        log.warning("Data Docs not built for %s/%s: %s", council, file_name, err)
        return None
