"""Dashboard articles: the Support Us card's figures per article, variant and day,
writing and publishing articles, validation, the audit trail, and hostile texts shown as text."""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from supporters.models import (
    Article,
    ArticleTag,
    AuditEvent,
    Campaign,
    WidgetStat,
    utcnow,
)

HOSTILE = '"><script>alert(1)</script><img src=x onerror=alert(2)> \u202eevil\u202c ' + "x" * 150
TODAY = utcnow().date()


@pytest.fixture
def campaign(db: Any) -> Campaign:
    row = Campaign(slug="general", name="General support", goal_currency="PLN")
    db.session.add(row)
    db.session.flush()
    return row


@pytest.fixture
def article(db: Any, campaign: Campaign) -> Article:
    row = Article(
        slug="gas-storage",
        title="Gas storage",
        published_on=date(2026, 1, 10),
        lead="Lead",
        body_markdown="Text",
        body_html="<p>Text</p>",
        published=True,
        campaign_id=campaign.id,
        tags=[ArticleTag(tag="energy")],
    )
    db.session.add(row)
    db.session.flush()
    return row


def count(db: Any, campaign: Campaign, article: str, day: date, variant: str = "default", **counters: int) -> None:
    db.session.add(WidgetStat(campaign_id=campaign.id, article=article, variant=variant, day=day, **counters))
    db.session.flush()


def cells(page: str, label: str) -> list[str]:
    """The figure cells of the table row whose heading contains `label`."""
    row = next(r for r in re.findall(r"<tr[^>]*>.*?</tr>", page, re.S) if label in r)
    return [re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]


def form_data(**changes: Any) -> dict[str, str]:
    data = {
        "title": "LNG terminals on the Baltic",
        "slug": "",
        "published_on": "2026-02-01",
        "lead": "Two terminals, one question.",
        "body": "## Capacity\n\nIt is **large**.",
        "tags": " Energy,  gas ,energy, LNG ",
        "campaign": "",
        "credit_notice": "",
        "published": "y",
    }
    data.update(changes)
    return {key: value for key, value in data.items() if value is not None}


def audit_events(db: Any, action: str) -> list[AuditEvent]:
    return list(db.session.scalars(select(AuditEvent).filter_by(action=action)))


# --- figures ----------------------------------------------------------------------------------------------------


def test_conversion_rates_are_per_impression_with_one_decimal(
    db: Any, client: Any, viewer: Any, campaign: Campaign, article: Article
) -> None:
    count(db, campaign, "gas-storage", TODAY, impressions=150, clicks=6, gifts=1, amount_base_minor=5000)
    count(
        db,
        campaign,
        "gas-storage",
        TODAY - timedelta(days=1),
        variant="b",
        impressions=50,
        clicks=4,
        gifts=1,
        amount_base_minor=2550,
    )
    page = client.get("/dashboard/articles/").get_data(as_text=True)
    # 200 impressions, 10 clicks (5.0 %), 2 gifts (1.0 %), PLN75.50
    assert cells(page, "Gas storage") == ["200", "10", "5.0%", "2", "1.0%", "PLN75.50"]


def test_rates_are_a_dash_without_impressions_and_follow_the_language(
    db: Any, client: Any, viewer: Any, campaign: Campaign, article: Article
) -> None:
    quiet = Article(slug="quiet", title="Quiet one", published_on=date(2026, 1, 1), published=False)
    db.session.add(quiet)
    count(db, campaign, "gas-storage", TODAY, impressions=3, clicks=1, gifts=0)
    page = client.get("/dashboard/articles/").get_data(as_text=True)
    assert cells(page, "Quiet one") == ["0", "0", "—", "0", "—", "PLN0.00"]
    assert "Draft" in page  # unpublished articles are listed too
    assert cells(page, "Gas storage")[2] == "33.3%"


def test_rates_are_written_the_way_the_language_writes_them(app: Any) -> None:
    from decimal import Decimal

    from supporters.articles.staff_articles import format_rate

    with app.test_request_context("/?lang=pl"):
        assert format_rate(Decimal(1) / Decimal(3)) == "33,3%"
        assert format_rate(None) == "—"


def test_the_period_defaults_to_the_last_30_days_and_can_be_chosen(
    db: Any, client: Any, viewer: Any, campaign: Campaign, article: Article
) -> None:
    count(db, campaign, "gas-storage", TODAY - timedelta(days=29), impressions=10)
    count(db, campaign, "gas-storage", TODAY - timedelta(days=30), impressions=100)
    assert cells(client.get("/dashboard/articles/").get_data(as_text=True), "Gas storage")[0] == "10"
    start = (TODAY - timedelta(days=30)).isoformat()
    chosen = client.get(f"/dashboard/articles/?from={start}&to={start}").get_data(as_text=True)
    assert cells(chosen, "Gas storage")[0] == "100"


@pytest.mark.parametrize(
    "query,message",
    [
        ("from=yesterday", "Enter dates as YYYY-MM-DD"),
        ("to=2026-02-30", "Enter dates as YYYY-MM-DD"),
    ],
)
def test_an_impossible_period_is_refused_with_a_message(
    db: Any, client: Any, viewer: Any, query: str, message: str
) -> None:
    response = client.get(f"/dashboard/articles/?{query}")
    assert response.status_code == 400 and message in response.get_data(as_text=True)


def test_a_period_typed_backwards_is_swapped_with_a_note(
    db: Any, client: Any, viewer: Any, campaign: Campaign, article: Article
) -> None:
    """The same on every list (lib.dates.in_order): the day 30 days ago, whichever end came first."""
    day = TODAY - timedelta(days=30)
    count(db, campaign, "gas-storage", day, impressions=100)
    count(db, campaign, "gas-storage", TODAY, impressions=7)
    response = client.get(f"/dashboard/articles/?from={day.isoformat()}&to={(day - timedelta(days=1)).isoformat()}")
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and "The dates were the wrong way round; they were swapped." in page
    assert cells(page, "Gas storage")[0] == "100"


def test_the_totals_row_adds_every_article_and_cards_elsewhere(
    db: Any, client: Any, viewer: Any, campaign: Campaign, article: Article
) -> None:
    db.session.add(Article(slug="other", title="Other text", published_on=date(2026, 1, 2), published=True))
    count(db, campaign, "gas-storage", TODAY, impressions=100, clicks=5, gifts=1, amount_base_minor=1000)
    count(db, campaign, "other", TODAY, impressions=50, clicks=5, gifts=2, amount_base_minor=2000)
    count(db, campaign, "", TODAY, impressions=50, clicks=0, gifts=1, amount_base_minor=500)
    page = client.get("/dashboard/articles/").get_data(as_text=True)
    assert cells(page, "Elsewhere")[:4] == ["50", "0", "0.0%", "1"]
    assert cells(page, "Total") == ["200", "10", "5.0%", "4", "2.0%", "PLN35.00"]


def test_the_article_page_splits_figures_per_variant_and_per_day(
    db: Any, client: Any, viewer: Any, campaign: Campaign, article: Article
) -> None:
    yesterday = TODAY - timedelta(days=1)
    count(
        db,
        campaign,
        "gas-storage",
        TODAY,
        variant="urgent",
        impressions=100,
        clicks=10,
        gifts=2,
        amount_base_minor=4000,
    )
    count(db, campaign, "gas-storage", yesterday, variant="urgent", impressions=100, clicks=0, gifts=0)
    count(
        db,
        campaign,
        "gas-storage",
        yesterday,
        variant="calm",
        impressions=40,
        clicks=2,
        gifts=1,
        amount_base_minor=1000,
    )
    count(db, campaign, "another-article", TODAY, variant="urgent", impressions=999)
    page = client.get(f"/dashboard/articles/{article.id}").get_data(as_text=True)
    assert cells(page, "urgent")[1:] == ["200", "10", "5.0%", "2", "1.0%", "PLN40.00"]
    assert cells(page, "calm")[1:] == ["40", "2", "5.0%", "1", "2.5%", "PLN10.00"]
    assert cells(page, f'datetime="{TODAY.isoformat()}"')[:4] == ["100", "10", "10.0%", "2"]
    assert cells(page, f'datetime="{yesterday.isoformat()}"')[:4] == ["140", "2", "1.4%", "1"]
    assert page.index(f'datetime="{TODAY.isoformat()}"') < page.index(f'datetime="{yesterday.isoformat()}"')


def test_a_viewer_sees_the_article_read_only_and_cannot_write(
    db: Any, client: Any, viewer: Any, article: Article
) -> None:
    page = client.get(f"/dashboard/articles/{article.id}").get_data(as_text=True)
    assert "<p>Text</p>" in page and "disabled" in page and "Save article" not in page
    assert client.post(f"/dashboard/articles/{article.id}/edit", data=form_data()).status_code == 403
    assert client.get("/dashboard/articles/new").status_code == 403


# --- writing ----------------------------------------------------------------------------------------------------


def test_writing_an_article_saves_sanitised_html_tidy_tags_and_is_audited(
    db: Any, client: Any, fundraiser: Any, campaign: Campaign
) -> None:
    response = client.post(
        "/dashboard/articles/new",
        data=form_data(
            campaign=str(campaign.id),
            body="# Big\n\n<script>alert(1)</script>[x](javascript:alert(1)) **ok**",
            credit_notice="CC BY 4.0",
        ),
    )
    created = db.session.scalars(select(Article)).one()
    assert response.status_code == 303 and response.headers["Location"] == f"/dashboard/articles/{created.id}"
    assert created.slug == "lng-terminals-on-the-baltic" and created.published and created.campaign_id == campaign.id
    assert created.published_on == date(2026, 2, 1) and created.credit_notice == "CC BY 4.0"
    assert sorted(row.tag for row in created.tags) == ["Energy", "LNG", "gas"]
    assert "<h2>Big</h2>" in created.body_html and "<script>" not in created.body_html
    assert "javascript:" not in created.body_html and "<strong>ok</strong>" in created.body_html
    [event] = audit_events(db, "article.create")
    assert (event.staff_user_id, event.target_type, event.target_id) == (fundraiser.id, "article", str(created.id))
    assert event.details == {"slug": created.slug, "title": created.title, "published": True}
    assert client.get(f"/articles/{created.slug}").status_code == 200


def test_editing_audits_the_changed_fields_and_publishing_separately(
    db: Any, client: Any, fundraiser: Any, campaign: Campaign, article: Article
) -> None:
    url = f"/dashboard/articles/{article.id}/edit"
    same = form_data(
        title="Gas storage",
        slug="gas-storage",
        published_on="2026-01-10",
        lead="Lead",
        body="Text",
        tags="energy",
        campaign=str(campaign.id),
    )
    assert client.post(url, data=same).status_code == 303
    assert db.session.scalars(select(AuditEvent).where(AuditEvent.action.like("article.%"))).all() == []

    assert client.post(url, data={**same, "title": "Gas storage, again", "tags": "energy, gas"}).status_code == 303
    [update] = audit_events(db, "article.update")
    assert update.details == {"slug": "gas-storage", "changed": ["title", "tags"]}
    assert update.staff_user_id == fundraiser.id

    unpublished = {key: value for key, value in same.items() if key != "published"}
    assert (
        client.post(url, data={**unpublished, "title": "Gas storage, again", "tags": "energy, gas"}).status_code == 303
    )
    assert not article.published and len(audit_events(db, "article.update")) == 1
    [unpublish] = audit_events(db, "article.unpublish")
    assert unpublish.details == {"slug": "gas-storage"}
    assert client.get("/articles/gas-storage").status_code == 404
    client.post(url, data={**same, "title": "Gas storage, again", "tags": "energy, gas"})
    assert article.published and len(audit_events(db, "article.publish")) == 1
    published = client.get("/articles/gas-storage")
    assert published.status_code == 200 and "<h1>Gas storage, again</h1>" in published.get_data(as_text=True)


@pytest.mark.parametrize(
    "changes,message",
    [
        ({"title": " "}, "Enter the title."),
        ({"title": "t" * 301}, "Field cannot be longer than 300 characters."),
        ({"title": "!!!"}, "No address can be made from this title: enter one."),
        ({"slug": "Not A Slug"}, "Use lowercase letters a–z, digits and single hyphens"),
        ({"slug": "gas-storage"}, "There is already an article at gas-storage."),
        ({"published_on": ""}, "Enter the publication date."),
        ({"published_on": "2026-13-01"}, "Not a valid date value."),
        ({"tags": "ok, " + "t" * 81}, "Each tag can have at most 80 characters."),
        ({"tags": ", ".join(f"t{i}" for i in range(21))}, "Give at most 20 tags."),
        ({"campaign": "999999"}, "Not a valid choice."),
        ({"lead": "\x00"}, "This contains characters we cannot accept."),
    ],
)
def test_invalid_articles_are_refused_with_a_message(
    db: Any, client: Any, fundraiser: Any, article: Article, changes: dict[str, str], message: str
) -> None:
    response = client.post("/dashboard/articles/new", data=form_data(**changes))
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    assert db.session.scalars(select(Article)).all() == [article]


def test_an_invalid_edit_is_refused_and_changes_nothing(
    db: Any, client: Any, fundraiser: Any, article: Article
) -> None:
    db.session.add(Article(slug="taken", title="Taken", published_on=date(2026, 1, 1)))
    db.session.flush()
    response = client.post(f"/dashboard/articles/{article.id}/edit", data=form_data(slug="taken", title="New"))
    assert response.status_code == 400
    assert "There is already an article at taken." in response.get_data(as_text=True)
    db.session.refresh(article)
    assert (article.slug, article.title) == ("gas-storage", "Gas storage")
    assert audit_events(db, "article.update") == []


# --- hostile texts ----------------------------------------------------------------------------------------------


def test_hostile_article_texts_are_shown_as_text_and_the_body_is_sanitised(
    db: Any, client: Any, fundraiser: Any, campaign: Campaign
) -> None:
    response = client.post(
        "/dashboard/articles/new",
        data=form_data(
            title=HOSTILE,
            slug="hostile",
            lead=HOSTILE,
            credit_notice=HOSTILE,
            tags=HOSTILE[:80],
            body='<script>alert(3)</script><a href="x" onclick="alert(4)">a</a>',
        ),
    )
    assert response.status_code == 303
    created = db.session.scalars(select(Article).filter_by(slug="hostile")).one()
    count(db, campaign, "hostile", TODAY, impressions=1)
    for url in ("/dashboard/articles/", f"/dashboard/articles/{created.id}", "/articles/hostile", "/articles/"):
        page = client.get(url).get_data(as_text=True)
        assert "<script>alert" not in page and "<img src=x" not in page and 'onclick="' not in page, url
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page, url
        assert "\u202eevil" in page, url
