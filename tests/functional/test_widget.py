"""The widget's data, counters, iframe and script: light, cacheable, private."""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from supporters.giving import lifecycle
from supporters.models import AppealVariant, Campaign, Frequency, GiftStatus, WidgetStat
from supporters.widget import service
from tests import factories
from tests.conftest import make_app

SCRIPT = Path(__file__).parents[2] / "supporters" / "widget" / "widget.js"


@pytest.fixture(autouse=True)
def fresh_widget_cache() -> Iterator[None]:
    service.clear_cache()
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


def test_an_inactive_campaign_has_no_widget(db: Any, client: Any, campaign: Campaign) -> None:
    campaign.active = False
    db.session.add(Campaign(slug="general", name="General", goal_currency="PLN"))
    db.session.flush()
    assert config(client, "baltic").status_code == 404
    assert config(client, "general").status_code == 200, "an active campaign still has its widget"


@pytest.mark.parametrize("kind,column", [("impression", "impressions"), ("click", "clicks")])
def test_beacon_events_count_per_campaign_article_variant_and_day(
    db: Any, client: Any, campaign: Campaign, kind: str, column: str
) -> None:
    event = json.dumps({"type": kind, "campaign": "baltic", "article": "grid-story", "variant": "a"})
    for _ in range(3):
        response = client.post("/widget/event", data=event, content_type="text/plain;charset=UTF-8")
        assert response.status_code == 204 and "Set-Cookie" not in response.headers
    row = stat(db, campaign_id=campaign.id, article="grid-story", variant="a", day=datetime.now(UTC).date())
    assert getattr(row, column) == 3
    assert db.session.scalar(select(func.count()).select_from(WidgetStat)) == 1


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
    assert db.session.scalar(select(func.count()).select_from(WidgetStat)) == 0


def test_events_are_rate_limited(databases: Any) -> None:
    from flask_migrate import upgrade

    from supporters.extensions import db as _db
    from tests.conftest import MIGRATIONS

    app = make_app(databases.create(), RATELIMIT_ENABLED=True)
    with app.app_context():
        upgrade(directory=MIGRATIONS)
        _db.session.add(Campaign(slug="general", name="G", goal_currency="PLN"))
        _db.session.commit()
        client = app.test_client()
        event = json.dumps({"type": "impression", "campaign": "general", "variant": "default"})
        codes = [client.post("/widget/event", data=event).status_code for _ in range(125)]
        _db.engine.dispose()
    assert codes[:120] == [204] * 120 and codes[-1] == 429


def test_a_gift_through_the_widget_counts_for_its_article_and_variant(db: Any, campaign: Campaign) -> None:
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


def test_the_script_is_small_cacheable_and_self_contained(client: Any) -> None:
    response = client.get("/widget.js")
    assert response.status_code == 200 and response.mimetype == "text/javascript"
    assert "max-age=300" in response.headers["Cache-Control"] and "Set-Cookie" not in response.headers
    source = response.get_data(as_text=True)
    assert len(gzip.compress(source.encode(), 9)) <= 4096, "budget: 4 KB gzipped"
    for forbidden in ("document.cookie", "localStorage", "sessionStorage", "indexedDB", "innerHTML", "eval("):
        assert forbidden not in source
    assert not re.search(r"https?://", source), "the script talks only to the origin it was loaded from"
    assert 'credentials: "omit"' in source


def test_staff_written_appeals_are_never_html_in_the_script() -> None:
    source = SCRIPT.read_text()
    assert "textContent" in source and "insertAdjacentHTML" not in source
