import json
from pathlib import Path

import pytest

from qa_bot.corpus import load_corpus, scan
from qa_bot.errors import CorpusError

ARTICLE = (
    "The harbour reopened on Monday after a three-week strike by dock workers, "
    "the port authority said in a statement."
)


def test_seeds_load_with_metadata(tmp_path: Path) -> None:
    corpus = load_corpus(Path(__file__).resolve().parents[1] / "seeds")
    assert len(corpus.articles) == 5 and not corpus.skipped
    by_id = {a.info.id: a.info for a in corpus.articles}
    assert by_id["002_0fe2ab4afbeef895.txt"].author == "Alona Mazurenko"


def test_html_article_text_is_extracted(tmp_path: Path) -> None:
    (tmp_path / "page.html").write_text(
        "<html><head><title>Harbour reopens | Port News</title></head><body>"
        "<nav><a href='/'>Home</a> <a href='/world'>World</a></nav>"
        f"<article><h1>Harbour reopens</h1><p>{ARTICLE}</p>"
        "<p>Ships queued outside the breakwater for most of the morning before the first berth cleared.</p>"
        "</article><footer>© 2024 Port News</footer></body></html>",
        encoding="utf-8",
    )
    (article,) = load_corpus(tmp_path).articles
    assert ARTICLE in article.text
    assert "Home" not in article.text and "©" not in article.text
    assert article.info.title == "Harbour reopens"


def test_json_and_jsonl_records(tmp_path: Path) -> None:
    record = {
        "title": "Harbour reopens",
        "text": ARTICLE,
        "url": "https://example.org/h",
        "published": "2024-05-06T10:00:00Z",
        "outlet": "Port News",
    }
    (tmp_path / "one.json").write_text(json.dumps(record), encoding="utf-8")
    (tmp_path / "many.jsonl").write_text(
        "\n".join(json.dumps(record | {"title": f"Part {i}"}) for i in (1, 2)), encoding="utf-8"
    )
    articles = {a.info.id: a for a in load_corpus(tmp_path).articles}
    assert set(articles) == {"one.json", "many.jsonl#1", "many.jsonl#2"}
    info = articles["one.json"].info
    assert (info.title, info.outlet, info.published, info.url) == (
        "Harbour reopens",
        "Port News",
        "2024-05-06",
        "https://example.org/h",
    )
    assert ARTICLE in articles["one.json"].text


def test_bad_files_are_skipped_with_a_reason(tmp_path: Path) -> None:
    (tmp_path / "good.txt").write_text(ARTICLE, encoding="utf-8")
    (tmp_path / "empty.txt").write_text("", encoding="utf-8")
    (tmp_path / "binary.txt").write_bytes(b"\x89PNG\x00\x00\x01")
    (tmp_path / "latin1.txt").write_bytes("Caf\xe9 cr\xe8me".encode("latin-1"))
    (tmp_path / "broken.json").write_text("{not json", encoding="utf-8")
    (tmp_path / "notes.pdf").write_bytes(b"%PDF")
    corpus = load_corpus(tmp_path)
    assert [a.info.id for a in corpus.articles] == ["good.txt"]
    reasons = {s.name: s.reason for s in corpus.skipped}
    assert set(reasons) == {"empty.txt", "binary.txt", "latin1.txt", "broken.json"}
    assert "UTF-8" in reasons["latin1.txt"] and "binary" in reasons["binary.txt"]


def test_empty_or_missing_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match="no readable article") as caught:
        load_corpus(tmp_path)
    assert caught.value.exit_code == 2
    with pytest.raises(CorpusError, match="does not exist"):
        scan(tmp_path / "missing")


def test_markdown_marks_images_and_links_are_read_as_plain_text(tmp_path: Path) -> None:
    (tmp_path / "story.md").write_text(
        "[Home](/) · [Science](/science) · [Health](/health)\n\n# Harbour *reopens* after strike\n\n"
        "![Cranes at dawn](https://example.org/cranes.jpg)\n\n"
        f"**{ARTICLE}** More in [our explainer](/x).\n\n> Sign up for our weekly newsletter\n\n---\n",
        encoding="utf-8")
    (article,) = load_corpus(tmp_path).articles
    assert article.info.title == "Harbour reopens after strike"
    assert f"{ARTICLE} More in our explainer." in article.text
    assert not any(mark in article.text for mark in ("](", "**", "Cranes", "newsletter", "Home"))
