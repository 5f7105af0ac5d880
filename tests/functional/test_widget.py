"""The widget's data, counters, iframe and script: light, cacheable, private."""

from __future__ import annotations

import gzip
import json
import re
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from supporters.core.request_sizes import limit_for
from supporters.giving import lifecycle
from supporters.models import AppealVariant, Article, Campaign, Frequency, GiftStatus, WidgetStat
from supporters.widget import service
from supporters.widget.counts import counts, flush_counts
from tests import factories
from tests.conftest import make_app

SCRIPT = Path(__file__).parents[2] / "supporters" / "widget" / "widget.js"


@pytest.fixture(autouse=True)
def fresh_widget_cache(app: Flask) -> Iterator[None]:
    """No cached config, list of campaigns or unwritten beacons from another test."""
    service.clear_cache()
    service.forget_known(app)
    counts(app).discard()
    yield
    service.clear_cache()


@pytest.fixture
def campaign(db: Any) -> Campaign:
    row = Campaign(
        slug="baltic",
        name="Baltic programme",
        goal_minor=100_000,
        goal_currency="PLN",
        preset_amounts={"PLN": [2000, 5050]},
        default_frequency=Frequency.MONTHLY,
        appeal_heading="Fund the Baltic desk",
        appeal_text="<b>Plain</b> text only",
        variants=[
            AppealVariant(key="a", heading="Heading A", text="Text A", weight=3),
            AppealVariant(key="b", heading="Heading B", text="Text B", weight=1),
            AppealVariant(key="off", heading="Old", text="", weight=1, active=False),
        ],
    )
    db.session.add(row)
    db.session.flush()
    return row


@pytest.fixture
def article(db: Any, campaign: Campaign) -> Article:
    """A published article of ours: the only kind of page whose cards are counted under their own name."""
    row = Article(
        slug="grid-story",
        title="The grid story",
        published_on=date(2026, 11, 1),
        body_html="<p>Body.</p>",
        campaign_id=campaign.id,
        published=True,
    )
    db.session.add(row)
    db.session.flush()
    return row


def stat(db: Any, **key: Any) -> WidgetStat | None:
    return db.session.scalars(select(WidgetStat).filter_by(**key)).first()


def config(client: Any, slug: str) -> Any:
    return client.get(f"/widget/config/{slug}.json")


def test_config_gives_the_appeal_presets_and_progress_as_cacheable_public_json(client: Any, campaign: Campaign) -> None:
    response = client.get("/widget/config/baltic.json")
    assert response.status_code == 200 and response.mimetype == "application/json"
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert "public" in response.headers["Cache-Control"] and "max-age=60" in response.headers["Cache-Control"]
    assert response.headers["ETag"] and "Set-Cookie" not in response.headers
    data = response.get_json()
    assert [v["key"] for v in data["variants"]] == ["a", "b"]
    assert data["variants"][0]["weight"] == 3
    assert data["presets"]["PLN"] == [{"amount": "20.00", "label": "PLN20"}, {"amount": "50.50", "label": "PLN50.50"}]
    assert data["frequency"] == "monthly" and data["donate_url"].endswith("/donate/")


def test_config_answers_not_modified_to_a_matching_etag(client: Any, campaign: Campaign) -> None:
    etag = client.get("/widget/config/baltic.json").headers["ETag"]
    again = client.get("/widget/config/baltic.json", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.data == b""


def test_progress_counts_paid_money_net_of_refunds_and_distinct_supporters(
    db: Any, client: Any, campaign: Campaign
) -> None:
    ada = factories.supporter()
    factories.paid_gift(ada, campaign_id=campaign.id, amount_minor=30_000, amount_base_minor=30_000)
    refunded = factories.paid_gift(ada, campaign_id=campaign.id, amount_minor=10_000, amount_base_minor=10_000)
    refunded.refunded_minor, refunded.status = 4_000, GiftStatus.PARTIALLY_REFUNDED
    factories.paid_gift(campaign_id=campaign.id, amount_minor=5_000, amount_base_minor=5_000)
    factories.gift(campaign_id=campaign.id, amount_minor=99_900)  # pending: not raised yet
    progress = client.get("/widget/config/baltic.json").get_json()["progress"]
    assert progress["raised_label"] == "PLN410"
    assert progress["percent"] == 41
    assert progress["supporters"] == 2 and progress["supporters_label"] == "2 supporters"


def test_config_holds_no_personal_data(db: Any, client: Any, campaign: Campaign) -> None:
    factories.paid_gift(
        factories.supporter(email="secret.donor@example.org", name="Secret Donor"),
        campaign_id=campaign.id,
        comment="private note",
    )
    response = client.get("/widget/config/baltic.json")
    body = response.get_data(as_text=True)
    for private in ("secret.donor", "Secret Donor", "private note", "@"):
        assert private not in body
    # the config itself, with the donor's gift counted in it
    assert response.status_code == 200 and response.get_json()["progress"]["supporters"] == 1


def test_config_speaks_the_language_asked_for(client: Any, campaign: Campaign) -> None:
    data = client.get("/widget/config/baltic.json?lang=pl").get_json()
    assert data["labels"]["button"] == "Wesprzyj nas"
    assert data["presets"]["PLN"][0]["label"] == "20\u00a0zł"


@pytest.mark.parametrize("slug", ["nope", "../etc", "general%00"])
def test_config_of_an_unknown_campaign_is_404(client: Any, campaign: Campaign, slug: str) -> None:
    assert config(client, slug).status_code == 404
    assert config(client, campaign.slug).status_code == 200, "the campaign that exists has its config there"


def test_unknown_campaign_names_are_not_kept_in_the_shared_cache(client: Any, campaign: Campaign) -> None:
    for number in range(50):
        assert config(client, f"no-such-campaign-{number}").status_code == 404
    assert config(client, "baltic").status_code == 200
    assert list(service._cache) == [("baltic", "en")]


def test_the_cache_holds_only_configured_languages(client: Any, campaign: Campaign) -> None:
    for query, accept in [("?lang=PL", ""), ("?lang=xx", "de"), ("?lang=en%00", "evil;q=1"), ("", "pl-PL,pl;q=0.9")]:
        assert client.get(f"/widget/config/baltic.json{query}", headers={"Accept-Language": accept}).status_code == 200
    assert sorted(service._cache) == [("baltic", "en"), ("baltic", "pl")]


def test_an_inactive_campaign_has_no_widget(db: Any, client: Any, campaign: Campaign) -> None:
    campaign.active = False
    db.session.add(Campaign(slug="general", name="General", goal_currency="PLN"))
    db.session.flush()
    assert config(client, "baltic").status_code == 404
    assert config(client, "general").status_code == 200, "an active campaign still has its widget"


def send(client: Any, kind: str, article: str = "grid-story", variant: str = "a", campaign: str = "baltic") -> Any:
    event = json.dumps({"type": kind, "campaign": campaign, "article": article, "variant": variant})
    return client.post("/widget/event", data=event, content_type="text/plain;charset=UTF-8")


def test_beacon_events_count_per_campaign_article_variant_and_day(
    db: Any, client: Any, campaign: Campaign, article: Article
) -> None:
    for kind in ("impression", "impression", "impression", "click", "click", "click"):
        response = send(client, kind)
        assert response.status_code == 204 and "Set-Cookie" not in response.headers
    flush_counts()
    row = stat(db, campaign_id=campaign.id, article="grid-story", variant="a", day=datetime.now(UTC).date())
    assert (row.impressions, row.clicks) == (3, 3)
    assert db.session.scalar(select(func.count()).select_from(WidgetStat)) == 1


@pytest.mark.parametrize("named", ["ext-story", "draft-story", ""])
def test_cards_not_on_a_published_article_of_ours_count_in_one_bucket_per_campaign(
    db: Any, client: Any, campaign: Campaign, article: Article, named: str
) -> None:
    db.session.add(Article(slug="draft-story", title="Draft", published_on=date(2026, 11, 2), published=False))
    db.session.flush()
    for slug in (named, "other-site-1", "other-site-2"):
        assert send(client, "impression", article=slug).status_code == 204
    assert send(client, "impression").status_code == 204, "our published article is counted under its name"
    flush_counts()
    rows = {row.article: row.impressions for row in db.session.scalars(select(WidgetStat))}
    assert rows == {"": 3, "grid-story": 1}


def test_a_click_without_an_impression_counts_nothing(
    db: Any, client: Any, campaign: Campaign, article: Article
) -> None:
    assert send(client, "click").status_code == 204
    flush_counts()
    assert db.session.scalar(select(func.count()).select_from(WidgetStat)) == 0
    send(client, "impression", variant="b")
    assert send(client, "click").status_code == 204, "an impression of another variant is no impression of this one"
    flush_counts()
    flush_counts()  # the click's second chance
    assert stat(db, variant="a") is None
    assert (stat(db, variant="b").impressions, stat(db, variant="b").clicks) == (1, 0)


def test_clicks_never_outnumber_impressions(db: Any, client: Any, campaign: Campaign, article: Article) -> None:
    send(client, "impression")
    send(client, "impression")
    for _ in range(5):
        assert send(client, "click").status_code == 204
    flush_counts()
    row = stat(db, campaign_id=campaign.id, article="grid-story", variant="a")
    assert (row.impressions, row.clicks) == (2, 2)


@pytest.mark.parametrize(
    "event",
    [
        "not json",
        "[]",
        '{"type": "view", "campaign": "baltic", "variant": "a"}',
        '{"type": "click", "campaign": "nope", "variant": "a"}',
        '{"type": "click", "campaign": "baltic", "variant": "zzz"}',
        '{"type": "click", "campaign": "baltic", "variant": "off"}',
        '{"type": "click", "campaign": "baltic", "variant": "a", "article": "<script>"}',
        '{"type": "click", "campaign": "baltic", "variant": 5}',
    ],
)
def test_malformed_events_are_refused_and_count_nothing(db: Any, client: Any, campaign: Campaign, event: str) -> None:
    response = client.post("/widget/event", data=event, content_type="text/plain")
    assert response.status_code == 400
    assert counts().pending() == {}
    flush_counts()
    assert db.session.scalar(select(func.count()).select_from(WidgetStat)) == 0


@pytest.mark.parametrize(
    "body",
    [
        "[" * 1001,
        '{"type": ' + "[" * 1500,
        '{"type": "click", "campaign": "baltic", "variant": "a", "article": ' + "{" * 1000,
        "\ufeff{}",
        '{"type": NaN, "campaign": "baltic", "variant": "a"}',
        '{"type": "click", "campaign": "baltic", "variant": "a", "article": null}',
        '{"type": "click", "campaign": "bal\\u0000tic", "variant": "a"}',
        '{"type": "click", "campaign": "baltic", "variant": "a\\u0000"}',
        '{"type": "click", "campaign": "baltic", "variant": "\\ud800"}',
        '{"type": "click", "campaign": "baltic", "variant": "a", "article": "grid-story\\u0000"}',
        "1" * 1999,
        "",
    ],
    ids=lambda body: repr(body[:30]),
)
def test_odd_json_is_a_400_never_a_500(db: Any, client: Any, campaign: Campaign, body: str) -> None:
    response = client.post("/widget/event", data=body.encode("utf-8", "surrogatepass"), content_type="text/plain")
    assert response.status_code == 400 and response.get_json()["error"] == "Bad request"
    assert db.session.scalar(select(func.count()).select_from(WidgetStat)) == 0


def test_bytes_that_are_no_utf8_are_a_400(db: Any, client: Any, campaign: Campaign) -> None:
    response = client.post("/widget/event", data=b'{"type": "\xff\xfe"}', content_type="text/plain")
    assert response.status_code == 400


def test_an_event_larger_than_any_widget_sends_is_refused_unread(db: Any, client: Any, campaign: Campaign) -> None:
    padded = {"type": "impression", "campaign": "baltic", "variant": "a", "pad": "x" * limit_for("widget.event")}
    response = client.post("/widget/event", data=json.dumps(padded), content_type="text/plain")
    assert response.status_code == 413
    assert db.session.scalar(select(func.count()).select_from(WidgetStat)) == 0
    biggest = {"type": "impression", "campaign": "b" * 200, "article": "a" * 200, "variant": "v" * 64}
    assert len(json.dumps(biggest)) < limit_for("widget.event"), "every real event fits"


def limited_app(databases: Any, **environ: str) -> Any:
    from flask_migrate import upgrade

    from supporters.extensions import db as _db
    from tests.conftest import MIGRATIONS

    app = make_app(databases.create(), RATELIMIT_ENABLED=True, ENVIRON=environ)
    with app.app_context():
        upgrade(directory=MIGRATIONS)
        _db.session.add(Campaign(slug="general", name="G", goal_currency="PLN"))
        _db.session.commit()
    return app


def post_events(app: Any, times: int) -> list[int]:
    from supporters.extensions import db as _db

    with app.app_context():
        client = app.test_client()
        event = json.dumps({"type": "impression", "campaign": "general", "variant": "default"})
        codes = [client.post("/widget/event", data=event).status_code for _ in range(times)]
        _db.engine.dispose()
    return codes


def test_events_are_rate_limited(databases: Any) -> None:
    codes = post_events(limited_app(databases), 65)
    assert codes[:60] == [204] * 60 and codes[-1] == 429


def test_what_one_address_adds_in_a_day_is_bounded_by_the_setting(databases: Any) -> None:
    codes = post_events(limited_app(databases, WIDGET_EVENT_LIMIT="5 per day"), 8)
    assert codes == [204] * 5 + [429] * 3


def test_a_gift_through_the_widget_counts_for_its_article_and_variant(
    db: Any, campaign: Campaign, article: Article
) -> None:
    gift = factories.gift(
        campaign_id=campaign.id,
        amount_minor=5000,
        amount_base_minor=5000,
        source_article="grid-story",
        source_variant="b",
    )
    lifecycle.mark_paid(gift, paid_at=datetime(2026, 11, 20, 12, tzinfo=UTC))
    row = stat(db, campaign_id=campaign.id, article="grid-story", variant="b")
    assert (row.gifts, row.amount_base_minor, str(row.day)) == (1, 5000, "2026-11-20")
    lifecycle.mark_paid(gift)  # a duplicate "paid" counts nothing more
    db.session.refresh(row)
    assert row.gifts == 1


@pytest.mark.parametrize("named", ["ext-story", "<script>", "x" * 200])
def test_a_gift_from_a_card_not_on_our_articles_counts_in_the_campaigns_bucket(
    db: Any, campaign: Campaign, article: Article, named: str
) -> None:
    gift = factories.gift(campaign_id=campaign.id, source_article=named, source_variant="a")
    lifecycle.mark_paid(gift)
    [row] = db.session.scalars(select(WidgetStat)).all()
    assert (row.article, row.variant, row.gifts) == ("", "a", 1)
    assert gift.source_article == named, "the gift keeps where it came from"


@pytest.mark.parametrize("variant", [None, "forged"])
def test_gifts_not_from_the_widget_count_nothing(db: Any, campaign: Campaign, variant: str | None) -> None:
    gift = factories.gift(campaign_id=campaign.id, source_article="grid-story", source_variant=variant)
    lifecycle.mark_paid(gift)
    assert db.session.scalar(select(func.count()).select_from(WidgetStat)) == 0
    assert gift.status is GiftStatus.SUCCEEDED
    # A gift through the card, paid the same way, is counted.
    control = factories.gift(campaign_id=campaign.id, source_article="grid-story", source_variant="a")
    lifecycle.mark_paid(control)
    assert db.session.scalar(select(func.count()).select_from(WidgetStat)) == 1
    assert stat(db, campaign_id=campaign.id, variant="a").gifts == 1


def test_only_the_frame_may_be_framed_and_only_by_allowed_origins(databases: Any) -> None:
    from flask_migrate import upgrade

    from supporters.extensions import db as _db
    from tests.conftest import MIGRATIONS

    app = make_app(
        databases.create(), ENVIRON={"WIDGET_ALLOWED_ORIGINS": "https://blog.example.org https://news.example"}
    )
    with app.app_context():
        upgrade(directory=MIGRATIONS)
        _db.session.add(Campaign(slug="general", name="G", goal_currency="PLN"))
        _db.session.commit()
        client = app.test_client()
        frame = client.get("/widget/frame/general?article=grid-story")
        assert frame.status_code == 200
        assert (
            "frame-ancestors 'self' https://blog.example.org https://news.example"
            in frame.headers["Content-Security-Policy"]
        )
        assert "X-Frame-Options" not in frame.headers
        assert 'data-article="grid-story"' in frame.get_data(as_text=True)
        for path in ("/", "/donate/", "/widget/config/general.json"):
            headers = client.get(path).headers
            assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
        _db.engine.dispose()


@pytest.mark.parametrize(
    ("listed", "ancestors"),
    [(None, "frame-ancestors 'self'"), ("*", "frame-ancestors 'self' *")],
    ids=["default: only our own pages", "explicit star: any site"],
)
def test_the_frame_may_be_framed_by_no_other_site_unless_listed(
    databases: Any, listed: str | None, ancestors: str
) -> None:
    from flask_migrate import upgrade

    from supporters.extensions import db as _db
    from tests.conftest import MIGRATIONS

    app = make_app(databases.create(), ENVIRON={"WIDGET_ALLOWED_ORIGINS": listed} if listed else {})
    with app.app_context():
        upgrade(directory=MIGRATIONS)
        _db.session.add(Campaign(slug="general", name="G", goal_currency="PLN"))
        _db.session.commit()
        policy = app.test_client().get("/widget/frame/general").headers["Content-Security-Policy"]
        _db.engine.dispose()
    assert policy.endswith(ancestors) and policy.count("frame-ancestors") == 1


def test_the_script_is_small_cacheable_and_self_contained(client: Any) -> None:
    response = client.get("/widget.js")
    assert response.status_code == 200 and response.mimetype == "text/javascript"
    assert "max-age=300" in response.headers["Cache-Control"] and "Set-Cookie" not in response.headers
    source = response.get_data(as_text=True)
    assert len(gzip.compress(source.encode(), 9)) <= 4096, "budget: 4 KB gzipped"
    for forbidden in ("document.cookie", "sessionStorage", "indexedDB", "innerHTML", "eval("):
        assert forbidden not in source
    # Storage is read once, never written: the "I've given" flag of our own origin, and only
    # when the script runs on a top-level page of that origin (docs/widget.md, the quiet ask).
    assert source.count("localStorage") == 1
    assert re.search(
        r'location\.origin === origin && self === top && localStorage\.getItem\("supporters:quiet-until"\)', source
    )
    assert not re.search(r"https?://", source), "the script talks only to the origin it was loaded from"
    assert 'credentials: "omit"' in source


def test_staff_written_appeals_are_never_html_in_the_script() -> None:
    source = SCRIPT.read_text()
    assert "textContent" in source and "insertAdjacentHTML" not in source


def test_parallel_clicks_never_outnumber_impressions(committed_app: Any) -> None:
    from supporters.extensions import db as _db

    with committed_app.app_context():
        _db.session.add(Campaign(slug="general", name="G", goal_currency="PLN"))
        _db.session.commit()
    impression = json.dumps({"type": "impression", "campaign": "general", "variant": "default"})
    click = json.dumps({"type": "click", "campaign": "general", "variant": "default"})
    for _ in range(5):
        assert committed_app.test_client().post("/widget/event", data=impression).status_code == 204
    barrier = threading.Barrier(40)

    def send_click(_: int) -> int:
        client = committed_app.test_client()
        barrier.wait(timeout=60)
        return int(client.post("/widget/event", data=click).status_code)

    with ThreadPoolExecutor(max_workers=40) as pool:
        codes = list(pool.map(send_click, range(40)))
    assert codes == [204] * 40
    with committed_app.app_context():
        flush_counts()
        row = _db.session.scalars(select(WidgetStat)).one()
        assert (row.impressions, row.clicks) == (5, 5)
