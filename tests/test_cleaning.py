"""Cleaning rules, checked on the seeds and on page furniture the seeds do not contain."""

from pathlib import Path

import pytest

from qa_bot.cleaning import clean, headline_key, repeated_lines

SEEDS = Path(__file__).resolve().parents[1] / "seeds"


def seed(prefix: str) -> str:
    return next(SEEDS.glob(f"{prefix}_*.txt")).read_text(encoding="utf-8")


def test_seed_navigation_promo_and_copyright_are_removed() -> None:
    texts = {p: clean(seed(p)).text for p in ("000", "001", "002", "003", "004")}
    for furniture in (
        "Breaking news",
        "Anagram",
        "PREV",
        "NEXT",
        "Morocco",
        "newsletter",
        "View on euronews",
        "©",
        "Unauthorized use",
        "Click here",
        "Join the over",
        "Powered by",
        "Browse By",
        "become our patron",
        "Background",
    ):
        assert not any(furniture in t for t in texts.values()), furniture


def test_seed_content_next_to_furniture_is_kept() -> None:
    assert "Russia has evacuated at least 400 soldiers" in clean(seed("000")).text
    assert clean(seed("000")).text.rstrip().endswith("his departure was unplanned.")
    assert "HTS took Damascus on Sunday." in clean(seed("001")).text
    assert "“There are contracts" in clean(seed("004")).text


def test_kept_text_is_verbatim_from_the_raw_file() -> None:
    for prefix in ("000", "001", "002", "003", "004"):
        raw = seed(prefix)
        for paragraph in clean(raw).text.split("\n\n"):
            assert paragraph in raw


def test_metadata_read_from_byline_title_and_source_lines() -> None:
    article = clean(seed("002"))
    assert article.title == "Russia pulls hundreds of soldiers out of Damaskus"
    assert article.author == "Alona Mazurenko"
    assert article.published == "2024-12-16"
    assert article.outlet == "Financial Times (FT)"
    assert clean(seed("001")).title == "How Russia Is Reacting to the Downfall of Syria’s Assad"
    assert clean(seed("000")).outlet == "euronews"
    assert clean(seed("003")).outlet == "GDC"


UNSEEN = """\
Home
World
Politics
Share this article
Advertisement
Floods close roads in the north – The Daily Courier
By Jane Smith — March 3, 2023
Heavy rain closed twelve roads across the northern districts on Friday, officials said, and more storms are expected.
Sign up for our morning newsletter. Residents were told to stay indoors until the water recedes from the main bridge.
Read more: Storm season starts early
Related stories
Most popular -
Markets rally after rate decision -
© 2023 The Daily Courier. All rights reserved.
Follow us on Twitter
"""


def test_unseen_furniture_is_removed_and_metadata_found() -> None:
    article = clean(UNSEEN)
    assert article.text.split("\n\n") == [
        "Floods close roads in the north – The Daily Courier",
        "By Jane Smith — March 3, 2023",
        "Heavy rain closed twelve roads across the northern districts on Friday, officials said, "
        "and more storms are expected.",
        "Residents were told to stay indoors until the water recedes from the main bridge.",
    ]
    assert (article.title, article.outlet) == ("Floods close roads in the north", "The Daily Courier")
    assert (article.author, article.published) == ("Jane Smith", "2023-03-03")


def test_short_lines_repeated_across_files_are_furniture() -> None:
    one = "Subscriber exclusive offer\nThe council approved the new budget after a long debate on Tuesday night.\n"
    two = "Subscriber exclusive offer\nThe mayor resigned on Wednesday after weeks of pressure from the council.\n"
    furniture = repeated_lines([one, two])
    assert "Subscriber exclusive" not in clean(one, furniture).text
    assert "The council approved" in clean(one, furniture).text


def test_a_syndicated_paragraph_is_not_furniture() -> None:
    shared = "Russia withdrew at least 400 soldiers from the Damascus region after negotiations."
    furniture = repeated_lines([shared, shared])
    assert clean(shared, furniture).text == shared


CORPUS2 = Path(__file__).resolve().parent / "data" / "corpus2"


def test_other_sites_furniture_is_removed() -> None:
    """Cookie banners, menus, captions, paywalls, share and comment lines, related links."""
    texts = [clean(p.read_text(encoding="utf-8")).text for p in sorted(CORPUS2.glob("*.txt"))]
    for furniture in ("We value your privacy", "Accept all", "Skip to main content", "(Photo:",
                      "Share on Facebook", "Advertisement", "Read more:", "Tags:", "Winter escape",
                      "in your inbox", "free articles", "Cancel anytime", "Show comments",
                      "Donate from", "Trending now", "Bitcoin slips", "Home > World",
                      "Listen to this article", "min read", "Updated 3 hours ago"):
        assert not any(furniture in t for t in texts), furniture


def test_other_sites_metadata_and_credits() -> None:
    turkey = clean((CORPUS2 / "100_bc9e3b7ed98d1605.txt").read_text(encoding="utf-8"))
    assert turkey.title == "Turkey emerges as main power broker in Syria after Assad's fall"
    assert (turkey.author, turkey.published) == ("Selin Arslan", "2024-12-17")
    wire = clean((CORPUS2 / "104_dae243eb5a5972c3.txt").read_text(encoding="utf-8"))
    assert wire.title == "Russian warships wait off Syrian coast as Moscow bargains over Tartus base"
    assert "Reporting by Pavel Sokolov in Moscow and Tarek Mansour in Damascus" in wire.text
    assert wire.text.count("Satellite images taken by Maxar") == 1  # a page that repeats its body
    question_title = clean((CORPUS2 / "106_174cc1d4c83d70cb.txt").read_text(encoding="utf-8"))
    assert question_title.title == "Tartus and Hmeimim: can Russia keep its foothold in Syria?"


# Both sides of every rule, on text written by someone who had not seen the rules:
# must_keep.txt holds ordinary news paragraphs full of furniture words ("Next week…", "Share prices…",
# "…without prior permission…"), must_drop.txt furniture lines of many sites, pages/ whole pages.
CLEANING = Path(__file__).resolve().parent / "data" / "cleaning"
PAGE_HEAD = ["Home | News | Sport | Business", "Storm closes coastal roads across the county on Friday",
             "By Jane Smith, 3 March 2021"]
# Kept by design: wire credits and bylines say who reported a story. Known miss: a labelled
# standards line with no furniture word.
KEPT_ON_PURPOSE = {
    "Reporting by Anna Kowalska; Editing by Peter Graff",
    "By Karl Lindqvist and Mei Tanaka",
    "Reporting by Karl Lindqvist in Toulouse and Mei Tanaka in Tokyo; Editing by Mark Potter",
    "Our Standards: The Thomson Reuters Trust Principles.",
    "Our Standards: The MarketWire Trust Principles.",
}


def _blocks(name: str) -> list[str]:
    return [p.strip() for p in (CLEANING / name).read_text(encoding="utf-8").split("\n\n") if p.strip()]


def _lines(path: Path) -> list[str]:
    return [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _survives(line: str, text: str) -> bool:
    return line in text.split("\n\n") or (len(line.split()) > 2 and line in text)


def test_no_ordinary_news_paragraph_is_lost() -> None:
    keep = _blocks("must_keep.txt")
    assert len(keep) >= 100
    page = "\n".join([*PAGE_HEAD, *keep, "© 2021 Example News. All rights reserved."])
    kept = clean(page).text.split("\n\n")
    assert [p for p in keep if p not in kept] == []


def test_furniture_lines_go_even_between_paragraphs() -> None:
    drop = _lines(CLEANING / "must_drop.txt")
    prose = [p for p in _blocks("must_keep.txt") if len(p.split()) > 20][:2]
    survived = {line for line in drop
                if _survives(line, clean("\n".join([*PAGE_HEAD, prose[0], line, prose[1]])).text)}
    assert survived <= KEPT_ON_PURPOSE


def test_whole_pages_keep_every_paragraph_and_lose_their_furniture() -> None:
    pages = sorted(CLEANING.glob("pages/page_??.txt"))
    assert len(pages) >= 8
    for page in pages:
        text = clean(page.read_text(encoding="utf-8")).text
        lost = [p for p in _lines(page.with_suffix(".keep.txt")) if p not in text.split("\n\n")]
        survived = {f for f in _lines(page.with_suffix(".drop.txt")) if _survives(f, text)}
        assert (page.name, lost) == (page.name, [])
        assert survived <= KEPT_ON_PURPOSE, page.name


def test_a_teaser_naming_another_article_of_the_corpus_goes() -> None:
    page = ("Tram line to reach the airport by 2026\n\nThe council approved the extension on Tuesday "
            "after a two-hour debate in the town hall.\n\nFlooding closes the ring road for a week\n\n"
            "Work on the new stops will begin in the spring, the council said on Wednesday.")
    other = headline_key("Flooding closes the ring road for a week – The Courier")
    text = clean(page, headlines=frozenset({other})).text
    assert "Flooding closes" not in text and "Work on the new stops" in text
    assert "Flooding closes" in clean(page).text  # a crosshead of its own stays


def test_a_markdown_teaser_in_a_feed_goes_but_marked_up_prose_stays() -> None:
    page = ("Tram line to reach the airport by 2026\n\nThe council approved the extension on Tuesday "
            "after a **two-hour** debate in the town hall.\n\n**Related:** [Flooding closes the ring road "
            "for a week](/news/2019/flooding-ring-road)\n\nWork on the new stops will begin in the spring, "
            "the [council](/council) said on Wednesday.")
    text = clean(page, headlines=frozenset({headline_key("Flooding closes the ring road for a week")})).text
    assert "Related" not in text and "Flooding" not in text
    assert "after a **two-hour** debate" in text and "the [council](/council) said" in text


def test_label_teasers_go_but_labelled_sentences_stay() -> None:
    page = "\n".join([*PAGE_HEAD, "Heavy rain closed twelve roads across the northern districts on Friday, "
                      "officials said.", "Most read: Council votes to extend tram line to the airport",
                      "Update: the minister resigned on Friday after the report was published.",
                      "Popular: Why are rents rising so fast?"])
    text = clean(page).text
    assert "Most read" not in text and "Popular:" not in text
    assert "Update: the minister resigned" in text


def test_advert_copy_under_its_label_goes_but_an_article_paragraph_there_stays() -> None:
    page = "\n\n".join([
        *PAGE_HEAD, "Courts reporter, WXS News",
        "A man who stole copper cable from the railway line has been jailed for two years, the court heard.",
        "Advertisement",
        "Skerra Island Cottages - self-catering breaks from £420 a week. Book direct and save 10%.",
        "Advertisement",
        "Prices start from £349 - less than half what rivals charge - and the first deliveries are due in "
        "May, the company said.",
        "Advertisement",
        "Next year's plans had included the closure of seven branch libraries, but the proposal was dropped.",
        "Storm damage? Wexmoor Roofing - free quotes, 24-hour callout. Call 01632 960772.",
        "© 2023 Wexmoor Sound Ltd. All rights reserved.",
        "Wexmoor Sound is part of Harbourline Media Group. Registered in England No. 04417285.",
    ])
    kept = clean(page).text.split("\n\n")
    assert not [p for p in kept if "Skerra Island" in p or "Roofing" in p or "Harbourline" in p
                or "Courts reporter" in p]
    assert any(p.startswith("Prices start from £349") for p in kept)  # attributed: the article's
    assert any(p.startswith("Next year's plans") for p in kept)  # no pitch: the article's
    assert any(p.startswith("A man who stole copper cable") for p in kept)


def test_readers_comments_below_the_article_go_but_a_comment_count_above_it_does_not_cut() -> None:
    page = "\n".join([
        "Home | News | Politics | Sport", "Council approves new tram line to the airport",
        "By Jane Smith — March 3, 2023", "Comments (3)",
        "The city council approved a new tram line to the airport on Tuesday after a two-hour debate.",
        "Work on the 6km line will start next spring and is expected to take three years, officials said.",
        "Comments (3)", "Petra K., Vienna — 3 March 2023, 10:14",
        "Finally! We have waited twenty years for this line and the buses are always full.",
        "MarkusB — 3 March 2023, 11:02",
        "Three years? It will take ten and cost twice as much, like every project in this city.",
    ])
    kept = clean(page).text
    assert "The city council approved" in kept and "Work on the 6km line" in kept
    assert "waited twenty years" not in kept and "It will take ten" not in kept


@pytest.mark.parametrize(("line", "dropped"), [
    # an advert between paragraphs with no "Advertisement" label: a pitch, then a call or a fragment
    ("Calder Home & Garden - hot tubs from £2,999. Visit our Brackenford showroom", True),
    ("Wensleyshire Wedding Fair - Calderbeck Civic Hall, Sunday 8 September. Free entry", True),
    ("Northgate Dental - new patients welcome. Call 01632 960418 today", True),
    ("Summer breaks from £199 per person. Book now", True),
    # a headline is one sentence; a paragraph ends its sentences or reports speech
    ("Russia pulls hundreds of soldiers out of Damascus - report", False),
    ("The council - which owns the site - said the sale would go ahead. Work starts in May.", False),
    ("Tickets cost from £12 - a third less than last year. Book early, organisers said.", False),
])
def test_an_unlabelled_advert_between_paragraphs_goes(line: str, dropped: bool) -> None:
    prose = [p for p in _blocks("must_keep.txt") if len(p.split()) > 20][:2]
    text = clean("\n".join([*PAGE_HEAD, prose[0], line, prose[1]])).text
    assert _survives(line, text) is not dropped
    assert prose[0] in text and prose[1] in text
