"""Article pages: the list, one article with its Support Us widget, and related articles."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import date, timedelta
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask
from flask_migrate import upgrade
from markupsafe import escape

from supporters.articles.related import related_articles
from supporters.articles.views import summary
from supporters.extensions import db as _db
from supporters.models import Article, ArticleTag, Campaign
from supporters.widget.views import SCRIPT
from tests.conftest import MIGRATIONS, make_app

_numbers = itertools.count(1)
DAY = date(2025, 5, 1)


@pytest.fixture(scope="module")
def app(databases: Any) -> Iterator[Flask]:
    """An app of this module's own, so /widget.js can be stood in for before any request."""
    application = make_app(databases.create())
    if "widget.script" not in application.view_functions:
        application.add_url_rule("/widget.js", "widget.script", lambda: "")
    with application.app_context():
        upgrade(directory=MIGRATIONS)
    yield application
    with application.app_context():
        _db.engine.dispose()


def article(tags: tuple[str, ...] = (), **fields: Any) -> Article:
    """A published article; tests change only what they are about."""
    number = next(_numbers)
    values: dict[str, Any] = {
        "slug": f"article-{number}",
        "title": f"Article {number}",
        "published_on": DAY,
        "lead": f"The lead of article {number}.",
        "body_markdown": "Some *text*.",
        "body_html": "<p>Some <em>text</em>.</p>",
        "published": True,
    }
    values.update(fields)
    row = Article(tags=[ArticleTag(tag=tag) for tag in tags], **values)
    _db.session.add(row)
    _db.session.flush()
    return row


def campaign(slug: str) -> Campaign:
    row = Campaign(slug=slug, name=slug.title(), goal_currency="PLN")
    _db.session.add(row)
    _db.session.flush()
    return row


class Head(HTMLParser):
    """The <title>, <meta> and <link> tags of a page, with their values unescaped."""

    def __init__(self, page: str) -> None:
        super().__init__()
        self.title = ""
        self.meta: dict[str, list[str]] = {}
        self.links: dict[str, str] = {}
        self._in_title = False
        self.feed(page)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag == "title":
            self._in_title = True
        elif tag == "meta" and ("name" in values or "property" in values):
            self.meta.setdefault(values.get("name") or values["property"], []).append(values.get("content", ""))
        elif tag == "link":
            self.links[values["rel"]] = values["href"]

    def handle_endtag(self, tag: str) -> None:
        self._in_title = self._in_title and tag != "title"

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data

    def one(self, name: str) -> str:
        [value] = self.meta[name]
        return value


def titles_in(page: str) -> list[str]:
    """The article titles a listing shows, in order."""
    return [line.split(">")[-1] for line in page.split("</a></h2>")[:-1]]


# The list


def test_listing_shows_only_published_articles_newest_first(client: Any) -> None:
    older = article(title="Older", published_on=DAY - timedelta(days=3))
    first_of_day = article(title="Same day, first", published_on=DAY)
    second_of_day = article(title="Same day, second", published_on=DAY)
    article(title="Draft", published_on=DAY + timedelta(days=1), published=False)

    page = client.get("/articles/").get_data(as_text=True)

    assert titles_in(page) == [second_of_day.title, first_of_day.title, older.title]
    assert "Draft" not in page
    assert f'href="/articles/{older.slug}"' in page
    assert older.lead in page


def test_listing_pages_hold_ten_articles_and_a_page_past_the_last_is_not_found(client: Any) -> None:
    for day in range(12):
        article(title=f"Day {day:02d}", published_on=DAY + timedelta(days=day))

    first = client.get("/articles/").get_data(as_text=True)
    second = client.get("/articles/?page=2").get_data(as_text=True)

    assert titles_in(first) == [f"Day {day:02d}" for day in range(11, 1, -1)]
    assert titles_in(second) == ["Day 01", "Day 00"]
    assert 'rel="next" href="/articles/?page=2"' in first and "Page 1 of 2" in first
    assert 'rel="prev" href="/articles/"' in second and 'rel="next"' not in second

    def listing_page(number: str) -> Any:
        return client.get(f"/articles/?page={number}")

    last = listing_page("2")
    assert last.status_code == 200 and titles_in(last.get_data(as_text=True)) == ["Day 01", "Day 00"]
    for past in ("3", "0", "-1", "two", "99999999999999999999"):
        assert listing_page(past).status_code == 404


def test_tag_filter_lists_only_articles_with_that_tag_and_names_it(client: Any) -> None:
    tagged = article(title="About energy", tags=("energy", "gas"))
    article(title="About budgets", tags=("public finance",))

    response = client.get("/articles/?tag=energy")

    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert titles_in(page) == [tagged.title]
    assert Head(page).title.startswith("Articles tagged “energy”")
    assert "<h1>Articles tagged “energy”</h1>" in page
    assert 'href="/articles/">All articles</a>' in page


def test_tag_filter_pages_keep_the_tag(client: Any) -> None:
    for day in range(11):
        article(published_on=DAY + timedelta(days=day), tags=("baltic states",))
    article(published_on=DAY, tags=("other",))

    page = client.get("/articles/?tag=baltic+states").get_data(as_text=True)

    assert "Page 1 of 2" in page
    assert 'href="/articles/?tag=baltic+states&amp;page=2"' in page


def test_an_unknown_tag_is_an_empty_list_and_is_escaped(client: Any) -> None:
    article(tags=("energy",))

    response = client.get("/articles/?tag=<script>x</script>")

    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert titles_in(page) == []
    assert "<script>x" not in page
    assert "No published articles are tagged “&lt;script&gt;x&lt;/script&gt;”." in page


def test_listing_has_a_canonical_address(client: Any) -> None:
    head = Head(client.get("/articles/?tag=energy").get_data(as_text=True))
    assert head.links["canonical"] == "http://127.0.0.1:5000/articles/?tag=energy"


# One article


def test_unpublished_and_unknown_articles_are_not_found(client: Any) -> None:
    draft = article(published=False)
    shown = article(title="Published neighbour")
    assert client.get(f"/articles/{draft.slug}").status_code == 404
    assert client.get("/articles/no-such-article").status_code == 404
    response = client.get(f"/articles/{shown.slug}")
    assert response.status_code == 200 and "<h1>Published neighbour</h1>" in response.get_data(as_text=True)


def test_article_page_shows_its_parts_in_reading_order(client: Any) -> None:
    shown = article(
        title="Grid reserves after the switch",
        lead="Balancing now happens at home.",
        body_html="<h2>Reserves</h2><p>Batteries carry the duty.</p>",
        credit_notice="Republish freely with a link.",
        published_on=date(2025, 6, 24),
        tags=("energy", "baltic states"),
    )

    page = client.get(f"/articles/{shown.slug}").get_data(as_text=True)

    parts = [
        '<time datetime="2025-06-24">June 24, 2025</time>',
        "<h1>Grid reserves after the switch</h1>",
        '<p class="lead">Balancing now happens at home.</p>',
        "<h2>Reserves</h2><p>Batteries carry the duty.</p>",
        "data-supporters-widget",
        f'<script src="/widget.js?v={SCRIPT.current()[1]}" async></script>',  # versioned: immutable
        '<p class="credit-notice">Republish freely with a link.</p>',
        '<a href="/articles/?tag=baltic+states" rel="tag">baltic states</a>',
        '<a href="/articles/?tag=energy" rel="tag">energy</a>',
    ]
    positions = [page.find(part) for part in parts]
    assert -1 not in positions, [part for part, at in zip(parts, positions, strict=False) if at == -1]
    assert positions == sorted(positions)


def test_article_date_is_written_in_the_readers_language(client: Any) -> None:
    shown = article(published_on=date(2025, 6, 24))
    page = client.get(f"/articles/{shown.slug}?lang=pl").get_data(as_text=True)
    assert '<time datetime="2025-06-24">24 czerwca 2025</time>' in page


def test_widget_placeholder_names_the_campaign_and_article_with_a_donate_link_for_no_script(client: Any) -> None:
    spring = campaign("spring-appeal")
    shown = article(slug="gas-storage", campaign_id=spring.id)

    page = client.get("/articles/gas-storage").get_data(as_text=True)

    assert (
        '<div class="support-widget" data-supporters-widget data-campaign="spring-appeal" '
        'data-article="gas-storage"><noscript><a ' in page
    )
    noscript = page.split("<noscript>", 1)[1].split("</noscript>", 1)[0]
    href = noscript.split('href="', 1)[1].split('"', 1)[0].replace("&amp;", "&")
    link = urlsplit(href)
    assert link.path == "/donate/"
    assert parse_qs(link.query) == {
        "campaign": ["spring-appeal"],
        "article": [shown.slug],
        "src": ["http://127.0.0.1:5000/articles/gas-storage"],
    }
    assert "Support us</a></noscript></div>" in page


def test_widget_asks_for_the_general_campaign_when_the_article_names_none(client: Any) -> None:
    shown = article(campaign_id=None)
    page = client.get(f"/articles/{shown.slug}").get_data(as_text=True)
    assert f'data-campaign="general" data-article="{shown.slug}"' in page
    assert "campaign=general&amp;" in page


def test_article_page_has_a_title_description_open_graph_and_a_canonical_address(client: Any) -> None:
    shown = article(slug="fiscal-rules", title="Fiscal rules", lead="Rules that survive a recession.", tags=("budget",))

    head = Head(client.get("/articles/fiscal-rules").get_data(as_text=True))

    assert head.title == "Fiscal rules · Supporters demo foundation"
    assert head.one("description") == shown.lead
    assert head.links["canonical"] == "http://127.0.0.1:5000/articles/fiscal-rules"
    assert head.one("og:type") == "article"
    assert head.one("og:title") == "Fiscal rules"
    assert head.one("og:description") == shown.lead
    assert head.one("og:url") == "http://127.0.0.1:5000/articles/fiscal-rules"
    assert head.one("og:site_name") == "Supporters demo foundation"
    assert head.one("article:published_time") == DAY.isoformat()
    assert head.meta["article:tag"] == ["budget"]


def test_description_is_the_lead_trimmed_at_a_word(client: Any) -> None:
    long_lead = "Storage " * 40
    shown = article(lead=long_lead)
    description = Head(client.get(f"/articles/{shown.slug}").get_data(as_text=True)).one("description")
    assert len(description) <= 160
    assert description.endswith("Storage…")


def test_description_falls_back_to_the_text_when_there_is_no_lead(client: Any) -> None:
    shown = article(lead="", body_html="<p>Gas &amp; power <em>markets</em>.</p>")
    head = Head(client.get(f"/articles/{shown.slug}").get_data(as_text=True))
    assert head.one("description") == "Gas & power markets."


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Short and sweet.", "Short and sweet."),
        ("  spread\n over\tlines  ", "spread over lines"),
        ("word " * 50, ("word " * 31).strip() + "…"),
        ("x" * 200, "x" * 159 + "…"),
    ],
)
def test_summary_keeps_whole_words_within_the_limit(text: str, expected: str) -> None:
    assert summary(text) == expected
    assert len(summary(text)) <= 160


def test_a_hostile_title_is_escaped_everywhere(client: Any) -> None:
    hostile = '<script>"quotes"</script>'
    shown = article(slug="hostile", title=hostile, lead=hostile, tags=(hostile,))
    article(title="Neighbour", tags=(hostile,))

    page = client.get("/articles/hostile").get_data(as_text=True)

    assert "<script>" not in page.replace(f'<script src="/widget.js?v={SCRIPT.current()[1]}" async></script>', "")
    assert '"quotes"' not in page
    assert "<title>&lt;script&gt;&#34;quotes&#34;&lt;/script&gt; · " in page
    assert '<meta property="og:title" content="&lt;script&gt;&#34;quotes&#34;&lt;/script&gt;">' in page
    head = Head(page)
    assert head.one("og:title") == head.one("description") == head.one("og:description") == hostile
    assert head.meta["article:tag"] == [hostile]
    listing = client.get("/articles/").get_data(as_text=True)
    assert "<script>" not in listing and shown.slug in listing


@pytest.mark.parametrize(
    ("own", "site_wide", "expected"),
    [
        ("The article's own notice.", "The site-wide notice.", "The article's own notice."),
        (None, "The site-wide notice.", "The site-wide notice."),
        ("", "The site-wide notice.", "The site-wide notice."),
        (
            None,
            "",
            "You may republish our texts if you credit Supporters demo foundation and link to the original. "
            "Photos and other images may not be reused without permission.",
        ),
    ],
)
def test_credit_notice_is_the_articles_own_then_the_sites_then_the_default(
    app: Flask, client: Any, monkeypatch: pytest.MonkeyPatch, own: str | None, site_wide: str, expected: str
) -> None:
    monkeypatch.setitem(app.config, "SUPPORTERS_CREDIT_NOTICE", site_wide)
    shown = article(credit_notice=own)
    page = client.get(f"/articles/{shown.slug}").get_data(as_text=True)
    assert f'<p class="credit-notice">{escape(expected)}</p>' in page


def test_article_page_lists_related_articles_but_not_itself(client: Any) -> None:
    shown = article(title="Main", tags=("energy", "gas"))
    close = article(title="Close relative", tags=("energy", "gas"))
    article(title="Stranger", tags=("defence",))

    page = client.get(f"/articles/{shown.slug}").get_data(as_text=True)

    aside = page.split('<aside class="related-articles"', 1)[1]
    assert "Related articles" in aside
    assert f'<a href="/articles/{close.slug}">Close relative</a>' in aside
    assert "Stranger" not in aside and ">Main<" not in aside


def test_article_without_related_articles_has_no_related_section(client: Any) -> None:
    shown = article(tags=())
    response = client.get(f"/articles/{shown.slug}")
    page = response.get_data(as_text=True)
    assert "related-articles" not in page.split("</head>", 1)[1]
    assert response.status_code == 200 and f"<h1>{shown.title}</h1>" in page


# Choosing related articles


def test_related_articles_rank_by_shared_tags_then_newest(db: Any) -> None:
    main = article(tags=("energy", "gas", "baltic states"))
    one_tag_newer = article(tags=("energy",), published_on=DAY + timedelta(days=9))
    three_tags = article(tags=("energy", "gas", "baltic states"), published_on=DAY - timedelta(days=30))
    two_tags_old = article(tags=("gas", "energy"), published_on=DAY - timedelta(days=5))
    two_tags_new = article(tags=("gas", "baltic states", "other"), published_on=DAY + timedelta(days=1))

    assert related_articles(main) == [three_tags, two_tags_new, two_tags_old]
    assert one_tag_newer not in related_articles(main)


def test_related_articles_are_at_most_three_and_never_the_article_or_a_draft(db: Any) -> None:
    main = article(tags=("energy",))
    drafts = [article(tags=("energy",), published=False, published_on=DAY + timedelta(days=10))]
    others = [article(tags=("energy",), published_on=DAY - timedelta(days=n)) for n in range(1, 6)]

    related = related_articles(main)

    assert related == others[:3]
    assert main not in related and drafts[0] not in related


def test_an_article_without_tags_has_no_related_articles(db: Any) -> None:
    energy = article(tags=("energy",))
    assert related_articles(article(tags=())) == []
    assert related_articles(article(tags=("energy",))) == [energy], "the tagged article is there to be found"


def test_articles_sharing_no_tag_are_not_related(db: Any) -> None:
    main = article(tags=("energy",))
    stranger = article(tags=("defence",))
    assert related_articles(main) == []
    assert related_articles(article(tags=("defence",))) == [stranger], "the stranger is found through its own tag"


@pytest.mark.parametrize(
    "path",
    [
        "/articles/?tag=%00",
        "/articles/?tag=" + "x" * 5000,
        "/articles/?tag=%F0%9F%94%A5&page=1",
        "/articles/?page=%00",
        "/articles/?page=%D9%A1",
        "/articles/%00",
        "/articles/" + "x" * 5000,
        "/articles/%E2%80%AE",
    ],
)
def test_odd_addresses_are_never_a_server_error(client: Any, path: str) -> None:
    shown = article(tags=("energy",))
    assert client.get(path).status_code in (200, 400, 404)
    listing = client.get("/articles/?tag=energy")
    assert listing.status_code == 200 and titles_in(listing.get_data(as_text=True)) == [shown.title]
