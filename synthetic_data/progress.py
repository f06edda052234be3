"""A progress bar for writing populations: on stderr, one step per council written.

Shown when stderr is a terminal or when asked for, so logs and pipes stay clean. It shows council
codes and row counts only, never a value from the population.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TextIO

from synthetic_data.writer import CouncilCounts

Progress = Callable[[CouncilCounts], None]


def wants_progress(asked: bool | None, stream: TextIO | None = None) -> bool:
    """Return whether to show progress: as `asked`, else only when `stream` is a terminal."""
    if asked is not None:
        return asked
    stream = stream or sys.stderr
    return bool(getattr(stream, "isatty", lambda: False)())


@contextmanager
def council_progress(
    councils: int, enabled: bool, stream: TextIO | None = None
) -> Iterator[Progress | None]:
    """Yield a callback for `write_population`/`write_days` that advances a bar, or None.

    Args:
        councils: how many councils will be written in all (councils times days).
        enabled: whether to show the bar at all (see `wants_progress`).
        stream: where the bar goes (default stderr).
    """
    if not enabled:
        yield None
        return
    from tqdm import tqdm

    rows = 0
    with tqdm(
        total=councils, unit="council", desc="synth", file=stream or sys.stderr, leave=True
    ) as bar:

        def step(counts: CouncilCounts) -> None:
            nonlocal rows
            rows += counts.rows
            bar.set_postfix_str(f"{counts.council_code}, {rows:,} rows", refresh=False)
            bar.update(1)

        yield step
