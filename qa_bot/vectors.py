"""Row-numbered unit vectors on disk, searched by inner product: every vector search goes through here.

The vectors are one memory-mapped float32 `.npy` file, so opening costs nothing and only the rows a
question touches are read. Up to `EXACT_UP_TO` rows a search multiplies the whole matrix (exact,
a few milliseconds); above it, FAISS proposes candidates over 8-bit codes and the float vectors
re-rank them: an HNSW graph for passages, an inverted file (IVF: the rows clustered into lists,
the lists nearest the question scanned) for sentences, which repeat (syndicated copies, stock
phrases) in dense clusters that a graph links poorly. The plan is recorded in the index manifest.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Protocol

import faiss
import numpy as np

# Exact search at 100k rows of 384 floats takes ~3 ms on this machine; past that, FAISS.
EXACT_UP_TO = 100_000
# The inverted file (or graph) proposes RERANK × k rows, re-scored with the float vectors so scores
# are exact (2, 4 and 10 gave the same recall@10 at 100k and 1M with the graphs; 1 lost 0.02-0.06).
RERANK = 2
# Lists scanned per question. Sentence recall@10 (scripts/scale_benchmark.py's questions) was
# 0.984 / 0.994 with 4 at 100k / 1M passages and 1.000 from 8 on; 16 leaves a margin for text that
# clusters less, at 1.6 ms a search at 1M (k 60) against 3.9 ms with 64.
PROBES = 16
TRAINING_ROWS_PER_LIST = 64  # the clustering is trained on a sample of this many rows per list


@dataclass(frozen=True)
class SearchPlan:
    """How a vector file is searched: exactly, or through an HNSW graph or an inverted file with
    these parameters."""

    kind: str  # "exact", "ivf-sq8", or "hnsw-sq8" (written by earlier versions)
    m: int = 0  # graph neighbours per node
    ef_construction: int = 0
    ef_search: int = 0
    lists: int = 0  # inverted file: how many lists the rows are clustered into
    probes: int = 0  # inverted file: how many lists a search scans

    @classmethod
    def for_rows(cls, rows: int, repeated: bool = False) -> SearchPlan:
        """The plan for a file of this many rows; `repeated` for rows that come in dense clusters."""
        if rows <= EXACT_UP_TO:
            return cls("exact")
        # Measured with scripts/scale_benchmark.py. Sentences at 1M passages (2.24M rows): the
        # graph reached recall@10 0.816, the inverted file 1.000 (from 8 lists scanned on), built
        # in 73 s against ~500 s. Passages at 100k: the graph 1.000, the inverted file 0.956.
        # Lists: FAISS's guideline is 4 to 16 × sqrt(rows).
        # ef_search 512: sentence recall@10 0.968 at 100k passages, 0.860 at 128 (README).
        if repeated:
            return cls("ivf-sq8", lists=int(4 * rows ** 0.5), probes=PROBES)
        return cls("hnsw-sq8", 32, 200, 512)

    def to_json(self) -> dict[str, int | str]:
        """For the manifest."""
        return asdict(self)


class VectorStore(Protocol):
    """Row-numbered unit vectors with inner-product search; files now, pgvector later."""

    dim: int
    plan: SearchPlan

    def __len__(self) -> int: ...
    def search(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]: ...
    def vectors_of(self, rows: np.ndarray | list[int]) -> np.ndarray: ...
    def vectors(self) -> np.ndarray: ...


class SavedVectors:
    """A vector file written by `write_vectors`, memory-mapped, with its graph or inverted file when
    it has one."""

    def __init__(self, matrix: np.ndarray, plan: SearchPlan, proposer: faiss.Index | None = None,
                 path: Path | None = None) -> None:
        if matrix.ndim != 2:
            raise ValueError(f"vectors of shape {matrix.shape}")
        self._matrix = matrix
        self.dim = int(matrix.shape[1])
        self.plan = plan
        self._proposer = proposer  # the inverted file or graph that proposes rows to re-rank
        self._file: int | None = None
        if proposer is not None and path is not None:
            self._file = os.open(path, os.O_RDONLY)
            self._offset = matrix.offset if isinstance(matrix, np.memmap) else 0
        if proposer is not None and proposer.ntotal != len(matrix):
            raise ValueError(f"a {plan.kind} index of {proposer.ntotal} rows for {len(matrix)} vectors")
        if plan.kind == "hnsw-sq8" and proposer is not None:
            proposer.hnsw.efSearch = plan.ef_search  # type: ignore[attr-defined]
        elif proposer is not None:
            faiss.extract_index_ivf(proposer).nprobe = plan.probes

    @classmethod
    def open(cls, path: Path, plan: SearchPlan) -> SavedVectors:
        """Open `<path>.npy`, and `<path>.ivf` (or `.hnsw`) when the plan says so."""
        matrix = np.load(path.with_suffix(".npy"), mmap_mode="r")
        if plan.kind == "exact":
            return cls(np.asarray(matrix), plan)
        # Their arrays are mapped in place, not read: at 1M passages this opened two graphs in 0.1 s
        # instead of 1.9 s, with 1.6 GB less resident (shared between processes).
        if plan.kind == "ivf-sq8":
            proposer = faiss.read_index(str(path.with_suffix(".ivf")), faiss.IO_FLAG_MMAP)
        else:
            proposer = faiss.read_index(str(path.with_suffix(".hnsw")), faiss.IO_FLAG_MMAP_IFC)
        return cls(matrix, plan, proposer, path.with_suffix(".npy"))

    def __len__(self) -> int:
        return int(self._matrix.shape[0])

    def search(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Scores and rows of the k nearest rows to one query vector, best first."""
        k = min(k, len(self))
        if k <= 0:
            return np.zeros(0, dtype=np.float32), np.zeros(0, dtype=np.int64)
        if self._proposer is None:
            proposed = np.sort(best_first(self._matrix @ query, min(RERANK * k, len(self))))
        else:
            _, found = self._proposer.search(np.ascontiguousarray(query[None, :], dtype=np.float32),
                                             min(RERANK * k, len(self)))
            proposed = np.sort(found[0][found[0] >= 0])
        exact = scores_of(self.vectors_of(proposed), query)
        best = best_first(exact, k)
        return exact[best], proposed[best]

    def vectors_of(self, rows: np.ndarray | list[int]) -> np.ndarray:
        """The float vectors of these rows."""
        rows = np.asarray(rows, dtype=np.int64)
        if len(rows) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        if self._file is None:
            return np.asarray(self._matrix[rows])
        # Read with pread, a run of consecutive rows at a time: a page fault on the mapping brings
        # in far more than one row (measured: 400 rows mapped 254 MB at 100k passages), which would
        # count against resident memory.
        size = self.dim * 4
        breaks = np.flatnonzero(np.diff(rows) != 1) + 1
        starts, ends = np.r_[0, breaks], np.r_[breaks, len(rows)]
        read = b"".join(os.pread(self._file, size * int(e - s), self._offset + int(rows[s]) * size)
                        for s, e in zip(starts, ends, strict=True))
        return np.frombuffer(read, dtype=np.float32).reshape(len(rows), self.dim)

    def vectors(self) -> np.ndarray:
        """Every vector, in row order (memory-mapped: read as used)."""
        return self._matrix


class StackedVectors:
    """A base's vectors with a tail's after them (an index with appended articles): a search
    asks both and keeps the best k; the tail's rows are numbered on from the base's."""

    def __init__(self, base: VectorStore, tail: VectorStore) -> None:
        self.dim = base.dim
        self.plan = base.plan
        self._base, self._tail = base, tail
        self._split = len(base)

    def __len__(self) -> int:
        return self._split + len(self._tail)

    def search(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Scores and rows of the k nearest rows to one query vector, best first."""
        base_scores, base_rows = self._base.search(query, k)
        tail_scores, tail_rows = self._tail.search(query, k)
        scores = np.concatenate([base_scores, tail_scores])
        rows = np.concatenate([base_rows, tail_rows + self._split])
        best = np.lexsort((-rows, -scores))[:k]  # among equals the later row first, as `best_first`
        return scores[best], rows[best]

    def vectors_of(self, rows: np.ndarray | list[int]) -> np.ndarray:
        """The float vectors of these rows."""
        rows = np.asarray(rows, dtype=np.int64)
        out = np.empty((len(rows), self.dim), dtype=np.float32)
        in_tail = rows >= self._split
        out[~in_tail] = self._base.vectors_of(rows[~in_tail])
        out[in_tail] = self._tail.vectors_of(rows[in_tail] - self._split)
        return out

    def vectors(self) -> np.ndarray:
        """Every vector, in row order (a copy: for tools, not for questions)."""
        return np.concatenate([self._base.vectors(), self._tail.vectors()])


def write_vectors(path: Path, vectors: np.ndarray, plan: SearchPlan | None = None) -> SearchPlan:
    """Write `<path>.npy`, and beside it the graph (`.hnsw`) or inverted file (`.ivf`) that the plan
    asks for (by default `SearchPlan.for_rows`); returns the plan as written."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    np.save(path.with_suffix(".npy"), vectors)
    plan = plan or SearchPlan.for_rows(len(vectors))
    if plan.kind == "ivf-sq8":
        lists = max(1, min(plan.lists, len(vectors) // TRAINING_ROWS_PER_LIST))
        plan = replace(plan, lists=lists, probes=min(plan.probes, lists))
        quantizer = faiss.IndexFlatIP(vectors.shape[1])
        inverted = faiss.IndexIVFScalarQuantizer(quantizer, vectors.shape[1], lists,
                                                 faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT)
        sample = np.random.default_rng(0).choice(
            len(vectors), min(len(vectors), TRAINING_ROWS_PER_LIST * lists), replace=False)
        inverted.train(vectors[np.sort(sample)])
        inverted.add(vectors)
        faiss.write_index(inverted, str(path.with_suffix(".ivf")))
    elif plan.kind == "hnsw-sq8":
        graph = faiss.IndexHNSWSQ(vectors.shape[1], faiss.ScalarQuantizer.QT_8bit, plan.m,  # type: ignore[arg-type]
                                  faiss.METRIC_INNER_PRODUCT)
        graph.hnsw.efConstruction = plan.ef_construction
        graph.train(vectors)
        graph.add(vectors)
        faiss.write_index(graph, str(path.with_suffix(".hnsw")))
    return plan


def scores_of(vectors: np.ndarray, query: np.ndarray) -> np.ndarray:
    """Inner products of rows with the query, summed in float64 and rounded to float32: BLAS's
    float32 product sums a row in an order that depends on where it stands, so two equal rows
    (syndicated copies) would score apart, and their order would depend on what else was read."""
    return (np.asarray(vectors, dtype=np.float64) @ np.asarray(query, dtype=np.float64)).astype(np.float32)


def best_first(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k highest scores, best first, the later row first among equals (syndicated
    copies have equal vectors): the one order both stores use, vectors and BM25 alike."""
    part = np.argpartition(-scores, k)[:k] if len(scores) > k else np.arange(len(scores))
    return part[np.lexsort((-part, -scores[part]))]
