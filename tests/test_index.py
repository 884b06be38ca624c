"""The index on disk: round trip, incremental updates, corruption, atomic writes."""

import fcntl
import json
import os
import random
import shutil
import threading
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import pytest

import qa_bot.corpus as corpus_module
from qa_bot.config import Settings
from qa_bot.encoder import HEADLINE_WEIGHT, Encoder
from qa_bot.entities import EntityTagger
from qa_bot.errors import IndexStoreError
from qa_bot.index import CURRENT, FORMAT_VERSION, WRITER_LOCK, Index, IndexUpdate, load_index, open_index
from qa_bot.syndication import SYNDICATION_OVERLAP, _shingles, syndicated_copies
from qa_bot.vectors import SavedVectors, SearchPlan, write_vectors
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


def build(corpus: Path, index_dir: Path, encoder: Encoder,
          log: list[str] | None = None) -> tuple[Index, IndexUpdate]:
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


def clustered(rows: int, dim: int, seed: int) -> np.ndarray:
    """Unit vectors around a few hundred centres, as embeddings of news text lie."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(max(rows // 50, 1), dim))
    data = centres[rng.integers(len(centres), size=rows)] + 0.6 * rng.normal(size=(rows, dim))
    return (data / np.linalg.norm(data, axis=1, keepdims=True)).astype(np.float32)


def test_exact_search_matches_a_brute_force_oracle(tmp_path: Path) -> None:
    data = clustered(500, 32, seed=7)
    plan = write_vectors(tmp_path / "v", data)
    assert plan.kind == "exact"
    store = SavedVectors.open(tmp_path / "v", plan)
    query = data[3] + 0.01
    scores, rows = store.search(query, 10)
    oracle = np.argsort(-(data @ query))[:10]
    assert (rows == oracle).all()
    assert np.allclose(scores, (data @ query)[oracle], atol=1e-5)
    assert np.array_equal(store.vectors_of([5, 2]), data[[5, 2]])


@pytest.mark.parametrize("plan", [SearchPlan("ivf-sq8", lists=128, probes=64),
                                  SearchPlan("hnsw-sq8", 32, 80, 128)], ids=["ivf", "hnsw"])
def test_approximate_search_finds_nearly_all_of_the_exact_top_ten(tmp_path: Path, plan: SearchPlan) -> None:
    data = clustered(20_000, 64, seed=11)
    plan = write_vectors(tmp_path / "v", data, plan)
    assert (tmp_path / f"v.{plan.kind.split('-')[0]}").exists()
    store = SavedVectors.open(tmp_path / "v", plan)
    rng = np.random.default_rng(3)
    queries = data[rng.integers(len(data), size=100)] + 0.3 * rng.normal(size=(100, 64)).astype(np.float32)
    found = 0
    for query in queries:
        scores, rows = store.search(query, 10)
        found += len(set(rows.tolist()) & set(np.argsort(-(data @ query))[:10].tolist()))
        assert np.allclose(scores, data[rows] @ query, atol=1e-5)  # re-ranked with the float vectors
    assert found / 1000 >= 0.95


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
    assert update.action == "appended"  # see test_append.py
    assert update.embedded == 1  # its one passage is its one sentence: one text, one vector
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
    (live_folder(tmp_path / "idx") / "passages.npy").write_bytes(b"garbage")
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


def test_sentence_vectors_lean_toward_their_headline_and_an_index_without_it_is_rebuilt(
    small_corpus: Path, tmp_path: Path, encoder: Encoder
) -> None:
    index, _ = build(small_corpus, tmp_path / "idx", encoder)
    article = next(a for a in index.articles.values() if a.info.title)
    headline = str(article.info.title)
    row = index.rows.article_sentences(article.info.id)[-1]
    text = index.sentence_text(row)
    assert headline not in text
    [alone, head] = encoder.encode_questions([text, headline])
    leaned = alone + HEADLINE_WEIGHT * head
    stored = index.sentence_vectors.vectors_of([row])[0]
    assert float(stored @ leaned) / float(np.linalg.norm(leaned)) > 0.9999 and float(stored @ alone) < 0.99

    manifest = live_folder(tmp_path / "idx") / "manifest.json"
    before = json.loads(manifest.read_text())
    assert before["sentence_context"] == f"headline {HEADLINE_WEIGHT}"
    del before["sentence_context"]  # as qa-bot wrote it before sentence vectors leaned
    manifest.write_text(json.dumps(before))
    log: list[str] = []
    _, update = build(small_corpus, tmp_path / "idx", encoder, log)
    assert update.action == "built" and any("rebuilding" in line for line in log)


def write_as_format(index: Index, folder: Path, old: int) -> None:
    """Rewrite a live version folder as earlier qa-bots wrote it: format 4 without each sentence's
    words (and with idf.json), formats 2 and 3 as one JSON store and FAISS files."""
    import faiss

    for lexicon_file in ("words.sqlite3", "words.term.npy", "sentence_words.npy",
                         "sentence_words.offsets.npy"):
        (folder / lexicon_file).unlink()
    (folder / "idf.json").write_text(json.dumps({"russia": 1.0}))
    manifest = asdict(index.manifest) | {"format": old}
    if old == 4:
        (folder / "manifest.json").write_text(json.dumps(manifest))
        return
    for name in ("passages", "sentences"):
        flat = faiss.IndexFlatIP(index.manifest.dim)
        flat.add(np.asarray(getattr(index, f"{name[:-1]}_vectors").vectors()))
        faiss.write_index(flat, str(folder / f"{name}.faiss"))
    store = {
        "articles": [asdict(a.info) | {"text": a.text} for a in index.articles.values()],
        "passages": [{"article": c.article_id, "start": c.start, "end": c.end, "sentences": rows}
                     for c, rows in zip(index.chunks, index.chunk_sentences, strict=True)],
        "sentences": [list(s) for s in index.sentences],
        "entities": [[[e.start, e.end, e.label] for e in entities] for entities in index.sentence_entities],
    } | ({"copies": list(index.copies)} if old >= 3 else {})
    (folder / "store.json").write_text(json.dumps(store))
    for new in ("entity_labels", "search"):
        del manifest[new]
    (folder / "manifest.json").write_text(json.dumps(manifest))
    for array in folder.glob("*.npy"):
        array.unlink()
    (folder / "rows.sqlite3").unlink()
    if old < 3:
        shutil.rmtree(folder / "bm25")
        (folder / "idf.json").unlink()


@pytest.mark.parametrize("old", [2, 3, 4])
def test_an_index_of_an_older_format_is_migrated_without_embedding(
    tmp_path: Path, encoder: Encoder, old: int
) -> None:
    syndicated = tmp_path / "syndicated"  # euronews and the FT carry the same opening passages
    syndicated.mkdir()
    for seed in sorted(SEEDS.glob("00[02]_*.txt")):
        shutil.copy(seed, syndicated / seed.name)
    built, _ = build(syndicated, tmp_path / "idx", encoder)
    copies, entities, chunks = list(built.copies), list(built.sentence_entities), list(built.chunks)
    vectors = np.array(built.sentence_vectors.vectors())
    write_as_format(built, live_folder(tmp_path / "idx"), old)
    log: list[str] = []
    migrated, update = build(syndicated, tmp_path / "idx", encoder, log)
    assert update.action == "loaded" and update.embedded == 0
    assert any(f"migrated from format {old}" in line for line in log)
    assert list(migrated.copies) == copies and any(copies)  # the seeds syndicate passages
    assert list(migrated.sentence_entities) == entities and list(migrated.chunks) == chunks
    assert np.array_equal(migrated.sentence_vectors.vectors(), vectors)
    manifest = json.loads((live_folder(tmp_path / "idx") / "manifest.json").read_text())
    assert manifest["format"] == FORMAT_VERSION
    log.clear()
    build(syndicated, tmp_path / "idx", encoder, log)
    assert not any("migrated" in line for line in log)  # saved: migrated once


def test_inconsistent_store_is_reported(small_corpus: Path, tmp_path: Path, encoder: Encoder) -> None:
    build(small_corpus, tmp_path / "idx", encoder)
    passages = live_folder(tmp_path / "idx") / "passages.rows.npy"
    np.save(passages, np.load(passages)[:-1])
    with pytest.raises(IndexStoreError, match="passage vectors for"):
        load_index(tmp_path / "idx")


@pytest.mark.parametrize("change", ["append", "whole update"])
def test_a_crash_while_writing_leaves_the_old_index_usable(
    small_corpus: Path, tmp_path: Path, encoder: Encoder, monkeypatch: pytest.MonkeyPatch, change: str
) -> None:
    before, _ = build(small_corpus, tmp_path / "idx", encoder)
    if change == "append":
        (small_corpus / "005_new.txt").write_text(NEW_ARTICLE, encoding="utf-8")
    else:
        next(small_corpus.glob("003_*.txt")).rename(small_corpus / "003_renamed.txt")

    def crash(path: Path, vectors: np.ndarray, plan: SearchPlan | None = None) -> SearchPlan:
        path.with_suffix(".npy").write_bytes(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr("qa_bot.index.write_vectors", crash)
    with pytest.raises(IndexStoreError, match="disk full"):
        build(small_corpus, tmp_path / "idx", encoder)
    monkeypatch.undo()
    after = load_index(tmp_path / "idx")
    assert len(after.chunks) == len(before.chunks)
    assert [p.name for p in (tmp_path / "idx").glob("v-*")] == [live_folder(tmp_path / "idx").name]


def test_one_process_writes_at_a_time_and_readers_never_wait(
    small_corpus: Path, tmp_path: Path, encoder: Encoder
) -> None:
    index_dir = tmp_path / "idx"
    build(small_corpus, index_dir, encoder)
    with (index_dir / WRITER_LOCK).open("a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # as another qa-bot writing the index would
        assert build(small_corpus, index_dir, encoder)[1].action == "loaded"  # up to date: no wait
        (small_corpus / "005_new.txt").write_text(NEW_ARTICLE, encoding="utf-8")
        log: list[str] = []
        done: dict[str, IndexUpdate] = {}
        writer = threading.Thread(target=lambda: done.update(
            update=build(small_corpus, index_dir, encoder, log)[1]))
        writer.start()
        writer.join(timeout=2)
        assert writer.is_alive() and any("waiting for it to finish" in line for line in log)
        fcntl.flock(held, fcntl.LOCK_UN)
    writer.join(timeout=120)
    assert done["update"].action == "appended"


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
    assert update.action == "loaded" and list(reopened.sentence_entities) == list(index.sentence_entities)
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


def test_an_index_past_the_exact_limit_is_searched_through_a_graph_and_an_inverted_file(
    small_corpus: Path, tmp_path: Path, encoder: Encoder, monkeypatch: pytest.MonkeyPatch
) -> None:
    exact, _ = build(small_corpus, tmp_path / "exact", encoder)
    monkeypatch.setattr("qa_bot.vectors.EXACT_UP_TO", 10)
    graphs, _ = build(small_corpus, tmp_path / "graphs", encoder)
    folder = live_folder(tmp_path / "graphs")
    manifest = json.loads((folder / "manifest.json").read_text())
    assert {name: plan["kind"] for name, plan in manifest["search"].items()} == \
        {"passages": "hnsw-sq8", "sentences": "ivf-sq8"}
    assert (folder / "passages.hnsw").exists() and (folder / "sentences.ivf").exists()
    query = exact.sentence_vectors.vectors()[7]
    for name in ("passage_vectors", "sentence_vectors"):
        want = getattr(exact, name).search(query, 5)
        got = getattr(graphs, name).search(query, 5)
        assert got[1].tolist() == want[1].tolist() and np.allclose(got[0], want[0])


def test_syndicated_copies_match_the_pairwise_definition() -> None:
    """Rare shingles propose the pairs; the oracle compares every pair of passages."""
    rng = random.Random(1)
    words = [f"w{i}" for i in range(300)]
    for _ in range(20):
        originals = [rng.choices(words, k=rng.randint(1, 30)) for _ in range(40)]
        passages = []
        for _ in range(80):  # copies with words dropped or common words put in
            text = list(rng.choice(originals))
            for _ in range(rng.randint(0, 6)):
                if text and rng.random() < 0.5:
                    text.pop(rng.randrange(len(text)))
                else:
                    text.insert(rng.randrange(len(text) + 1), rng.choice(words[:20]))
            passages.append((f"article {rng.randint(0, 30)}", " ".join(text)))
        shingles = [_shingles(text) for _, text in passages]
        expected = [[o for o in range(len(passages)) if passages[o][0] != passages[c][0]
                     and len(shingles[c] & shingles[o])
                     >= SYNDICATION_OVERLAP * min(len(shingles[c]), len(shingles[o]))]
                    for c in range(len(passages))]
        found = syndicated_copies(passages)
        assert found == expected and any(found)


def test_an_unchanged_corpus_is_not_read_again(small_corpus: Path, tmp_path: Path, encoder: Encoder,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    build(small_corpus, tmp_path / "idx", encoder)
    read: list[str] = []
    fingerprint = corpus_module._fingerprint

    def counted(path: Path) -> str:
        read.append(path.name)
        return fingerprint(path)

    monkeypatch.setattr(corpus_module, "_fingerprint", counted)
    _, update = build(small_corpus, tmp_path / "idx", encoder)
    assert update.action == "loaded" and read == []
    # Same size, new bytes and time: that file alone is read, and the change is seen.
    article = sorted(small_corpus.iterdir())[0]
    text = article.read_text(encoding="utf-8")
    article.write_text(text.replace("Russia", "Rossia", 1), encoding="utf-8")
    _, update = build(small_corpus, tmp_path / "idx", encoder)
    assert read[0] == article.name and update.action == "updated"
    # A file only touched is read once more, then recorded as it is.
    read.clear()
    os.utime(article, ns=(time.time_ns(), time.time_ns()))
    assert build(small_corpus, tmp_path / "idx", encoder)[1].action == "loaded" and read == [article.name]
    read.clear()
    assert build(small_corpus, tmp_path / "idx", encoder)[1].action == "loaded" and read == []
