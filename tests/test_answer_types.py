"""What kind of item a question asks for, and which sentences hold a new one."""

import pytest

from qa_bot.answer_types import (
    COUNT,
    DATE,
    DURATION,
    MONEY,
    ORGANISATION,
    PLACE,
    TIME,
    WHO,
    asked_words,
    counted_words,
    expected_answer,
    new_items,
    speaker_asked,
)
from qa_bot.entities import Entity, EntityTagger


@pytest.mark.parametrize(("question", "kind"), [
    ("Which town was worst hit by the floods?", "place"),
    ("Which newspaper said the talks had failed?", "organisation"),
    ("Which Russian official spoke first?", "person"),
    ("Who is the headteacher of St Aidan's?", "person or organisation"),
    ("Who said the plan was dead?", "speaker"),
    ("When will the line reopen?", "date"),
    ("In which year did Russia intervene?", "date"),
    ("At what time did the train leave?", "time"),
    ("How long will the repairs take?", "duration"),
    ("How many days did the strike last?", "duration"),
    ("How much did the bridge cost?", "money"),
    ("How much rain fell?", "amount"),
    ("how many russian troops left damascus", "count"),
    ("What percentage of homes flooded?", "percentage"),
    ("Why did the council vote no?", "reason"),
    ("Where did the convoy go?", "place"),
    ("What did the minister say?", None),
    ("Is Russia leaving Syria?", None),
    ("What kind of government did Russia call for?", None),
    ("What are the dates of next year's festival?", "date"),
    ("What was the margin of the council vote?", "amount"),
    ("What liabilities did the chain list?", "money"),
    ("Name the ad network that received the data.", "organisation"),
    ("Which countries' embassies were evacuated?", "place"),
    ("What is the aim of the talks?", None),
    ("What did the expedition cost?", "money"),
    ("What is the estimated bill for fixing the bridge?", "money"),
    ("what are the military bases used for?", None),  # the bases are the subject, not the answer
])
def test_the_kind_of_item_asked_for(question: str, kind: str | None) -> None:
    expected = expected_answer(question)
    assert (expected.kind if expected else None) == kind


def test_a_question_about_who_spoke_says_so_whatever_kind_of_name_it_asks_for() -> None:
    for question, kind in (("Who said the plan was dead?", "speaker"),
                           ("Which newspaper reported the withdrawal?", "organisation"),
                           ("Which Turkish channel reported the request?", "organisation")):
        expected = expected_answer(question)
        assert expected is not None and expected.kind == kind and expected.speaker
    expected = expected_answer("Which newspaper is based in London?")
    assert expected is not None and not expected.speaker


@pytest.mark.parametrize(("question", "counted"), [
    ("how many russian troops left damascus", ("russian", "troops")),
    ("How many kinds of amphibians live in the valley?", ("amphibians",)),
    ("How many people went to the festival?", ("people",)),
    ("how many kessling staff are being let go", ("kessling", "staff")),
])
def test_what_a_count_must_count(question: str, counted: tuple[str, ...]) -> None:
    assert counted_words(question) == counted


def test_a_number_inside_a_sum_or_a_date_is_no_count() -> None:
    sentence = "A £12.5 million plan was approved on 3 May 2019 by 31 votes to 19."
    entities = (_tag(sentence, "£12.5 million", "MONEY"), _tag(sentence, "3 May 2019", "DATE"),
                _tag(sentence, "31", "CARDINAL"))
    assert new_items(COUNT, sentence, entities, frozenset()) == ["31", "19"]


def test_a_clock_time_counts_inside_a_date_a_vague_one_only_as_tagged() -> None:
    sentence = "The river peaked at 4.1 metres at 3.20am on Sunday, before the rain eased into the night."
    entities = (_tag(sentence, "3.20am on Sunday", "DATE"), _tag(sentence, "the night", "TIME"))
    assert new_items(TIME, sentence, entities, frozenset()) == ["the night", "3.20am"]
    assert new_items(TIME, "It peaked on Sunday.", (_tag("It peaked on Sunday.", "Sunday", "DATE"),),
                     frozenset()) == []


def test_a_span_of_hours_is_no_clock_time() -> None:
    sentence = "Compensation rises by £45 for every 12 hours, and power came back at 2.15pm."
    entities = (_tag(sentence, "12 hours", "TIME"), _tag(sentence, "2.15pm", "TIME"))
    assert set(new_items(TIME, sentence, entities, frozenset())) == {"2.15pm"}


def test_ages_and_spans_are_not_dates_or_durations() -> None:
    sentence = "A 72-year-old woman walked for eight days and finished on Tuesday."
    entities = (_tag(sentence, "72-year-old", "DATE"), _tag(sentence, "eight days", "DATE"),
                _tag(sentence, "Tuesday", "DATE"))
    assert new_items(DATE, sentence, entities, frozenset()) == ["Tuesday"]
    assert new_items(DURATION, sentence, entities, frozenset()) == ["eight days"]


def test_an_item_the_question_already_names_is_not_new() -> None:
    sentence = "The trial cost $18.5 million, more than the $10 million first planned."
    found = new_items(MONEY, sentence, (), frozenset({"10", "million"}))
    assert "$18.5 million" in " ".join(found) and not any(i.startswith("$10") for i in found)


def test_a_sum_written_short_in_the_question_names_the_same_sum_spelt_out() -> None:
    sentence = "A £12.5 million plan was approved, beside a £2.5 million one."
    entities = (_tag(sentence, "£12.5 million", "MONEY"), _tag(sentence, "£2.5 million", "MONEY"))
    asked = asked_words("What did the £12.5m plan cost in all?")
    assert new_items(MONEY, sentence, entities, asked) == ["£2.5 million"]


def test_a_name_the_question_mostly_names_is_not_new() -> None:
    sentence = "Harrowby Borough Council told Harrowby Town that Caldwell Trust owns the site."
    entities = tuple(_tag(sentence, name, "ORG")
                     for name in ("Harrowby Borough Council", "Harrowby Town", "Caldwell Trust"))
    asked = frozenset("which trust did harrowby council tell about harrowby town's site".split())
    assert new_items(ORGANISATION, sentence, entities, asked) == ["Caldwell Trust"]


def test_a_person_is_no_place_and_a_place_no_person_but_an_organisation_may_be_either() -> None:
    sentence = "Detective Sarah Whitlock of Harrowby CID said the attack happened on Kirkgate in Skelmoor."
    entities = (_tag(sentence, "Sarah Whitlock", "PERSON"), _tag(sentence, "Harrowby CID", "ORG"),
                _tag(sentence, "Kirkgate", "GPE"), _tag(sentence, "Skelmoor", "ORG"))
    assert new_items(PLACE, sentence, entities, frozenset()) == ["Harrowby CID", "Kirkgate", "Skelmoor"]
    assert new_items(WHO, sentence, entities, frozenset()) == ["Sarah Whitlock", "Harrowby CID", "Skelmoor"]


def test_a_count_must_be_followed_by_what_is_counted() -> None:
    sentence = "Russia withdrew at least 400 soldiers and 100 officials."
    expected = expected_answer("How many officials left?")
    assert expected is not None
    counts = [m for m in new_items(expected, sentence, (), frozenset(),
                                   lambda s, end: s[end:].split()[:1] == ["officials."])]
    assert counts == ["100"]


def test_real_tagger_tags_the_items_of_a_news_sentence() -> None:
    [entities], failed = EntityTagger().tag(
        ["Network Rail said the line would close from Saturday 27 July to Sunday 8 September."])
    labels = {e.label for e in entities}
    assert failed == 0 and "DATE" in labels and "ORG" in labels


def _tag(sentence: str, item: str, label: str) -> Entity:
    start = sentence.index(item)
    return Entity(start, start + len(item), label)


def test_what_x_said_names_x() -> None:
    assert speaker_asked("What did Governor Helena Marsh say about rates?") == "Governor Helena Marsh"
    assert speaker_asked("what does the Northgate partner say has driven demand") == "the Northgate partner"
    assert speaker_asked("Who said the plan was dead?") is None
