"""docker-compose.yml and the Dockerfile agree with the code (no Docker engine runs here)."""

from pathlib import Path

import yaml

from transforms.keys import KEY_CONN_ID
from transforms.settings import DEFAULT_HOME

ROOT = Path(__file__).parents[1]


def test_compose_uses_our_settings_and_no_key():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    env = compose["services"]["airflow"]["environment"]
    assert env["REGISTRY_SYNC_INDEX_URL"].startswith("postgresql+psycopg://")
    assert "REGISTRY_SYNC_HOME" in env and DEFAULT_HOME
    assert not any("PSEUDONYM_KEY" in k for k in env)  # the key comes from an ignored file
    assert f"AIRFLOW_CONN_{KEY_CONN_ID.upper()}" in (ROOT / "docker-compose.yml").read_text()
    assert compose["services"]["airflow"]["ports"] == ["127.0.0.1:8080:8080"]


def test_dockerfile_installs_from_the_lock_file_only():
    text = (ROOT / "Dockerfile").read_text()
    assert "uv sync --frozen" in text and "COPY pyproject.toml uv.lock" in text
    for folder in ("transforms", "expectations", "synthetic_data", "dags"):
        assert f"COPY {folder} {folder}" in text
