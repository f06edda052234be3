"""Shared fixtures: a fixed test key, the policy, and SQLite/PostgreSQL index URLs."""

from __future__ import annotations

import os
import tempfile
import uuid

# Airflow reads its configuration at import: point it at a throwaway home before any test
# imports it, so tests never touch ~/airflow or the demo's .airflow/.
AIRFLOW_TEST_HOME = tempfile.mkdtemp(prefix="registry-sync-airflow-")
os.environ["AIRFLOW_HOME"] = AIRFLOW_TEST_HOME
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = os.path.join(os.path.dirname(__file__), "..", "dags")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")

import pytest  # noqa: E402 (after the Airflow environment above)
import sqlalchemy as sa  # noqa: E402

from transforms.policy import load_policy  # noqa: E402
from transforms.pseudonymise import PseudonymKey  # noqa: E402

# A fixed key for known-answer tests only; real keys come from Airflow or the environment.
TEST_KEY_HEX = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
POSTGRES_URL = os.environ.get(
    "REGISTRY_SYNC_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
IN_CI = os.environ.get("CI", "").lower() == "true"


@pytest.fixture(scope="session")
def key_hex() -> str:
    return TEST_KEY_HEX


@pytest.fixture(scope="session")
def key() -> PseudonymKey:
    return PseudonymKey(bytes.fromhex(TEST_KEY_HEX))


@pytest.fixture(scope="session")
def policy():
    return load_policy()


def _postgres_available() -> str | None:
    try:
        engine = sa.create_engine(POSTGRES_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(sa.text("select 1"))
        engine.dispose()
        return None
    except Exception as exc:  # any failure to connect means "not available here"
        return f"PostgreSQL not reachable at {POSTGRES_URL.split('@')[-1]} ({type(exc).__name__})"


@pytest.fixture
def postgres_url():
    """A PostgreSQL URL whose search_path is a fresh schema, dropped afterwards.

    Skips with the reason when the server is absent, except under CI=true where that fails.
    """
    problem = _postgres_available()
    if problem:
        if IN_CI:
            pytest.fail(f"{problem}; CI=true requires it")
        pytest.skip(problem)
    schema = "t_" + uuid.uuid4().hex[:12]
    admin = sa.create_engine(POSTGRES_URL)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    yield f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
    with admin.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def index_url(request, tmp_path):
    """Each test using this runs on the embedded SQLite index and on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'index.sqlite'}"
    return request.getfixturevalue("postgres_url")


def empty_index(url: str, policy):
    """Open the index at `url` with every table emptied.

    PostgreSQL tests share one schema per test, so a test that builds several indexes (one per
    arrival order, say) starts each from empty tables; SQLite tests give each its own file.
    """
    from transforms.load import IndexStore

    store = IndexStore.from_url(url, policy)
    with store.engine.begin() as conn:
        for table in reversed(store.metadata.sorted_tables):
            conn.execute(table.delete())
    return store
