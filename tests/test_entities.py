"""The entity tagger: real spaCy, odd text, and text it cannot read."""

from tests.conftest import TAGGER


def test_people_places_and_sums_are_tagged_with_offsets_into_the_sentence() -> None:
    sentence = "Maureen Tillotson raised £18,000 walking from Ellerdale to Skerrow Bay in eight days."
    [entities], failed = TAGGER.tag([sentence])
    found = {(sentence[e.start: e.end], e.label) for e in entities}
    assert failed == 0
    assert ("Maureen Tillotson", "PERSON") in found and ("eight days", "DATE") in found
    assert any(label == "MONEY" for _, label in found)


def test_odd_text_is_tagged_or_left_untagged_but_never_dropped() -> None:
    texts = ["🔥🔥🔥 💯", "| Team | P | W |\n|---|---|---|\n| Ellerdale | 3 | 2 |",
             "def f(x):\n    return x ** 2  # code", "", "a" * 5000]
    tagged, failed = TAGGER.tag(texts)
    assert len(tagged) == len(texts) and failed == 0


def test_a_text_the_tagger_refuses_gets_no_entities_and_is_counted() -> None:
    too_long = "Word " * 220_000  # past spaCy's max_length: it raises for this text alone
    tagged, failed = TAGGER.tag(["Russia withdrew 400 soldiers from Damascus.", too_long, "Kyiv"])
    assert failed == 1 and tagged[1] == () and len(tagged) == 3
    assert any(e.label == "CARDINAL" for e in tagged[0])
