"""Answer quality on the seeds, with the real model and a real FAISS index."""

import pytest

from qa_bot.answer import Answerer
from qa_bot.errors import QuestionError
from qa_bot.evaluation import evaluate, read_questions
from tests.conftest import DATA


def test_dev_set_meets_the_release_bars(answerer: Answerer) -> None:
    report = evaluate(answerer, read_questions(DATA / "dev_questions.jsonl"))
    m = report.metrics()
    assert m["hit@1"] >= 0.90, report.misses
    assert m["hit@3"] == 1.0, report.misses
    assert m["quote_contains_answer"] >= 0.85, report.misses
    assert m["abstention"] >= 0.75, report.misses
    assert m["false_abstention"] <= 0.05, report.misses
    assert report.duplicate_top3 == 0, report.misses


def test_extra_questions_hold_up(answerer: Answerer) -> None:
    """Our own 30 answerable and 12 unanswerable questions, written to check we do not overfit."""
    m = evaluate(answerer, read_questions(DATA / "extra_questions.jsonl")).metrics()
    assert m["hit@1"] >= 0.90 and m["hit@3"] >= 0.95
    assert m["abstention"] >= 0.75 and m["false_abstention"] <= 0.05


def test_what_x_said_is_quoted_from_where_x_speaks(answerer: Answerer) -> None:
    lavrov = answerer.ask("What did Lavrov say about Syria?")
    assert lavrov.answered and "Lavrov said" in (lavrov.quote or "")
    assad = answerer.ask("What did Assad say in March about Russian arms?")
    assert assad.answered and "Assad announced in late March" in (assad.quote or "")


def test_the_newspaper_said_speaks_for_the_paper_named_just_before(answerer: Answerer) -> None:
    question = "What did Asharq al-Awsat say the Kremlin had started doing regarding the Assad regime?"
    answer = answerer.ask(question)
    assert answer.answered and "begun to turn away from the regime" in (answer.quote or "")
    assert not answerer.with_rules(answerer.rules - {"speaker-before-conf"}).ask(question).answered


def test_according_to_the_outlet_quotes_from_the_sentence_naming_it(answerer: Answerer) -> None:
    answer = answerer.ask("Which Turkish channel reported Moscow's request for help?")
    assert answer.answered and "CNN Türk" in (answer.quote or "")
    assert "According to the outlet’s correspondent" in (answer.quote or "")


def test_an_acronym_is_also_held_by_the_words_the_corpus_spells_it_out_in(answerer: Answerer) -> None:
    # article 001 writes "Hayat Tahrir al-Sham (HTS)"; 002 only ever writes the name
    vector = answerer.encoder.encode_questions(["x"])[0]
    question = answerer.retriever.question("What did the ISW and the UN say about HTS?", vector)
    assert question.spelled_out == (("hts", frozenset({"hayat", "tahrir", "al-sham"})),)  # ISW, UN: never
    answer = answerer.ask("why did Russian envoys meet with HTS?")
    assert answer.answered and "negotiate the safe passage" in (answer.quote or "")
    without = answerer.with_rules(answerer.rules - {"acronyms"}).ask("why did Russian envoys meet with HTS?")
    assert not without.answered


def test_a_hyphenated_name_is_found_whole_or_after_its_prefix(answerer: Answerer) -> None:
    # the article writes "al-Awsat" (never "Awsat" alone) and "Assad" (never "pro-Assad")
    based = answerer.ask("Where is the Asharq al-Awsat newspaper based?")
    assert based.answered and "London-based" in (based.quote or "")
    clashes = "When did the clashes between pro-Assad forces and the armed opposition start?"
    assert answerer.ask(clashes).answered
    # a name no article holds still costs the answer its confidence
    assert not answerer.ask("Where is the al-Watan newspaper based?").answered


def test_held_out_questions_on_the_seeds(answerer: Answerer) -> None:
    """25 questions written by someone who had not seen the code; a regression guard, not a bar."""
    m = evaluate(answerer, read_questions(DATA / "seeds_holdout_questions.jsonl")).metrics()
    assert m["hit@3"] >= 0.80 and m["abstention"] >= 0.85 and m["false_abstention"] <= 0.12


def test_unseen_corpus_with_other_page_furniture(corpus2_answerer: Answerer) -> None:
    """Eight synthetic articles with cookie banners, paywalls, captions: a tuning set (rules quote it)."""
    report = evaluate(corpus2_answerer, read_questions(DATA / "corpus2_questions.jsonl"))
    m = report.metrics()
    assert m["hit@1"] >= 0.85 and m["hit@3"] >= 0.95, report.misses
    assert m["abstention"] >= 0.75 and m["false_abstention"] <= 0.05, report.misses


@pytest.mark.parametrize(("question", "quoted"), [
    ("How many Iranian soldiers left Syria?", False),  # a number, but of Russian officials
    ("What did Erdogan say about Assad's downfall?", False),  # named, but not speaking
    ("How many soldiers left Damascus?", True),
    ("What did the Russian embassy staff member tell TASS?", True),
])
def test_quotes_of_the_wrong_kind_are_not_answers(answerer: Answerer, question: str, quoted: bool) -> None:
    assert answerer.ask(question).answered is quoted


def test_the_neighbouring_sentence_joins_the_quote_when_it_holds_the_answer(
    corpus2_answerer: Answerer,
) -> None:
    answer = corpus2_answerer.ask("Who is Turkey's top diplomat at its reopened mission in Damascus?")
    assert answer.quote is not None and "Burhan Koroglu" in answer.quote
    assert answer.quote in answer.passages[0].text


def test_damascus_question_quotes_the_sentence_and_names_the_syndicated_copy(
    answerer: Answerer,
) -> None:
    answer = answerer.ask("how many soldiers left Damascus?")
    assert answer.answered and answer.quote is not None and "400" in answer.quote
    top = answer.passages[0]
    assert answer.quote in top.text
    # The FT's report (dated, with its author), carried word for word by euronews (undated): the
    # passage is credited to the FT, at the FT article's own offsets, with euronews "also in".
    assert top.source.id.startswith("002") and top.source.published == "2024-12-16"
    assert answerer.index.articles[top.source.id].text[top.start:top.end] == top.text
    assert [a.id[:3] for a in top.also_in] == ["000"]


def test_quotes_are_verbatim_slices_of_the_cleaned_article(answerer: Answerer) -> None:
    for question in ("Who is Kamal Lababidi?", "What is in Qudsayya?", "When did the revolution begin?"):
        for passage in answerer.ask(question).passages:
            article = answerer.index.articles[passage.source.id]
            assert article.text[passage.start : passage.end] == passage.text
            assert passage.quote is not None and passage.quote in passage.text


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("who is Lababidi?", "Lababidi"),
        ("what is in Qudsayya?", "Qudsayya"),
        ("where did the 400 go?", "400"),
        ("Khmeimim airbase", "Khmeimim"),
    ],
)
def test_names_and_numbers_are_found_lexically(answerer: Answerer, question: str, expected: str) -> None:
    assert expected in answerer.ask(question).passages[0].text


def test_a_syndicated_passage_is_shown_once(answerer: Answerer) -> None:
    answer = answerer.ask("Russia withdrew at least 400 soldiers from the Damascus region")
    texts = [p.text for p in answer.passages]
    first_sentence = "After negotiations with the new Syrian leadership"
    assert sum(first_sentence in t for t in texts) == 1


@pytest.mark.parametrize(
    "question",
    [
        "What is the weather in Berlin tomorrow?",
        "Which football club does Anagram support?",
        "What is a good recipe for hummus?",
    ],
)
def test_off_topic_questions_are_not_answered_but_keep_closest_passages(
    answerer: Answerer,
    question: str,
) -> None:
    answer = answerer.ask(question)
    assert not answer.answered and answer.quote is None
    assert answer.passages and answer.article_count == 5


def test_author_question_is_answered_by_the_byline(answerer: Answerer) -> None:
    answer = answerer.ask("Who wrote the article about the FT report?")
    assert answer.answered and answer.quote is not None and "Alona Mazurenko" in answer.quote


@pytest.mark.parametrize("question", ["", "   \n\t"])
def test_empty_question_is_refused(answerer: Answerer, question: str) -> None:
    with pytest.raises(QuestionError, match="empty"):
        answerer.ask(question)


def test_huge_question_is_refused(answerer: Answerer) -> None:
    with pytest.raises(QuestionError, match="limit is 2000"):
        answerer.ask("why " * 600)


def test_top_k_limits_the_passages(answerer: Answerer) -> None:
    assert len(answerer.ask("what is Russia doing?", top_k=2).passages) == 2
    assert len(answerer.ask("what is Russia doing?").passages) == 5


@pytest.mark.parametrize(("question", "says"), [
    ("???", "no words"),
    ("12 400", "no words"),
    ("\u200b\u200b", "empty"),
    ("what is the", "only small words"),
    ("who are they?", "only small words"),
    ("Damascus", "only a name"),
    ("Bashar al-Assad?", "only a name"),
])
def test_questions_with_nothing_to_search_get_a_hint(answerer: Answerer, question: str, says: str) -> None:
    with pytest.raises(QuestionError, match=says) as caught:
        answerer.ask(question)
    assert caught.value.hint is not None and "?" in caught.value.hint


def test_a_name_in_a_real_question_is_searched(answerer: Answerer) -> None:
    assert answerer.ask("Damascus airport?").passages
    assert answerer.ask("damascus").passages  # lower case: maybe a keyword search, searched


def test_newsroom_tuning_half_holds_its_level(newsroom_answerer: Answerer) -> None:
    """120 + 34 questions over 35 articles of three other outlets, written by someone who had not
    seen the code; the tuning half (the held-out half is measured only for releases, see README).
    A regression guard at the measured level, not the issue's bar, which it does not reach yet."""
    report = evaluate(newsroom_answerer, read_questions(DATA / "newsroom_tune_questions.jsonl"))
    m = report.metrics()
    assert m["hit@1"] >= 0.85 and m["hit@3"] >= 0.95, report.misses
    assert m["quote_contains_answer"] >= 0.77 and m["false_abstention"] <= 0.10, report.misses
    assert m["abstention"] >= 0.72 and report.duplicate_top3 == 0, report.misses
    assert {"after-headline", "furniture-only", "how-many", "why"} <= set(report.by_shape())


def test_newsroom_second_tuning_set_holds_its_level(newsroom_answerer: Answerer) -> None:
    """65 + 35 more questions over the same 35 articles, written later by another writer who had
    not seen the code, so rules tuned on the first set meet fresh questions. A regression guard."""
    report = evaluate(newsroom_answerer, read_questions(DATA / "newsroom_tune2_questions.jsonl"))
    m = report.metrics()
    assert m["hit@1"] >= 0.87 and m["hit@3"] >= 0.95, report.misses
    assert m["quote_contains_answer"] >= 0.78 and m["false_abstention"] <= 0.10, report.misses
    assert m["abstention"] >= 0.54 and report.duplicate_top3 == 0, report.misses


def test_newsroom3_holds_its_level(newsroom3_answerer: Answerer) -> None:
    """58 + 32 questions over 14 articles of two more outlets (a radio site's text pages, a tech
    weekly's HTML with readers' comments), written by someone who had not seen the code. A tuning
    set since the release that added it; a regression guard at the measured level."""
    report = evaluate(newsroom3_answerer, read_questions(DATA / "newsroom3_questions.jsonl"))
    m = report.metrics()
    assert m["hit@1"] >= 0.79 and m["hit@3"] >= 0.95, report.misses
    assert m["quote_contains_answer"] >= 0.74 and m["false_abstention"] <= 0.10, report.misses
    assert m["abstention"] >= 0.47 and report.duplicate_top3 == 0, report.misses


def test_third_seeds_question_set_holds_its_level(answerer: Answerer) -> None:
    """48 + 22 questions over the seeds by a writer who had not seen the code (a tuning set)."""
    report = evaluate(answerer, read_questions(DATA / "seeds_tune3_questions.jsonl"))
    m = report.metrics()
    assert m["hit@1"] >= 0.92 and m["hit@3"] >= 0.95, report.misses
    assert m["quote_contains_answer"] >= 0.85 and m["false_abstention"] <= 0.05, report.misses
    assert m["abstention"] >= 0.55, report.misses


@pytest.mark.parametrize(("question", "quoted"), [
    # the name is in the sentence before the quote that matches
    ("Who called the closure of the Crestwell factory a hammer blow for Skelmoor?", "Fiona Garside"),
    # the sentence that restates the question holds no new sum; the next one does
    ("How much did the malaria vaccine trial in Tanzania cost?", "$18.5 million"),
    # '"…," she said': the quote starts at the sentence naming her
    ("Who said Thornsett Fields floods every winter?", "Hannah Coulthard"),
    ("Who said she wanted to see how the sodium batteries cope in a Swedish winter?", "Priya Raman"),
    # the lead restates the headline and holds a date of its own; the question's "next year's"
    # is in the sentence that answers
    ("When will next year's Brackenford Food Festival be held?", "12 and 13 September"),
    ("Which journal published the discovery of water vapour on K2-188b?", "Astrophysical Journal Letters"),
    # the lead's "on Saturday afternoon" answers "what time" less than "at 4.25pm" does…
    ("What time did Sinabung's Saturday eruption start?", "4.25pm"),
    ("When will the railway between Calderbeck and Skelmoor reopen after the viaduct repairs?",
     "Saturday 27 July to Sunday 8 September"),
    # …but a day of the week is what "which day" asks for
    ("which day are harrowby garden waste bins going to be emptied on now", "Fridays"),
])
def test_the_quote_holds_the_item_asked_for(newsroom_answerer: Answerer, question: str, quoted: str) -> None:
    answer = newsroom_answerer.ask(question)
    assert answer.answered and answer.quote is not None and quoted in answer.quote


def test_a_headline_is_context_rarely_the_quote(newsroom_answerer: Answerer) -> None:
    # the standfirst "Crestwell Foods to move production to Leicestershire…" names the firm and a
    # place; the sentence naming its chief executive comes first all the same
    question = "Who is Crestwell Foods' chief executive?"
    first = newsroom_answerer.ask(question).passages[0]
    assert "Richard Pawson" in (first.quote or "")
    without = newsroom_answerer.with_rules(newsroom_answerer.rules - {"heading-quote"}).ask(question)
    assert (without.passages[0].quote or "").startswith("Crestwell Foods to move production to")
    # a question the headline's words answer still finds its article first
    answer = newsroom_answerer.ask("Where is Crestwell Foods moving its biscuit production to?")
    assert answer.passages[0].source.id.startswith("nc_05")


def test_a_name_inside_a_hyphenated_word_is_mentioned(newsroom_answerer: Answerer) -> None:
    # the article never writes "London" alone, only "a London-based ad network"
    answer = newsroom_answerer.ask("Name the London ad network that was receiving Somnia users' sleep data.")
    assert answer.answered and "Brightpath Media" in (answer.quote or "")


def test_the_confidence_reads_the_whole_quote(newsroom_answerer: Answerer) -> None:
    # "…plans a larger trial involving 15,000 children…" names the trial; "It is expected to begin
    # in January 2017" holds the date: the quote is both, and both count
    question = "When is the larger follow-up malaria vaccine trial due to start?"
    answer = newsroom_answerer.ask(question)
    quote = answer.quote or ""
    assert answer.answered and "larger trial" in quote and "January 2017" in quote
    without = newsroom_answerer.with_rules(newsroom_answerer.rules - {"quote-coverage"})
    assert not without.ask(question).answered


@pytest.mark.parametrize(("question", "answered"), [
    ("how many homes tuned in to the salt road during its first month", True),  # 61 million households
    ("how many staff are being let go at the pennsylvania washer factory", True),  # 640 workers
    ("how many employees will the combined Brightwater and Tamsin Freight have", False),  # 9,800 trucks
    ("How many Crestwell Foods workers have been offered jobs at the Coalville site?", False),  # 130 miles
])
def test_a_count_of_something_alike_answers_how_many(newsroom_answerer: Answerer, question: str,
                                                      answered: bool) -> None:
    assert newsroom_answerer.ask(question).answered is answered
    without = newsroom_answerer.with_rules(newsroom_answerer.rules - {"other-count"})
    assert not without.ask(question).answered


def test_a_teaser_for_another_story_is_no_answer(newsroom_answerer: Answerer) -> None:
    answer = newsroom_answerer.ask("Did a drone fly through the Sinabung ash cloud?")
    assert not answer.answered
    assert not any("Watch:" in p.text for p in answer.passages)


def test_paraphrase_and_lower_case_find_the_count(answerer: Answerer) -> None:
    answer = answerer.ask("how many russian troops left damascus")
    assert answer.answered and answer.quote is not None and "400 soldiers" in answer.quote


def test_a_byline_answers_who_wrote_the_article_not_who_led_a_study(answerer: Answerer) -> None:
    vector = answerer.encoder.encode_questions(["who"])[0]
    assert answerer.retriever.question("Who wrote the Ukrainska Pravda summary?", vector).asks_author
    assert not answerer.retriever.question("Who was the lead author of the study?", vector).asks_author
