"""Questions are encoded in NumPy, texts in bulk with sentence-transformers: the same vectors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from qa_bot.answer import Answerer
from qa_bot.encoder import QUESTION_TEXTS, Encoder, leans_to
from tests.conftest import DATA, REPO

ODD = ["", "a " * 400, "Ünïcödé — “quotes” 🙂 and ‘apostrophes’?", "HOW MANY SOLDIERS LEFT DAMASCUS", "?"]


def test_numpy_onnx_and_torch_give_the_same_vectors(encoder: Encoder) -> None:
    questions = [json.loads(line)["q"] for line in (DATA / "dev_questions.jsonl").read_text().splitlines()]
    texts = questions + ODD
    bulk = encoder.encode(texts * 2)[: len(texts)]  # more than QUESTION_TEXTS: the exported model
    assert len(texts) * 2 > QUESTION_TEXTS and encoder._onnx() is not None
    one_by_one = np.vstack([encoder.encode([t]) for t in texts])  # NumPy
    reference = encoder._sentence_transformer().encode(texts, normalize_embeddings=True)  # torch
    assert ((bulk * reference).sum(axis=1) >= 0.9999).all()
    assert ((one_by_one * reference).sum(axis=1) >= 0.9999).all()
    assert np.allclose(np.linalg.norm(one_by_one, axis=1), 1.0, atol=1e-5)


def test_the_export_is_made_once_kept_and_remade_when_damaged(tmp_path: Path) -> None:
    said: list[str] = []
    first = Encoder(cache=tmp_path)
    first.prepare_bulk(said.append)
    first.encode(ODD * 3)
    exported = list(tmp_path.glob("*.onnx"))
    assert len(exported) == 1 and not list(tmp_path.glob(".*.tmp"))
    assert len(said) == 1 and "Exporting the model to ONNX" in said[0]
    made = exported[0].stat().st_mtime_ns
    second = Encoder(cache=tmp_path)
    second.prepare_bulk(said.append)
    assert second._onnx() is not None and exported[0].stat().st_mtime_ns == made and len(said) == 1
    exported[0].write_bytes(b"half a model")  # damaged: made again, not a crash
    third = Encoder(cache=tmp_path)
    assert third._onnx() is not None and exported[0].stat().st_size > 1_000_000


def test_without_a_usable_cache_indexing_falls_back_to_torch(tmp_path: Path,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    encoder = Encoder(cache=blocker / "cache")  # cannot be created
    vectors = encoder.encode(ODD * 3)
    assert encoder._onnx() is None and "indexing with torch" in caplog.text
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


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


def test_a_sentence_leans_toward_its_headline_unless_it_is_the_headline() -> None:
    headline = "Pilot whales stranded on Tasmanian beach"
    assert leans_to(headline, "The pod was spotted at 6.15am.") == headline
    assert leans_to(headline, headline) is None
    assert leans_to(None, "The pod was spotted at 6.15am.") is None


def test_words_are_encoded_as_questions_and_kept(encoder: Encoder) -> None:
    words = ["staff", "employees", "staff", "miles"]
    vectors = encoder.encode_words(words)
    assert vectors.shape == (4, encoder.dim)
    assert np.allclose(vectors, encoder.encode_questions(words), atol=1e-6)
    assert float(vectors[0] @ vectors[1]) > float(vectors[0] @ vectors[3])  # staff: employees, not miles
    assert "employees" in encoder._words
