from qa_bot.sentences import split_sentences


def texts(paragraph: str) -> list[str]:
    return [paragraph[s:e] for s, e in split_sentences(paragraph)]


def test_splits_on_terminators_and_keeps_quotes_with_their_sentence() -> None:
    para = "He said “we are fine.” Then he left! Did he? Yes."
    assert texts(para) == ["He said “we are fine.”", "Then he left!", "Did he?", "Yes."]


def test_abbreviations_initials_and_decimals_do_not_split() -> None:
    para = "The Kremlin confirmed on Dec. 11 that B. Assad fled, U.S. officials said 3.5 times."
    assert texts(para) == [para]


def test_glued_sentences_split_without_losing_characters() -> None:
    para = "his departure was unplanned.View on euronews"
    assert texts(para) == ["his departure was unplanned.", "View on euronews"]


def test_offsets_point_into_the_text() -> None:
    text = "Intro.\n\nFirst one. Second one."
    start = text.index("First")
    spans = split_sentences(text[start:], offset=start)
    assert [text[s:e] for s, e in spans] == ["First one.", "Second one."]
