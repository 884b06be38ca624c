"""The index on disk: round trip, incremental updates, corruption, atomic writes."""

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from qa_bot.config import Settings
from qa_bot.encoder import Encoder
from qa_bot.entities import EntityTagger
from qa_bot.errors import IndexStoreError
from qa_bot.index import CURRENT, FaissVectorStore, load_index, open_index
from tests.conftest import SEEDS, TAGGER

NEW_ARTICLE = (
    "The Dutch foreign ministry said on Tuesday that its embassy in Damascus would "
    "reopen in the spring, with a staff of six diplomats."
)


@pytest.fixture
def small_corpus(tmp_path: Path) -> Path:
    """Two seed articles: enough for the index's behaviour, quick to embed."""
    folder = tmp_path / "corpus"
    folder.mkdir()
    for seed in sorted(SEEDS.glob("00[34]_*.txt")):
        shutil.copy(seed, folder / seed.name)
    return folder


def build(corpus: Path, index_dir: Path, encoder: Encoder, log: list[str] | None = None):  # type: ignore[no-untyped-def]
    settings = Settings(corpus_dir=corpus, index_dir=index_dir)
    return open_index(settings, encoder, (log if log is not None else []).append, tagger=TAGGER)


def live_folder(index_dir: Path) -> Path:
    return index_dir / (index_dir / CURRENT).read_text().strip()


def test_round_trip_keeps_passages_and_vectors(
    seed_settings: Settings, encoder: Encoder, answerer: object
) -> None:
    loaded = load_index(seed_settings.index_dir)
    assert len(loaded.chunks) == len(loaded.passage_vectors) > 50
    for chunk in loaded.chunks:
        assert loaded.articles[chunk.article_id].text[chunk.start : chunk.end] == chunk.text
    vectors = loaded.passage_vectors.vectors()
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)


def test_faiss_search_matches_a_brute_force_oracle() -> None:
    rng = np.random.default_rng(7)
    data = rng.normal(size=(500, 32)).astype(np.float32)
    data /= np.linalg.norm(data, axis=1, keepdims=True)
    store = FaissVectorStore(32)
    store.add(data)
    query = data[:3] + 0.01
    scores, rows = store.search(query, 10)
    oracle = np.argsort(-(query @ data.T), axis=1)[:, :10]
    assert (rows == oracle).all()
    assert np.allclose(scores, np.take_along_axis(query @ data.T, oracle, axis=1), atol=1e-5)


def test_unchanged_corpus_is_loaded_without_embedding(
    small_corpus: Path, tmp_path: Path, encoder: Encoder
) -> None:
    build(small_corpus, tmp_path / "idx", encoder)
    _, update = build(small_corpus, tmp_path / "idx", encoder)
    assert (update.action, update.embedded) == ("loaded", 0)


def test_only_new_and_changed_articles_are_embedded(
    small_corpus: Path, tmp_path: Path, encoder: Encoder
) -> None:
    index, first = build(small_corpus, tmp_path / "idx", encoder)
    (small_corpus / "005_new.txt").write_text(NEW_ARTICLE, encoding="utf-8")
    log: list[str] = []
    index, update = build(small_corpus, tmp_path / "idx", encoder, log)
    assert update.action == "updated"
    assert update.embedded == 1  # its one passage is its one sentence: one text, one vector
    assert update.reused == first.embedded
    assert any("added 005_new.txt" in line for line in log)
    assert "005_new.txt" in index.articles

    (small_corpus / "005_new.txt").unlink()
    index, update = build(small_corpus, tmp_path / "idx", encoder, log)
    assert (update.action, update.embedded) == ("updated", 0)
    assert "005_new.txt" not in index.articles
    assert any("removed 005_new.txt" in line for line in log)


def test_corrupt_vectors_are_detected_and_rebuilt(
    small_corpus: Path, tmp_path: Path, encoder: Encoder
) -> None:
    build(small_corpus, tmp_path / "idx", encoder)
    (live_folder(tmp_path / "idx") / "passages.faiss").write_bytes(b"garbage")
    with pytest.raises(IndexStoreError, match="damaged"):
        load_index(tmp_path / "idx")
    log: list[str] = []
    index, update = build(small_corpus, tmp_path / "idx", encoder, log)
    assert update.action == "built" and len(index.chunks) > 0
    assert any("unusable" in line for line in log)


def test_index_built_with_another_model_is_rebuilt(
    small_corpus: Path, tmp_path: Path, encoder: Encoder
) -> None:
    build(small_corpus, tmp_path / "idx", encoder)
    manifest = live_folder(tmp_path / "idx") / "manifest.json"
    data = json.loads(manifest.read_text())
    manifest.write_text(json.dumps(data | {"model": "other/model"}))
    log: list[str] = []
    _, update = build(small_corpus, tmp_path / "idx", encoder, log)
    assert update.action == "built"
    assert any("another model" in line for line in log)


def test_an_index_of_the_previous_format_is_migrated_without_embedding(
    tmp_path: Path, encoder: Encoder
) -> None:
    syndicated = tmp_path / "syndicated"  # euronews and the FT carry the same opening passages
    syndicated.mkdir()
    for seed in sorted(SEEDS.glob("00[02]_*.txt")):
        shutil.copy(seed, syndicated / seed.name)
    built, _ = build(syndicated, tmp_path / "idx", encoder)
    folder = live_folder(tmp_path / "idx")
    manifest = json.loads((folder / "manifest.json").read_text())
    store = json.loads((folder / "store.json").read_text())
    (folder / "manifest.json").write_text(json.dumps(manifest | {"format": 2}))
    (folder / "store.json").write_text(json.dumps({k: v for k, v in store.items() if k != "copies"}))
    log: list[str] = []
    migrated, update = build(syndicated, tmp_path / "idx", encoder, log)
    assert update.action == "loaded" and update.embedded == 0
    assert any("migrated from format 2" in line for line in log)
    assert migrated.copies == built.copies and any(built.copies)  # the seeds syndicate passages
    assert json.loads((live_folder(tmp_path / "idx") / "manifest.json").read_text())["format"] == 3
    log.clear()
    build(syndicated, tmp_path / "idx", encoder, log)
    assert not any("migrated" in line for line in log)  # saved: migrated once


def test_inconsistent_store_is_reported(small_corpus: Path, tmp_path: Path, encoder: Encoder) -> None:
    build(small_corpus, tmp_path / "idx", encoder)
    store = live_folder(tmp_path / "idx") / "store.json"
    data = json.loads(store.read_text())
    data["passages"] = data["passages"][:-1]
    store.write_text(json.dumps(data))
    with pytest.raises(IndexStoreError, match="passage vectors for"):
        load_index(tmp_path / "idx")


def test_a_crash_while_writing_leaves_the_old_index_usable(
    small_corpus: Path, tmp_path: Path, encoder: Encoder, monkeypatch: pytest.MonkeyPatch
) -> None:
    before, _ = build(small_corpus, tmp_path / "idx", encoder)
    (small_corpus / "005_new.txt").write_text(NEW_ARTICLE, encoding="utf-8")

    def crash(self: FaissVectorStore, path: Path) -> None:
        path.write_bytes(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(FaissVectorStore, "save", crash)
    with pytest.raises(IndexStoreError, match="disk full"):
        build(small_corpus, tmp_path / "idx", encoder)
    monkeypatch.undo()
    after = load_index(tmp_path / "idx")
    assert len(after.chunks) == len(before.chunks)
    assert [p.name for p in (tmp_path / "idx").glob("v-*")] == [live_folder(tmp_path / "idx").name]


def test_unwritable_index_folder_is_a_clear_error(small_corpus: Path, tmp_path: Path,
                                                  encoder: Encoder) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    with pytest.raises(IndexStoreError, match="cannot write the index") as caught:
        build(small_corpus, blocker / "idx", encoder)
    assert caught.value.hint is not None and "writable" in caught.value.hint


def test_settings_change_rebuilds(small_corpus: Path, tmp_path: Path, encoder: Encoder) -> None:
    settings = Settings(corpus_dir=small_corpus, index_dir=tmp_path / "idx")
    open_index(settings, encoder, tagger=TAGGER)
    index, update = open_index(replace(settings, chunk_sentences=2, chunk_overlap=0), encoder, tagger=TAGGER)
    assert update.action == "built"
    assert max(len(c.sentences) for c in index.chunks) <= 2 + 2  # headline lines ride along


def test_entities_are_stored_with_the_index_and_a_reopen_never_loads_the_tagger(
    small_corpus: Path, tmp_path: Path, encoder: Encoder
) -> None:
    index, _ = build(small_corpus, tmp_path / "idx", encoder)
    tagged = [(index.sentence_text(r), entities) for r, entities in enumerate(index.sentence_entities)]
    assert len(tagged) == len(index.sentences) and sum(bool(e) for _, e in tagged) > len(tagged) / 2
    fresh = EntityTagger()
    reopened, update = open_index(Settings(corpus_dir=small_corpus, index_dir=tmp_path / "idx"), encoder,
                                  tagger=fresh)
    assert update.action == "loaded" and reopened.sentence_entities == index.sentence_entities
    assert fresh._nlp is None  # an unchanged index costs no spaCy start-up


def test_an_index_from_an_older_qa_bot_is_rebuilt_with_a_clear_message(
    small_corpus: Path, tmp_path: Path, encoder: Encoder
) -> None:
    build(small_corpus, tmp_path / "idx", encoder)
    manifest = live_folder(tmp_path / "idx") / "manifest.json"
    old = json.loads(manifest.read_text()) | {"format": 1}
    del old["tagger"]
    manifest.write_text(json.dumps(old))
    log: list[str] = []
    _, update = build(small_corpus, tmp_path / "idx", encoder, log)
    assert update.action == "built"
    assert any("another version of qa-bot" in line and "format 1" in line for line in log)
