"""Questions are encoded in NumPy, texts in bulk with sentence-transformers: the same vectors."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np

from qa_bot.answer import Answerer
from qa_bot.encoder import QUESTION_TEXTS, Encoder
from tests.conftest import DATA, REPO

ODD = ["", "a " * 400, "Ünïcödé — “quotes” 🙂 and ‘apostrophes’?", "HOW MANY SOLDIERS LEFT DAMASCUS", "?"]


def test_numpy_and_torch_give_the_same_vectors(encoder: Encoder) -> None:
    questions = [json.loads(line)["q"] for line in (DATA / "dev_questions.jsonl").read_text().splitlines()]
    texts = questions + ODD
    bulk = encoder.encode(texts * 2)[: len(texts)]  # more than QUESTION_TEXTS: sentence-transformers
    assert len(texts) * 2 > QUESTION_TEXTS
    one_by_one = np.vstack([encoder.encode([t]) for t in texts])  # NumPy
    assert ((bulk * one_by_one).sum(axis=1) >= 0.9999).all()
    assert np.allclose(np.linalg.norm(one_by_one, axis=1), 1.0, atol=1e-5)


def test_word_vectors_are_the_models_input_embeddings(encoder: Encoder) -> None:
    vocabulary, vectors = encoder.word_vectors()
    assert vectors.shape == (30522, encoder.dim) and "soldiers" in vocabulary
    assert "[CLS]" not in vocabulary and "##s" not in vocabulary


def test_a_one_shot_ask_never_imports_torch(answerer: Answerer) -> None:
    probe = ("import sys; from qa_bot.cli import main; "
             f"code = main(['ask', '--index-dir', {str(answerer.settings.index_dir)!r}, "
             "'how many soldiers left Damascus?']); "
             "print('torch loaded' if 'torch' in sys.modules else 'no torch'); sys.exit(code)")
    run = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert "400 soldiers" in run.stdout and run.stdout.rstrip().endswith("no torch")
