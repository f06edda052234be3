"""Small vectorised string helpers over Arrow arrays, so no column is built row by row.

Strings are `large_string` throughout: pandas 3 keeps its `str` columns in that type, so a
finished table becomes a DataFrame without copying.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

STRING = pa.large_string()
Part = pa.Array | str


def strings(values: Sequence[str]) -> pa.Array:
    """Return `values` as an Arrow string array."""
    return pa.array(list(values), type=STRING)


def _lift(part: Part) -> pa.Array | pa.Scalar:
    return pa.scalar(part, type=STRING) if isinstance(part, str) else part


def take(values: pa.Array, indices: np.ndarray) -> pa.Array:
    """Return `values[indices]` for a numpy index array."""
    return values.take(pa.array(np.asarray(indices, dtype=np.int64)))


def repeat(value: str, n: int) -> pa.Array:
    """Return an array of `n` copies of `value`."""
    return take(strings([value]), np.zeros(n, dtype=np.int64))


def concat(*parts: Part) -> pa.Array:
    """Concatenate arrays and literal strings element-wise: `concat(a, " ", b)` is a + " " + b."""
    if not any(isinstance(p, pa.Array) for p in parts):
        raise ValueError("concat needs at least one array among its parts")
    return pc.binary_join_element_wise(*(_lift(p) for p in parts), _lift(""))


def where(mask: np.ndarray, when_true: Part, when_false: Part) -> pa.Array:
    """Return `when_true` where `mask` holds, else `when_false` (arrays or literal strings)."""
    condition = pa.array(np.asarray(mask, dtype=bool))
    return pc.if_else(condition, _lift(when_true), _lift(when_false))


def digits(values: np.ndarray, width: int = 0) -> pa.Array:
    """Return integers as decimal strings, left-padded with zeros to `width` when given."""
    text = pc.cast(pa.array(np.asarray(values, dtype=np.int64)), STRING)
    return pc.utf8_lpad(text, width=width, padding="0") if width else text


def dates(values: np.ndarray) -> pa.Array:
    """Return numpy days as ISO 8601 strings, e.g. "2026-11-25"."""
    return pc.cast(pa.array(np.asarray(values, dtype="datetime64[D]")), STRING)


def lengths(values: pa.Array) -> np.ndarray:
    """Return the character length of every string (Python `len`, not bytes)."""
    return pc.utf8_length(values).to_numpy(zero_copy_only=False).astype(np.int64)


def replace_at(values: pa.Array, index: np.ndarray, new: pa.Array) -> pa.Array:
    """Return `values` with `values[index[j]]` replaced by `new[j]`."""
    if len(index) == 0:
        return values
    where_from = np.arange(len(values), dtype=np.int64)
    where_from[index] = len(values) + np.arange(len(index))
    return take(pa.concat_arrays([values, new]), where_from)


def scatter(
    n: int,
    positions: list[np.ndarray],
    values: list[pa.Array],
    default: str,
    source: np.ndarray | None = None,
) -> pa.Array:
    """Return `n` strings: `values[k][j]` at row `positions[k][j]`, `default` elsewhere.

    With `source`, return instead the string of row `source[i]` at every position i.
    """
    pool = pa.concat_arrays([*values, strings([default])])
    index = np.full(n, len(pool) - 1, dtype=np.int64)
    if positions:
        index[np.concatenate(positions)] = np.arange(len(pool) - 1, dtype=np.int64)
    return take(pool, index if source is None else index[source])
