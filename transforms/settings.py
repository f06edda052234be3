"""Where a deployment's settings come from: the home folder and the index URL.

Entry-point code only (CLI, DAG tasks); transforms receive paths and URLs as arguments.
"""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_HOME = "data"
HOME_ENV = "REGISTRY_SYNC_HOME"
INDEX_URL_ENV = "REGISTRY_SYNC_INDEX_URL"
INDEX_CONN_ID = "registry_sync_index"  # Airflow connection whose URI is the index


def home_from_environment(explicit: str | None = None) -> Path:
    """Return the home folder: the argument, else REGISTRY_SYNC_HOME, else ./data."""
    return Path(explicit or os.environ.get(HOME_ENV, DEFAULT_HOME))


def index_url_for(home: Path, url: str | None = None) -> str:
    """Return the index URL: the argument, REGISTRY_SYNC_INDEX_URL, else a SQLite file in home."""
    url = url or os.environ.get(INDEX_URL_ENV)
    return url or f"sqlite:///{(home / 'index.sqlite').resolve()}"


def index_url_for_airflow_task(home: Path) -> str:
    """Return the index URL from the Airflow connection, else as `index_url_for` finds it."""
    from airflow.sdk import Connection
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        return Connection.get(INDEX_CONN_ID).get_uri()
    except AirflowNotFoundException:
        return index_url_for(home)
