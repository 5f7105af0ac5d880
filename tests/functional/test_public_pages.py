"""Public pages: session-free and cacheable by a CDN, and the article pages kept rendered.

The article pages and the widget are the same for every reader of an address in a
language (supporters/lib/caching.py): their answers carry no `Vary: Cookie` and no
`Set-Cookie`, say `Cache-Control: public`, and the rendered article page kept in
the process (supporters/articles/pages.py) holds nothing from the request.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask_migrate import upgrade

from supporters.articles import pages
from supporters.articles.importer import import_directory
from supporters.articles.operations import update_article
from supporters.extensions import db as _db
from supporters.lib.caching import TimedCache
from supporters.models import Article, ArticleTag, Campaign
from supporters.widget import service
from supporters.widget.views import SCRIPT
from tests import factories
from tests.conftest import MIGRATIONS, make_app

PUBLIC = "https://give.example.org"
ALIAS = "www.example.org"
SLUG = "grid-story"

#: every view marked @public, with an address of it; a new public view must be added here
PUBLIC_PATHS = {
    "articles.index": "/articles/",
    "articles.show": f"/articles/{SLUG}",
    "widget.script": "/widget.js",
    "widget.quiet_script": "/widget/quiet.js",
    "widget.config": "/widget/config/general.json",
    "widget.frame": "/widget/frame/general",
}


@pytest.fixture(scope="module")
def app(databases: Any) -> Iterator[Flask]:
    """An app with a public address and an alias host, so a request can name another host."""
    application = make_app(
        databases.create(), ENVIRON={"SUPPORTERS_PUBLIC_URL": PUBLIC, "SUPPORTERS_TRUSTED_HOSTS": ALIAS}
    )
    with application.app_context():
        upgrade(directory=MIGRATIONS)
    yield application
    with application.app_context():
        _db.engine.dispose()


@pytest.fixture(autouse=True)
def fresh_caches(app: Flask) -> Iterator[None]:
    service.clear_cache()
    app.extensions.pop("article_pages", None)
    yield
    service.clear_cache()
    app.extensions.pop("article_pages", None)


@pytest.fixture
def story(db: Any) -> Article:
    campaign = Campaign(slug="general", name="General", goal_currency="PLN", preset_amounts={"PLN": [2000]})
    db.session.add(campaign)
    db.session.flush()
    row = Article(
        slug=SLUG,
        title="The grid story",
        published_on=date(2026, 11, 1),
        body_markdown="Body.",
        body_html="<p>Body.</p>",
        campaign_id=campaign.id,
        published=True,
        tags=[ArticleTag(tag="energy")],
    )
    db.session.add(row)
    db.session.flush()
    return row


def cached_pages(app: Flask) -> int:
    cache = app.extensions.get("article_pages")
    return len(cache) if cache is not None else 0


def assert_public(response: Any) -> None:
    assert response.status_code == 200, response.request.path
    assert "Set-Cookie" not in response.headers, response.request.path
    assert "Cookie" not in response.headers.get("Vary", ""), response.request.path
    assert "public" in response.headers["Cache-Control"], response.request.path
    assert "private" not in response.headers["Cache-Control"] and "no-store" not in response.headers["Cache-Control"]


def test_every_public_view_is_listed_here(app: Flask) -> None:
    marked = {name for name, view in app.view_functions.items() if getattr(view, "public_cache", None)}
    assert marked == set(PUBLIC_PATHS)


@pytest.mark.parametrize("endpoint", sorted(PUBLIC_PATHS))
def test_a_public_page_sets_no_cookie_and_does_not_vary_by_cookie(client: Any, story: Article, endpoint: str) -> None:
    assert_public(client.get(PUBLIC_PATHS[endpoint]))
    assert_public(client.get(PUBLIC_PATHS[endpoint] + "?lang=pl"))


@pytest.mark.parametrize("endpoint", sorted(PUBLIC_PATHS))
def test_a_signed_in_staff_member_reads_public_pages_without_their_session(
    app: Flask, client: Any, story: Article, endpoint: str
) -> None:
    assert factories.sign_in(client, factories.staff("fundraiser")).status_code == 303
    assert client.get("/dashboard/").status_code == 200
    assert_public(client.get(PUBLIC_PATHS[endpoint] + "?lang=pl"))
    dashboard = client.get("/dashboard/")
    assert dashboard.status_code == 200, "the staff session still works"
    assert "no-store" in dashboard.headers["Cache-Control"]


@pytest.mark.parametrize("endpoint", sorted(PUBLIC_PATHS))
def test_a_signed_in_donor_reads_public_pages_without_their_session(client: Any, story: Article, endpoint: str) -> None:
    donor = factories.supporter()
    with client.session_transaction() as state:
        state["donor"] = {"supporter_id": donor.id, "until": "2999-01-01T00:00:00+00:00"}
    assert_public(client.get(PUBLIC_PATHS[endpoint]))
    own = client.get("/my/gifts")
    assert own.status_code == 200, "the donor session still works"
    assert "no-store" in own.headers["Cache-Control"]


def test_a_public_page_does_not_remember_the_language_and_keeps_it_in_its_links(client: Any, story: Article) -> None:
    page = client.get(f"/articles/{SLUG}?lang=pl")
    assert '<html lang="pl">' in page.get_data(as_text=True)
    assert 'href="/articles/?lang=pl"' in page.get_data(as_text=True)
    assert "Accept-Language" not in page.headers.get("Vary", "")
    later = client.get("/")
    assert '<html lang="en">' in later.get_data(as_text=True), "no session remembered the choice"


def test_a_public_page_in_the_browsers_language_varies_by_it(client: Any, story: Article) -> None:
    page = client.get(f"/articles/{SLUG}", headers={"Accept-Language": "pl-PL,pl;q=0.9"})
    assert '<html lang="pl">' in page.get_data(as_text=True)
    assert "Accept-Language" in page.headers["Vary"]
    assert 'href="/articles/"' in page.get_data(as_text=True), "the links ask for no language"


def test_a_remembered_language_still_holds_on_pages_with_a_session(client: Any) -> None:
    client.get("/?lang=pl")
    assert '<html lang="pl">' in client.get("/").get_data(as_text=True)


def test_a_flashed_message_is_shown_on_a_private_answer_that_is_not_kept(
    app: Flask, client: Any, story: Article
) -> None:
    with client.session_transaction() as state:
        state["_flashes"] = [("message", "Thank you, Ada.")]
    flashed = client.get(f"/articles/{SLUG}")
    assert "Thank you, Ada." in flashed.get_data(as_text=True)
    assert "no-store" in flashed.headers["Cache-Control"] and "public" not in flashed.headers["Cache-Control"]
    assert "Cookie" in flashed.headers["Vary"]
    assert cached_pages(app) == 0, "the page with the message is not kept"
    after = client.get(f"/articles/{SLUG}")
    assert_public(after)
    assert "Thank you, Ada." not in after.get_data(as_text=True)


def test_a_kept_page_is_not_shown_to_a_reader_with_a_flashed_message(client: Any, story: Article) -> None:
    assert_public(client.get(f"/articles/{SLUG}"))
    with client.session_transaction() as state:
        state["_flashes"] = [("message", "Thank you, Ada.")]
    assert "Thank you, Ada." in client.get(f"/articles/{SLUG}").get_data(as_text=True)


def test_the_article_page_is_kept_once_per_language_whatever_the_query_string(
    app: Flask, client: Any, story: Article
) -> None:
    for number in range(20):
        assert client.get(f"/articles/{SLUG}?utm_source=x{number}&page={number}").status_code == 200
    assert client.get(f"/articles/{SLUG}", headers={"Accept-Language": f"de;q=1, x{number}"}).status_code == 200
    assert cached_pages(app) == 1
    client.get(f"/articles/{SLUG}?lang=pl")
    client.get(f"/articles/{SLUG}?lang=PL")
    client.get(f"/articles/{SLUG}", headers={"Accept-Language": "pl"})
    assert cached_pages(app) == 3, "en; pl asked in the address; pl from the browser"


def test_unknown_articles_are_not_kept(app: Flask, client: Any, story: Article) -> None:
    for number in range(20):
        assert client.get(f"/articles/no-such-article-{number}").status_code == 404
    assert cached_pages(app) == 0


def test_the_kept_page_holds_nothing_from_the_request_host(client: Any, story: Article) -> None:
    first = client.get(f"/articles/{SLUG}", headers={"Host": ALIAS}).get_data(as_text=True)
    second = client.get(f"/articles/{SLUG}", headers={"Host": "localhost"}).get_data(as_text=True)
    assert first == second
    assert ALIAS not in first
    assert f'<link rel="canonical" href="{PUBLIC}/articles/{SLUG}">' in first


def test_a_kept_page_answers_its_etag_with_304(client: Any, story: Article) -> None:
    first = client.get(f"/articles/{SLUG}")
    again = client.get(f"/articles/{SLUG}", headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304
    assert "Cookie" not in again.headers.get("Vary", "") and "public" in again.headers["Cache-Control"]


def test_an_edit_shows_on_a_kept_page_once_committed(db: Any, client: Any, story: Article) -> None:
    assert "The grid story" in client.get(f"/articles/{SLUG}").get_data(as_text=True)
    values = {"title": "The grid, revised", "body_markdown": "Body."}
    update_article(None, story, values, ["energy"])
    db.session.commit()
    assert "The grid, revised" in client.get(f"/articles/{SLUG}").get_data(as_text=True)


def test_an_edit_committed_before_the_first_reader_shows(db: Any, client: Any, story: Article) -> None:
    update_article(None, story, {"title": "Edited first", "body_markdown": "Body."}, ["energy"])
    db.session.commit()
    assert "Edited first" in client.get(f"/articles/{SLUG}").get_data(as_text=True)
    assert "Edited first" in client.get(f"/articles/{SLUG}").get_data(as_text=True)


def test_a_page_rendered_while_an_edit_committed_is_not_kept(app: Flask, client: Any, story: Article) -> None:
    """A reader who read the article before the edit committed renders the old page;
    the edit's commit comes before that reader keeps it, so it is dropped."""

    def render_then_edit(slug: str) -> str:
        html = "<p>the old page</p>"
        story.title = "Edited meanwhile"
        _db.session.commit()
        return html

    with app.test_request_context():
        kept = pages.article_page(SLUG, "en", False, render_then_edit)
    assert kept is not None and b"the old page" in kept.body
    assert cached_pages(app) == 0
    assert "Edited meanwhile" in client.get(f"/articles/{SLUG}").get_data(as_text=True)


def test_a_value_computed_before_a_clear_is_not_kept() -> None:
    cache: TimedCache[str] = TimedCache(60)
    generation = cache.generation
    cache.clear()
    cache.put("key", "stale", since=generation)
    assert cache.get("key") is None
    cache.put("key", "fresh", since=cache.generation)
    assert cache.get("key") == "fresh"


def test_a_campaign_change_shows_on_a_kept_page(db: Any, client: Any, story: Article) -> None:
    assert 'data-campaign="general"' in client.get(f"/articles/{SLUG}").get_data(as_text=True)
    other = Campaign(slug="winter", name="Winter", goal_currency="PLN")
    db.session.add(other)
    db.session.flush()
    story.campaign_id = other.id
    db.session.commit()
    assert 'data-campaign="winter"' in client.get(f"/articles/{SLUG}").get_data(as_text=True)


@pytest.mark.parametrize("read_first", [True, False])
def test_an_import_shows_on_a_kept_page(db: Any, client: Any, story: Article, tmp_path: Path, read_first: bool) -> None:
    if read_first:
        assert "The grid story" in client.get(f"/articles/{SLUG}").get_data(as_text=True)
    (tmp_path / "grid.md").write_text(
        f"---\ntitle: The grid, imported\ndate: 2026-11-01\nslug: {SLUG}\n---\nImported body.\n", encoding="utf-8"
    )
    report = import_directory(tmp_path)
    assert report.updated == ["grid.md"], report
    db.session.commit()
    page = client.get(f"/articles/{SLUG}").get_data(as_text=True)
    assert "The grid, imported" in page and "Imported body." in page


def test_a_draft_is_never_served_nor_kept_even_to_staff(app: Flask, db: Any, client: Any, story: Article) -> None:
    story.published = False
    db.session.commit()
    factories.sign_in(client, factories.staff("admin"))
    assert client.get(f"/articles/{SLUG}").status_code == 404
    assert cached_pages(app) == 0
    story.published = True
    db.session.commit()
    assert client.get(f"/articles/{SLUG}").status_code == 200


def test_our_pages_link_the_versioned_widget_and_it_may_be_kept_a_year(client: Any, story: Article) -> None:
    etag = SCRIPT.current()[1]
    assert f'src="/widget.js?v={etag}"' in client.get(f"/articles/{SLUG}").get_data(as_text=True)
    versioned = client.get(f"/widget.js?v={etag}")
    assert_public(versioned)
    assert (
        "immutable" in versioned.headers["Cache-Control"] and "max-age=31536000" in versioned.headers["Cache-Control"]
    )
    old = client.get("/widget.js?v=0123456789abcdef")
    assert "immutable" not in old.headers["Cache-Control"], "another version's address is not kept a year"
    assert "max-age=300" in old.headers["Cache-Control"]


def test_the_snippet_for_other_sites_keeps_the_plain_address(app: Flask) -> None:
    with app.test_request_context("/dashboard/"):
        from flask import url_for

        assert url_for("widget.script") == "/widget.js"


def test_the_widget_config_304_comes_from_the_kept_body(client: Any, story: Article) -> None:
    first = client.get("/widget/config/general.json")
    again = client.get("/widget/config/general.json", headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304 and again.headers["ETag"] == first.headers["ETag"]
    found = service.encoded_config("general", "en")
    assert found is not None and found.body == first.data
