"""Where the pseudonymisation key comes from: an Airflow connection, the environment or a file.

This is entry-point code (CLI, DAG tasks); transforms receive the key as an argument. The key is
never read from the repository or a config default, and never logged.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from transforms.pseudonymise import PseudonymKey

KEY_ENV = "REGISTRY_SYNC_KEY"  # hex of at least 32 random bytes
KEY_FILE_ENV = "REGISTRY_SYNC_KEY_FILE"  # path to a file holding that hex, outside the repository
KEY_CONN_ID = "registry_sync_pseudonym_key"  # Airflow connection whose password is the hex key
# For a rotation only: the key to rotate to, as a connection (password) or a file.
NEW_KEY_CONN_ID = "registry_sync_pseudonym_key_new"
NEW_KEY_FILE_ENV = "REGISTRY_SYNC_NEW_KEY_FILE"


class KeyMissing(RuntimeError):
    """No key is configured; the message says how to provide one."""


def key_from_hex(text: str, source: str) -> PseudonymKey:
    """Build a key from hex text, with an error naming the source but never the text."""
    try:
        secret = bytes.fromhex(text.strip())
    except ValueError:
        raise KeyMissing(
            f"the key in {source} is not hex; make one with "
            "`python -c 'import secrets; print(secrets.token_hex(32))'`"
        ) from None
    if len(secret) < 32:
        raise KeyMissing(f"the key in {source} is shorter than 32 bytes (64 hex characters)")
    return PseudonymKey(secret)


def key_from_environment(env: Mapping[str, str] | None = None) -> PseudonymKey:
    """Return the key from REGISTRY_SYNC_KEY, else from the file REGISTRY_SYNC_KEY_FILE names.

    Raises:
        KeyMissing: neither is set, or the value is not a usable key.
    """
    env = os.environ if env is None else env
    if env.get(KEY_ENV):
        return key_from_hex(env[KEY_ENV], KEY_ENV)
    if env.get(KEY_FILE_ENV):
        return key_from_file(Path(env[KEY_FILE_ENV]), KEY_FILE_ENV)
    raise KeyMissing(
        f"no pseudonymisation key: set {KEY_ENV} or {KEY_FILE_ENV}, or the Airflow "
        f"connection {KEY_CONN_ID!r} (password = 64 hex characters); `make demo` "
        "makes a development key in .secrets/"
    )


def key_from_file(path: Path, source: str) -> PseudonymKey:
    """Return the key held (as hex) in a file; errors name `source`, never the key.

    Raises:
        KeyMissing: the file does not exist or does not hold a usable key.
    """
    if not path.is_file():
        raise KeyMissing(f"{source} names a file that does not exist")
    return key_from_hex(path.read_text("utf-8"), source)


def new_key_for_airflow_task() -> PseudonymKey:
    """Return the key to rotate to: the connection NEW_KEY_CONN_ID, else REGISTRY_SYNC_NEW_KEY_FILE.

    Raises:
        KeyMissing: neither is set, or the value is not a usable key.
    """
    from airflow.sdk import Connection
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        conn = Connection.get(NEW_KEY_CONN_ID)
    except AirflowNotFoundException:
        path = os.environ.get(NEW_KEY_FILE_ENV)
        if not path:
            raise KeyMissing(
                f"no key to rotate to: set the Airflow connection {NEW_KEY_CONN_ID!r} "
                f"(password = 64 hex characters) or {NEW_KEY_FILE_ENV}"
            ) from None
        return key_from_file(Path(path), NEW_KEY_FILE_ENV)
    if not conn.password:
        raise KeyMissing(f"the Airflow connection {NEW_KEY_CONN_ID!r} has no password")
    return key_from_hex(conn.password, f"connection {NEW_KEY_CONN_ID}")


def key_for_airflow_task() -> PseudonymKey:
    """Return the key from the Airflow connection, falling back to the environment.

    Airflow masks a connection's password in task logs; we never log it in any case.
    """
    from airflow.sdk import Connection
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        conn = Connection.get(KEY_CONN_ID)
    except AirflowNotFoundException:
        return key_from_environment()
    if not conn.password:
        raise KeyMissing(f"the Airflow connection {KEY_CONN_ID!r} has no password")
    return key_from_hex(conn.password, f"connection {KEY_CONN_ID}")
