"""The Support Us card in a real browser: on our article pages and on another site."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from sqlalchemy import select

from supporters.extensions import db
from supporters.models import (
    AppealVariant,
    Article,
    ArticleTag,
    Campaign,
    Frequency,
    Gift,
    GiftStatus,
    WidgetStat,
)
from supporters.widget import service
from supporters.widget.counts import flush_counts
from tests.conftest import LiveServer, free_port, wait_for

pytestmark = pytest.mark.browser

HOSTILE_CSS = """
* { all: unset !important; font-size: 41px !important; color: red !important; line-height: 3 !important; }
div, section, button, a, h2, p { display: inline !important; background: yellow !important;
  border: 7px dashed lime !important; visibility: visible !important; }
button { visibility: hidden !important; }
[data-supporters-widget] { display: none !important; height: 0 !important; }
"""


@pytest.fixture
def site(live_app: LiveServer) -> LiveServer:
    service.clear_cache()
    with live_app.app.app_context():
        campaign = Campaign(
            slug="general",
            name="Keep our research free",
            goal_currency="PLN",
            goal_minor=100000,
            preset_amounts={"PLN": [2000, 5000, 10000]},
            default_frequency=Frequency.ONE_TIME,
            variants=[
                AppealVariant(
                    key="only",
                    heading="Support <b>independent</b> analysis",
                    text="Gifts from readers keep us independent.",
                    weight=1,
                )
            ],
        )
        db.session.add(campaign)
        db.session.flush()
        db.session.add(
            Article(
                slug="grid-story",
                title="The grid story",
                lead="Lead.",
                published_on=date(2026, 11, 1),
                body_markdown="Body",
                body_html="<p>Body of the article.</p>",
                campaign_id=campaign.id,
                published=True,
                tags=[ArticleTag(tag="energy")],
            )
        )
        db.session.commit()
    return live_app


class OtherSite:
    """A page on a second local origin that embeds the widget with one script tag."""

    def __init__(self, app_url: str, css: str, embed: str = "", csp: str = "") -> None:
        embed = embed or (
            f"<script src='{app_url}/widget.js' data-campaign='general' data-article='ext-story' async></script>"
        )
        html = (
            f"<!doctype html><html lang='en'><head><style>{css}</style></head><body>"
            "<h1>Someone else's article</h1><p>Some text before the appeal.</p>"
            f"{embed}<p>Text after.</p></body></html>"
        ).encode()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                if csp:
                    self.send_header("Content-Security-Policy", csp)
                self.end_headers()
                self.wfile.write(html)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/story.html"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


@pytest.fixture
def other_site(site: LiveServer) -> Iterator[Any]:
    made: list[OtherSite] = []

    def make(css: str = "", embed: str = "", csp: str = "") -> OtherSite:
        made.append(OtherSite(site.url, css, embed, csp))
        return made[-1]

    yield make
    for server in made:
        server.close()


def card(page: Any) -> Any:
    """The card inside the widget's shadow root (Playwright's CSS engine pierces open shadow roots),
    once rendered: the empty card that holds its space until the data arrives has no role yet."""
    locator = page.locator("[data-supporters-widget] section.c[role=region]")
    locator.wait_for()
    return locator


def counters(app: Any) -> dict[str, int]:
    with app.app_context():
        flush_counts()  # what the server's process took, written as its flusher would
        rows = db.session.scalars(select(WidgetStat)).all()
        return {name: sum(getattr(r, name) for r in rows) for name in ("impressions", "clicks", "gifts")}


def test_our_article_page_shows_the_card_and_leads_to_a_prefilled_donation_form(site: LiveServer, page: Any) -> None:
    page.goto(f"{site.url}/articles/grid-story")
    box = card(page)
    assert "Support <b>independent</b> analysis" in box.locator("h2").inner_text(), "staff text is shown as text"
    box.get_by_role("button", name="PLN100").click()
    box.get_by_role("link", name="Support us").click()
    page.wait_for_url("**/donate/?*")
    query = parse_qs(urlsplit(page.url).query)
    assert query["campaign"] == ["general"] and query["article"] == ["grid-story"] and query["variant"] == ["only"]
    assert query["amount"] == ["100.00"] and query["src"][0].endswith("/articles/grid-story")
    assert page.locator("input[name=amount_choice][value='10000']").is_checked()
    assert page.locator(".donate-form input[name=article]").input_value() == "grid-story"


def test_a_hostile_page_on_another_origin_cannot_break_the_card(site: LiveServer, other_site: Any, page: Any) -> None:
    # The reference page gives the card the same width as the hostile one, whose
    # `all: unset` also takes the body's margin: at another width the text may wrap
    # differently, which says nothing about the card's defences.
    clean = other_site("body { margin: 0; }")
    page.goto(clean.url)
    reference = card(page).bounding_box()

    hostile = other_site(HOSTILE_CSS)
    page.goto(hostile.url)
    box = card(page)
    measured = box.bounding_box()
    assert abs(measured["width"] - reference["width"]) < 2 and measured["width"] > 250
    assert abs(measured["height"] - reference["height"]) < 2
    button = box.get_by_role("button", name="PLN50")
    assert button.is_visible()
    style = button.evaluate("b => { const s = getComputedStyle(b); return [s.backgroundColor, s.fontSize, s.color]; }")
    assert style == ["rgb(255, 255, 255)", "14px", "rgb(29, 35, 43)"]  # the amounts are set at 14 px
    assert page.locator("h1").evaluate("h => getComputedStyle(h).color") == "rgb(255, 0, 0)", (
        "the host page keeps its own styles"
    )

    box.get_by_role("link", name="Support us").click()
    page.wait_for_url(f"{site.url}/donate/?*")
    query = parse_qs(urlsplit(page.url).query)
    assert query["src"] == [hostile.url] and query["article"] == ["ext-story"]


def test_the_widget_sets_no_cookies_and_talks_to_no_one_else(site: LiveServer, other_site: Any, page: Any) -> None:
    embed = other_site("")
    seen: list[tuple[str, dict[str, str]]] = []
    page.on("response", lambda response: seen.append((response.url, response.headers)))
    page.goto(embed.url)
    card(page)
    wait_for(lambda: counters(site.app)["impressions"] >= 1)
    widget_responses = [(url, headers) for url, headers in seen if url.startswith(site.url)]
    assert {urlsplit(url).path for url, _ in widget_responses} >= {"/widget.js", "/widget/config/general.json"}
    for url, headers in widget_responses:
        assert "set-cookie" not in headers, url
    hosts = {urlsplit(url).netloc for url, _ in seen}
    assert hosts <= {urlsplit(embed.url).netloc, urlsplit(site.url).netloc}
    assert page.context.cookies() == []
    assert page.evaluate("() => [document.cookie, localStorage.length, sessionStorage.length]") == ["", 0, 0]


def test_a_gift_made_from_an_article_is_attributed_and_every_counter_moves(site: LiveServer, page: Any) -> None:
    page.goto(f"{site.url}/articles/grid-story")
    box = card(page)
    wait_for(lambda: counters(site.app)["impressions"] == 1)
    box.get_by_role("button", name="PLN50").click()
    box.get_by_role("link", name="Support us").click()
    page.wait_for_url("**/donate/?*")
    wait_for(lambda: counters(site.app)["clicks"] == 1)

    page.get_by_role("textbox", name="E-mail").fill("reader@example.org")
    page.get_by_role("textbox", name="Full name").fill("Jan Reader")
    page.locator(".donate-button").click()
    page.wait_for_url("**/pay/test/**")
    page.get_by_label("payment succeeds", exact=False).check()
    page.get_by_role("button", name="Pay").click()
    page.wait_for_url("**/donate/thanks?session_id=*")
    page.locator("[data-gift-status=succeeded]").wait_for()

    with site.app.app_context():
        gift = db.session.scalars(select(Gift)).one()
        assert gift.status is GiftStatus.SUCCEEDED
        assert (gift.source_article, gift.source_variant) == ("grid-story", "only")
        assert gift.source_url.endswith("/articles/grid-story")
        flush_counts()
        row = db.session.scalars(select(WidgetStat)).one()
        assert (row.article, row.variant, row.impressions, row.clicks, row.gifts, row.amount_base_minor) == (
            "grid-story",
            "only",
            1,
            1,
            1,
            5000,
        )


def test_the_iframe_embed_shows_the_card_and_follows_the_dark_hint(site: LiveServer, page: Any) -> None:
    page.goto(f"{site.url}/widget/frame/general?article=grid-story")
    box = card(page)
    assert box.get_by_role("link", name="Support us").get_attribute("target") == "_top"
    assert box.evaluate("c => getComputedStyle(c).backgroundColor") == "rgb(251, 250, 247)"
    page.goto(f"{site.url}/widget/frame/general?theme=dark")
    assert card(page).evaluate("c => getComputedStyle(c).backgroundColor") == "rgb(29, 35, 43)"


# The snippets of docs/widget.md, as a site would paste them.
PLACEHOLDER = (
    "<div data-supporters-widget data-campaign='general' data-article='ext-story'></div>"
    "<script src='{app}/widget.js' async></script>"
)
RESERVE_CSS = (
    "@media (scripting: enabled) { [data-supporters-widget]:not([hidden]) { display: block; height: 448px; } }"
)
IFRAME = (
    "<iframe src='{app}/widget/frame/general?article=ext-story&amp;page={page}' title='Support us'"
    " width='100%' height='448' frameborder='0' style='border:0;max-width:640px' loading='lazy'></iframe>"
)
LAYOUT_SHIFT = """() => new Promise(done => {
  let total = 0, count = 0;
  new PerformanceObserver(list => {
    for (const e of list.getEntries()) { total += e.value; count += 1; }
  }).observe({type: "layout-shift", buffered: true});
  setTimeout(() => done([count, total]), 300);
})"""


def two_variants(app: Any) -> None:
    with app.app_context():
        campaign = db.session.scalars(select(Campaign).filter_by(slug="general")).one()
        campaign.variants.append(AppealVariant(key="second", heading="A second appeal", text="Other words.", weight=1))
        db.session.commit()
    service.clear_cache()


def slow_script(page: Any, seconds: float = 0.4) -> None:
    """widget.js arrives after the page has painted, as it does on a slow network."""

    def later(route: Any) -> None:
        response = route.fetch()
        time.sleep(seconds)
        route.fulfill(response=response)

    page.route("**/widget.js", later)


@pytest.mark.parametrize("snippet", ["placeholders", "script tags"])
def test_two_cards_of_a_campaign_show_one_variant_per_page_view(
    site: LiveServer, other_site: Any, page: Any, snippet: str
) -> None:
    two_variants(site.app)
    if snippet == "placeholders":
        embed = PLACEHOLDER.format(app=site.url).replace("<script", "<p>Between.</p>" * 3 + "<script")
        embed = embed.replace("</div>", "</div>" + PLACEHOLDER.split("<script")[0], 1)
    else:  # one script tag per card: two copies of the script run on the page
        one = f"<script src='{site.url}/widget.js' data-campaign='general' data-article='ext-story' async></script>"
        embed = one + "<p>Between.</p>" * 3 + one
    host = other_site(embed=embed)
    page.set_viewport_size({"width": 1280, "height": 1400})
    for _ in range(10):  # two independent draws would differ in half of these views
        page.goto(host.url)
        headings = page.locator("[data-supporters-widget] section.c h2")
        wait_for(lambda: headings.count() == 2)  # noqa: B023  (waited for before the loop goes on)
        assert headings.nth(0).inner_text() == headings.nth(1).inner_text()
    # each card is counted once when it is seen, both under the one variant of the view
    wait_for(lambda: counters(site.app)["impressions"] >= 2 * 10)
    with site.app.app_context():
        rows = db.session.scalars(select(WidgetStat)).all()
        assert sum(r.impressions for r in rows) == 20 and all(r.impressions % 2 == 0 for r in rows)


@pytest.mark.parametrize("width", [320, 375, 1280])
def test_the_iframe_snippet_holds_the_whole_card_even_without_its_style(
    site: LiveServer, other_site: Any, page: Any, width: int
) -> None:
    # The host's `style-src 'self'` drops the snippet's style attribute: its width and height stay.
    host = other_site(embed=IFRAME.format(app=site.url, page=""), csp="style-src 'self'")
    site.app.config["WIDGET_ALLOWED_ORIGINS"] = [host.url.rsplit("/", 1)[0]]
    page.set_viewport_size({"width": width, "height": 900})
    page.goto(host.url)
    frame_box = page.locator("iframe").bounding_box()
    assert frame_box["height"] == 448 and frame_box["width"] > 280
    button = page.frame_locator("iframe").get_by_role("link", name="Support us")
    box = button.bounding_box()
    assert box["y"] + box["height"] <= frame_box["y"] + frame_box["height"], "the button is inside the frame"


def test_a_frame_smaller_than_the_card_still_shows_its_button(site: LiveServer, other_site: Any, page: Any) -> None:
    # the snippet docs/widget.md gave before: a 340 px frame
    style = "width:100%;max-width:640px;height:340px;border:0"
    old = f"<iframe src='{site.url}/widget/frame/general' style='{style}'></iframe>"
    host = other_site(embed=old)
    site.app.config["WIDGET_ALLOWED_ORIGINS"] = [host.url.rsplit("/", 1)[0]]
    page.set_viewport_size({"width": 375, "height": 900})
    page.goto(host.url)
    frame_box = page.locator("iframe").bounding_box()
    box = page.frame_locator("iframe").get_by_role("link", name="Support us").bounding_box()
    assert frame_box["height"] == 340 and box["y"] + box["height"] <= frame_box["y"] + frame_box["height"]


def test_the_iframe_passes_the_pages_address_on_to_the_gift(site: LiveServer, other_site: Any, page: Any) -> None:
    # the browser sends a framed page only the host's origin as referrer: the snippet carries the address
    address = "https://blog.example.org/2026/12/grid?p=7&lang=en"
    host = other_site(embed=IFRAME.format(app=site.url, page=quote(address, safe="")))
    site.app.config["WIDGET_ALLOWED_ORIGINS"] = [host.url.rsplit("/", 1)[0]]
    page.goto(host.url)
    page.frame_locator("iframe").get_by_role("link", name="Support us").click()
    page.wait_for_url(f"{site.url}/donate/?*")
    query = parse_qs(urlsplit(page.url).query)
    assert query["src"] == [address] and query["article"] == ["ext-story"]
    assert page.locator(".donate-form input[name=src]").input_value() == address


@pytest.mark.parametrize("width", [1280, 375])
@pytest.mark.parametrize("scripts", [True, False])
def test_our_article_page_does_not_shift_when_the_card_arrives(
    site: LiveServer, browser: Any, width: int, scripts: bool
) -> None:
    context = browser.new_context(viewport={"width": width, "height": 700}, java_script_enabled=scripts)
    try:
        page = context.new_page()
        slow_script(page)
        page.goto(f"{site.url}/articles/grid-story")
        if not scripts:
            # nothing moves without scripts; the plain link stands alone, with no space kept for a card
            link = page.locator(".support-widget a.button")
            assert link.is_visible() and page.locator(".support-widget").bounding_box()["height"] < 100
            return
        page.locator("[data-supporters-widget] section.c h2").wait_for()
        page.wait_for_load_state("networkidle")
        assert page.evaluate(LAYOUT_SHIFT) == [0, 0]
    finally:
        context.close()


@pytest.mark.parametrize("width", [1280, 375])
def test_a_page_embedding_the_placeholder_does_not_shift(
    site: LiveServer, other_site: Any, page: Any, width: int
) -> None:
    host = other_site(css=RESERVE_CSS, embed=PLACEHOLDER.format(app=site.url))
    page.set_viewport_size({"width": width, "height": 700})
    slow_script(page)
    page.goto(host.url)
    page.locator("[data-supporters-widget] section.c h2").wait_for()
    page.wait_for_load_state("networkidle")
    assert page.evaluate(LAYOUT_SHIFT) == [0, 0]


def test_beacons_carry_no_cookies_and_are_simple_text_requests(site: LiveServer, page: Any) -> None:
    # cookies do not look at ports: one set by any site on the host would ride along with a beacon
    page.context.add_cookies([{"name": "session", "value": "secret", "url": site.url}])
    seen: list[dict[str, str]] = []
    wsgi = site.app.wsgi_app

    def recording(environ: dict[str, Any], start_response: Any) -> Any:
        if environ["PATH_INFO"] == "/widget/event":
            seen.append({k: environ.get(k, "") for k in ("HTTP_COOKIE", "CONTENT_TYPE", "HTTP_ORIGIN")})
        return wsgi(environ, start_response)

    site.app.wsgi_app = recording  # type: ignore[method-assign]
    try:
        page.goto(f"{site.url}/articles/grid-story")
        wait_for(lambda: counters(site.app)["impressions"] == 1)
        card(page).get_by_role("link", name="Support us").click()
        wait_for(lambda: counters(site.app)["clicks"] == 1)
    finally:
        site.app.wsgi_app = wsgi  # type: ignore[method-assign]
    assert len(seen) == 2
    for headers in seen:
        assert headers["HTTP_COOKIE"] == "" and headers["CONTENT_TYPE"] == "text/plain;charset=UTF-8"
