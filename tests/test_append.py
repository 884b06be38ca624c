"""Appending: added files go into a tail beside the indexed ones, which are neither re-read nor
rewritten; a changed or removed file, or a tail grown too big, updates the whole index."""

import json
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from qa_bot.answer import Answerer
from qa_bot.config import Settings
from qa_bot.encoder import Encoder
from qa_bot.index import CURRENT, TAIL, Index, IndexUpdate, load_index, open_index
from qa_bot.lexical import Lexicon, StackedLexicon, words
from qa_bot.vectors import SavedVectors, SearchPlan, StackedVectors
from tests.conftest import DATA, SEEDS, TAGGER

SOLDIERS = "how many soldiers left Damascus?"
SHARED_LINE = "Weekend Desk Special Edition"
# A headline that ends as a sentence does: no count of repeated short lines would notice it.
TEASED = "Is the new Leith ferry terminal worth the two-year wait?"
TEASING_ARTICLE = (
    "Council approves a second tram line to the airport\n\nThe city council voted on Tuesday to build a "
    "second tram line to the airport, at a cost of £210 million.\n\n" + TEASED + "\n\nWork on the "
    "line is due to start next spring and to finish in 2029, the council's transport chief said."
)
OWN_ARTICLE = (
    "{line}\n\nHarbour officials in Kelso said on Monday that the new ferry terminal would open in "
    "March, two years late and 40% over its budget.\n\nThe terminal will handle six crossings a day, "
    "the port authority said in a statement."
)


def seed(prefix: str) -> Path:
    return next(SEEDS.glob(f"{prefix}_*.txt"))


@pytest.fixture(scope="module")
def built_base(tmp_path_factory: pytest.TempPathFactory, encoder: Encoder) -> tuple[Path, Path]:
    """An index of 35 newsroom articles, the euronews seed and one article of our own, built once."""
    root = tmp_path_factory.mktemp("append-base")
    corpus = root / "corpus"
    shutil.copytree(DATA / "newsroom_tune", corpus)
    shutil.copy(seed("000"), corpus)
    (corpus / "own_1.txt").write_text(OWN_ARTICLE.format(line=SHARED_LINE), encoding="utf-8")
    (corpus / "own_teasing.txt").write_text(TEASING_ARTICLE, encoding="utf-8")
    open_index(Settings(corpus_dir=corpus, index_dir=root / "index"), encoder, tagger=TAGGER)
    return corpus, root / "index"


@pytest.fixture
def base(built_base: tuple[Path, Path], tmp_path: Path) -> Settings:
    """A copy of the base corpus and index that a test may change."""
    corpus, index_dir = built_base
    shutil.copytree(corpus, tmp_path / "corpus")
    shutil.copytree(index_dir, tmp_path / "index")
    return Settings(corpus_dir=tmp_path / "corpus", index_dir=tmp_path / "index")


def update(settings: Settings, encoder: Encoder, log: list[str] | None = None) -> tuple[Index, IndexUpdate]:
    return open_index(settings, encoder, (log if log is not None else []).append, tagger=TAGGER)


def live(settings: Settings) -> Path:
    return settings.index_dir / (settings.index_dir / CURRENT).read_text().strip()


def test_an_added_file_is_appended_and_nothing_indexed_is_read_or_rewritten(
    base: Settings, encoder: Encoder
) -> None:
    before = load_index(base.index_dir)
    question = json.loads((DATA / "newsroom_tune_questions.jsonl").read_text().splitlines()[0])["q"]
    old_answer = Answerer(base, encoder, before, IndexUpdate("loaded", 0, 0, ())).ask(question)
    old_files = {f.relative_to(live(base)): f.stat().st_ino for f in live(base).rglob("*")
                 if f.is_file() and f.name != "manifest.json"}
    shutil.copy(seed("002"), base.corpus_dir)

    log: list[str] = []
    index, done = update(base, encoder, log)

    assert (done.action, done.embedded) == ("appended", 31)  # 002's passages, sentences and headline
    assert any("1 articles appended" in line for line in log)
    assert {f: (live(base) / f).stat().st_ino for f in old_files} == old_files  # linked, not written
    assert (live(base) / TAIL).is_dir()
    answerer = Answerer(base, encoder, index, done)
    found = answerer.ask(SOLDIERS)
    assert found.answered and "400 soldiers" in (found.quote or "")
    assert any(a.id.startswith("002_") for a in (found.passages[0].source, *found.passages[0].also_in))
    again = answerer.ask(question)
    assert (again.quote, [p.source.id for p in again.passages]) == \
        (old_answer.quote, [p.source.id for p in old_answer.passages])
    assert update(base, encoder)[1].action == "loaded"


def test_copies_are_found_between_the_tail_and_the_indexed_passages(base: Settings, encoder: Encoder) -> None:
    shutil.copy(seed("002"), base.corpus_dir)  # the FT text that euronews (000, indexed) carries
    index, done = update(base, encoder)
    assert done.action == "appended"
    assert index.base is not None and index.tail is not None
    first_tail = len(index.base.chunks)
    tail_with_copies = [r for r in range(first_tail, len(index.chunks)) if index.copies[r]]
    assert tail_with_copies
    for row in tail_with_copies:
        for other in index.copies[row]:
            assert row in index.copies[other]  # both ways
            assert index.chunks[other].article_id.startswith("000_")

    shutil.copy(seed("001"), base.corpus_dir)  # the tail is written again, its copies kept
    index, done = update(base, encoder)
    assert done.action == "appended" and done.reused == 39 and done.embedded > 0
    found = Answerer(base, encoder, index, done).ask(SOLDIERS)
    ids = {a.id for a in (found.passages[0].source, *found.passages[0].also_in)}
    assert any(i.startswith("000_") for i in ids) and any(i.startswith("002_") for i in ids)


def test_appended_words_keep_the_base_numbers_and_passages_score_with_its_idf(
    base: Settings, encoder: Encoder
) -> None:
    shutil.copy(seed("002"), base.corpus_dir)
    index, _ = update(base, encoder)
    assert index.base is not None and index.tail is not None
    lexicon = index.lexicon
    assert isinstance(lexicon, StackedLexicon) and isinstance(index.base.lexicon, Lexicon)
    first_tail = len(index.base.sentences)
    for row in [0, 1, first_tail - 1, *range(first_tail, len(index.sentences))]:
        text_words = words(index.sentence_text(row))
        numbers = lexicon.word_numbers(text_words)
        stored, lengths = lexicon.sentence_words([row])
        assert stored.tolist() == [numbers[w] for w in text_words] and lengths.tolist() == [len(text_words)]
    # Base and tail rows asked for together come back in the order asked.
    rows = [first_tail, 0, first_tail + 1, 1]
    together, lengths = lexicon.sentence_words(rows)
    assert together.tolist() == [n for r in rows for n in lexicon.sentence_words([r])[0].tolist()]

    scores = lexicon.scores("soldiers withdrew Damascus", len(index.chunks))
    assert len(scores) == len(index.chunks)
    assert np.array_equal(scores[: len(index.base.chunks)],
                          index.base.lexicon.scores("soldiers withdrew Damascus", len(index.base.chunks)))
    assert scores[len(index.base.chunks):].max() > 0


def test_a_changed_file_updates_the_whole_index_and_merges_the_tail(base: Settings, encoder: Encoder) -> None:
    shutil.copy(seed("002"), base.corpus_dir)
    update(base, encoder)
    with (base.corpus_dir / "own_1.txt").open("a", encoding="utf-8") as f:
        f.write("\n\nThe first ferry is named after the harbour master, who retires in May.")
    index, done = update(base, encoder)
    assert done.action == "updated" and index.tail is None
    assert not (live(base) / TAIL).exists() and not load_index(base.index_dir).manifest.tail
    assert any(a.startswith("002_") for a in index.articles)
    assert "harbour master" in index.articles["own_1.txt"].text


def test_a_line_an_added_file_shares_with_one_indexed_text_updates_the_whole_index(
    base: Settings, encoder: Encoder
) -> None:
    assert SHARED_LINE in load_index(base.index_dir).articles["own_1.txt"].text
    (base.corpus_dir / "own_2.txt").write_text(
        OWN_ARTICLE.format(line=SHARED_LINE).replace("Kelso", "Leith"), encoding="utf-8")
    log: list[str] = []
    index, done = update(base, encoder, log)
    assert done.action == "updated"
    assert any("now in two or more files" in line for line in log)
    # Both files are cleaned with the line as furniture, as a build from scratch would.
    assert SHARED_LINE not in index.articles["own_1.txt"].text
    assert SHARED_LINE not in index.articles["own_2.txt"].text


def test_an_added_headline_that_is_a_line_of_an_indexed_article_updates_the_whole_index(
    base: Settings, encoder: Encoder
) -> None:
    assert TEASED in load_index(base.index_dir).articles["own_teasing.txt"].text  # no headline yet
    (base.corpus_dir / "own_3.txt").write_text(
        f"{TEASED}\n\nHarbour officials in Leith said on Monday that the new ferry terminal had opened, two "
        "years late and 40% over its budget.\n\nThe terminal will handle six crossings a day, the port "
        "authority said.", encoding="utf-8")
    log: list[str] = []
    index, done = update(base, encoder, log)
    assert done.action == "updated"
    assert any("of an added article is a line of an indexed one" in line for line in log)
    # The line is a teaser for the added article now, as a build from scratch would judge it.
    assert TEASED not in index.articles["own_teasing.txt"].text
    assert index.articles["own_3.txt"].info.title == TEASED


def test_a_tail_past_its_limit_is_merged_into_the_index(
    base: Settings, encoder: Encoder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("qa_bot.index.TAIL_MAX", 10)
    shutil.copy(seed("002"), base.corpus_dir)
    log: list[str] = []
    index, done = update(base, encoder, log)
    assert done.action == "updated" and index.tail is None
    assert any("more than the index keeps beside its own: merging" in line for line in log)


def test_an_index_written_before_appending_is_updated_whole_once(base: Settings, encoder: Encoder) -> None:
    rows = live(base) / "rows.sqlite3"
    with sqlite3.connect(rows) as db:
        db.execute("DROP TABLE teasers")
    shutil.copy(seed("002"), base.corpus_dir)
    log: list[str] = []
    assert update(base, encoder, log)[1].action == "updated"
    assert any("written before appending" in line for line in log)
    shutil.copy(seed("001"), base.corpus_dir)
    assert update(base, encoder)[1].action == "appended"


def test_stacked_vectors_search_as_one_matrix(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    vectors = rng.normal(size=(300, 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    np.save(tmp_path / "base.npy", vectors[:250])
    np.save(tmp_path / "tail.npy", vectors[250:])
    stacked = StackedVectors(SavedVectors.open(tmp_path / "base", SearchPlan("exact")),
                             SavedVectors.open(tmp_path / "tail", SearchPlan("exact")))
    assert len(stacked) == 300
    for query in vectors[::37]:
        scores, rows = stacked.search(query, 10)
        exact = np.argsort(-(vectors @ query))[:10]
        assert rows.tolist() == exact.tolist()
        assert np.allclose(scores, vectors[exact] @ query)
    mixed = [299, 3, 250, 249]
    assert np.array_equal(stacked.vectors_of(mixed), vectors[mixed])
    assert np.array_equal(stacked.vectors(), vectors)
