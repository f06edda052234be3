"""A load killed with SIGKILL mid-transaction leaves the index as it was; a retry completes it."""

import os
import signal
import subprocess
import sys
import textwrap
import time

from transforms.load import IndexStore

ROWS = 60_000

LOADER = textwrap.dedent("""
    import sys
    import pandas as pd
    import sqlalchemy as sa
    from transforms.load import IndexStore, StagedFile
    from transforms.minimise import KEY_COLUMNS
    from transforms.policy import load_policy

    url, sha, rows = sys.argv[1], sys.argv[2], int(sys.argv[3])
    policy = load_policy()
    store = IndexStore.from_url(url, policy)
    frame = pd.DataFrame({"child_pseudonym": [f"{i:064x}" for i in range(rows)],
                          "pseudonym_kind": "nhs", "key_version": "v1",
                          "council_code": "E08000035", "shielded": False,
                          "year_of_birth": 2015, "sex": "F", "postcode_district": "LS6"},
                         columns=[*KEY_COLUMNS, *policy.field_names])
    def announce(conn):
        print("BEGIN", flush=True)
    sa.event.listen(store.engine, "begin", announce)
    store.load(StagedFile("E08000035", "big.csv", sha, "children", "snapshot", 2,
                          "2026-11-26T06:00:00Z", frame))
    print("DONE", flush=True)
""")


def _start(url: str, sha: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", LOADER, url, sha, str(ROWS)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.getcwd()},
    )


def test_sigkill_mid_load_leaves_index_unchanged_and_retry_completes(index_url, policy):
    from test_load import child_rows, staged

    store = IndexStore.from_url(index_url, policy)
    store.load(staged(child_rows(policy, ["p1", "p2"], "E08000035"), "E08000035", "a1"))
    before = store.snapshot()
    sha = "f" * 64

    proc = _start(index_url, sha)
    assert proc.stdout.readline().strip() == "BEGIN"
    time.sleep(1.0)  # well inside the insert of ROWS rows, long before the commit
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    store.engine.dispose()
    assert store.snapshot() == before
    assert not store.already_loaded(sha)

    retry = _start(index_url, sha)
    out, _ = retry.communicate(timeout=300)
    assert retry.returncode == 0 and "DONE" in out
    assert store.already_loaded(sha)
    assert len(store.index_frame()) == ROWS
