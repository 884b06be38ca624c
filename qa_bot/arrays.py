"""Row files: NumPy arrays memory-mapped from an index folder, ragged rows stored end to end, and
lookups of many keys in an index's SQLite tables."""

from __future__ import annotations

import sqlite3
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any

import numpy as np

SQLITE_PARAMETERS = 500  # keys per query, well under SQLite's limit on a statement's parameters


class Ragged:
    """Rows of varying length: `<stem>.npy` holds them end to end, `<stem>.offsets.npy` where each starts."""

    def __init__(self, stem: Path) -> None:
        self._data = mapped(stem.with_suffix(".npy"))
        self._offsets = mapped(stem.with_suffix(".offsets.npy"))

    def __len__(self) -> int:
        return len(self._offsets) - 1

    def __getitem__(self, row: int) -> np.ndarray:
        return self._data[int(self._offsets[row]): int(self._offsets[row + 1])]

    def many(self, rows: Sequence[int] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Several rows end to end, and the length of each."""
        wanted = np.asarray(rows, dtype=np.int64)
        starts = self._offsets[wanted]
        lengths = self._offsets[wanted + 1] - starts
        # Each item's position: where its row starts, plus how far into the row it is.
        at = np.arange(int(lengths.sum())) + np.repeat(starts - (np.cumsum(lengths) - lengths), lengths)
        return self._data[at], lengths


def save_ragged(stem: Path, rows: Sequence[np.ndarray | Sequence[tuple[int, ...]]], width: int | None,
                dtype: type = np.int64) -> None:
    """Write rows of `width` numbers each (or of single numbers, width None) as `Ragged` reads them."""
    offsets = np.zeros(len(rows) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(r) for r in rows])
    shape = (-1,) if width is None else (-1, width)
    flat = np.concatenate([np.asarray(r, dtype=dtype).reshape(shape) for r in rows]) if rows \
        else np.zeros((0,) if width is None else (0, width), dtype=dtype)
    np.save(stem.with_suffix(".npy"), flat.astype(dtype).reshape(shape))
    np.save(stem.with_suffix(".offsets.npy"), offsets)


def mapped(path: Path) -> np.ndarray:
    """An array file, memory-mapped (as a plain array: indexing a `np.memmap` costs microseconds)."""
    return np.asarray(np.load(path, mmap_mode="r"))


def select_in(db: sqlite3.Connection, select: str, column: str,
              keys: Collection[Any]) -> list[tuple[Any, ...]]:
    """The rows of `select` whose `column` is one of `keys`, asked a few hundred keys at a time."""
    wanted = sorted(set(keys))
    found: list[tuple[Any, ...]] = []
    for start in range(0, len(wanted), SQLITE_PARAMETERS):
        part = wanted[start: start + SQLITE_PARAMETERS]
        found += db.execute(f"{select} WHERE {column} IN ({', '.join('?' * len(part))})", part).fetchall()
    return found
