import pytest

from qa_bot.chunking import chunk_article, paragraphs

TEXT = (
    "A headline without a full stop\n\n"
    "One. Two is here. Three follows. Four ends it. Five.\n\n"
    "A second paragraph with exactly enough words to stand alone here."
)


def test_chunks_are_verbatim_slices_with_sentence_offsets() -> None:
    for chunk in chunk_article("a.txt", TEXT):
        assert TEXT[chunk.start : chunk.end] == chunk.text
        assert all(chunk.start <= s < e <= chunk.end for s, e in chunk.sentences)


def test_windows_overlap_and_cover_every_sentence() -> None:
    chunks = chunk_article("a.txt", TEXT, sentences=3, overlap=1)
    first_block = [c for c in chunks if "second paragraph" not in c.text]
    assert [len(c.sentences) for c in first_block] == [3, 3, 2]
    assert first_block[0].sentences[-1] == first_block[1].sentences[0]
    covered = {s for c in chunks for s in c.sentences}
    assert len(covered) == 1 + 5 + 1


def test_headline_rides_with_the_next_paragraph() -> None:
    first = chunk_article("a.txt", TEXT)[0]
    assert first.text.startswith("A headline without a full stop\n\nOne.")


def test_windows_never_cross_paragraphs() -> None:
    for chunk in chunk_article("a.txt", TEXT):
        assert not ("Five." in chunk.text and "second paragraph" in chunk.text)


def test_paragraph_spans() -> None:
    assert [TEXT[s:e] for s, e in paragraphs(TEXT)][2].startswith("A second paragraph")


def test_bad_window_settings_are_rejected() -> None:
    with pytest.raises(ValueError):
        chunk_article("a.txt", TEXT, sentences=2, overlap=2)
