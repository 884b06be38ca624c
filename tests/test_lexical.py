"""The lexical side read from the index: stored word numbers say what the sentence texts say."""

from __future__ import annotations

import json
from pathlib import Path

from qa_bot.answer import Answerer
from qa_bot.lexical import Lexicon, terms, words
from qa_bot.retrieval import _Overlap, _phrases

QUESTIONS = Path(__file__).parent / "data" / "extra_questions.jsonl"


def test_stored_words_give_the_coverage_and_phrases_of_the_sentence_texts(answerer: Answerer) -> None:
    """The oracle is the definition on text: the question terms (IDF-weighted) and word pairs a
    sentence holds, tokenised afresh."""
    index, retriever = answerer.index, answerer.retriever
    questions = [json.loads(line)["q"] for line in QUESTIONS.read_text().splitlines()[:15]]
    questions += ["Russia's troops left Hmeimim", "who wrote it", "qwertyuiop zxcvb"]
    for text in questions:
        question = retriever.question(text, answerer.encoder.encode_questions([text])[0])
        overlap = _Overlap(index.lexicon, question)
        weights = question.term_weights
        for row in range(len(index.sentences)):
            sentence = index.sentence_text(row)
            present = set(terms(sentence))
            expected = sum(w for t, w in weights.items() if t in present) / sum(weights.values()) \
                if weights else 0.0
            assert overlap.coverage(row) == expected, (text, sentence)
            assert overlap.phrases(row) == len(question.phrases & _phrases(sentence)), (text, sentence)


def test_term_weights_come_from_the_passages(answerer: Answerer) -> None:
    lexicon = answerer.index.lexicon
    assert isinstance(lexicon, Lexicon)
    weights = lexicon.term_weights(terms("Russian soldiers left the Tartus base zzyzx"))
    assert list(weights) == terms("Russian soldiers left the Tartus base zzyzx")
    assert weights["zzyzx"] == lexicon.unknown_idf > max(w for t, w in weights.items() if t != "zzyzx")
    assert weights["tartus"] > weights["russian"]  # rarer in the passages
    assert set(lexicon.word_numbers(words("the Tartus zzyzx"))) == {"the", "tartus"}
