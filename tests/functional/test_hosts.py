"""Addresses and hosts: every absolute link the app hands out is built from
SUPPORTERS_PUBLIC_URL, and a request to a host the app does not serve is refused.

One forged `Host` (or, behind a trusted proxy, `X-Forwarded-Host`) header once
rewrote the widget's "Support us" link for every reader for the 30 s the widget
data is cached. These tests send forged headers, then a clean request, and look
at what a reader would get.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest
from flask import Flask
from flask_migrate import upgrade
from sqlalchemy import func, select

from supporters.extensions import db
from supporters.models import Article, Campaign, WidgetStat
from supporters.widget import service
from supporters.widget.counts import flush_counts
from tests.conftest import MIGRATIONS, make_app
from tests.fakes import FakeGateway

PUBLIC = "https://give.example.org"
#: a second name the app answers to (SUPPORTERS_TRUSTED_HOSTS), e.g. the www. alias
ALIAS = "www.example.org"
FORGED = "evil.example.org"


def build(databases: Any, **environ: str) -> Flask:
    app = make_app(
        databases.create(),
        ENVIRON={"SUPPORTERS_PUBLIC_URL": PUBLIC, "SUPPORTERS_TRUSTED_HOSTS": ALIAS, **environ},
        PAYMENTS_GATEWAY=FakeGateway(),
    )
    with app.app_context():
        upgrade(directory=MIGRATIONS)
        campaign = Campaign(slug="general", name="General", goal_currency="PLN", preset_amounts={"PLN": [2000, 5000]})
        db.session.add(campaign)
        db.session.flush()
        db.session.add(
            Article(
                slug="grid-story",
                title="The grid story",
                published_on=date(2026, 11, 1),
                body_html="<p>Body.</p>",
                campaign_id=campaign.id,
                published=True,
            )
        )
        db.session.commit()
    return app


@pytest.fixture(scope="module")
def direct_app(databases: Any) -> Iterator[Flask]:
    """Served straight to the internet: X-Forwarded-* headers mean nothing."""
    app = build(databases)
    yield app
    with app.app_context():
        db.engine.dispose()


@pytest.fixture(scope="module")
def proxied_app(databases: Any) -> Iterator[Flask]:
    """Behind one trusted proxy: its X-Forwarded-Host is the request's host."""
    app = build(databases, SUPPORTERS_PROXIES="1")
    yield app
    with app.app_context():
        db.engine.dispose()


@pytest.fixture(autouse=True)
def fresh_widget_cache() -> Iterator[None]:
    service.clear_cache()
    yield
    service.clear_cache()


def widget_links(client: Any, **headers: str) -> tuple[str, str]:
    response = client.get("/widget/config/general.json", headers=headers)
    assert response.status_code == 200, response.data
    data = response.get_json()
    return data["donate_url"], data["event_url"]


CLEAN = (f"{PUBLIC}/donate/", f"{PUBLIC}/widget/event")


# --- The public address, whatever the request said ------------------------------------------------------------------


@pytest.mark.parametrize("host", ["localhost", ALIAS, "127.0.0.1:8000", "WWW.Example.ORG", "give.example.org:443"])
def test_the_widget_links_to_the_public_address_whatever_host_was_asked(direct_app: Flask, host: str) -> None:
    assert widget_links(direct_app.test_client(), Host=host) == CLEAN


def test_a_poisoned_request_leaves_clean_links_for_the_next_reader(direct_app: Flask) -> None:
    client = direct_app.test_client()
    poisoned = client.get("/widget/config/general.json", headers={"Host": FORGED})
    assert poisoned.status_code == 400
    # The alias is served, and its answer is what the next reader gets from the cache.
    assert widget_links(client, Host=ALIAS) == CLEAN
    clean = client.get("/widget/config/general.json")
    assert clean.get_json()["donate_url"] == CLEAN[0]
    for other in (FORGED, ALIAS, "localhost"):
        assert other not in clean.get_data(as_text=True)


def test_x_forwarded_host_is_ignored_without_a_trusted_proxy(direct_app: Flask) -> None:
    assert widget_links(direct_app.test_client(), **{"X-Forwarded-Host": FORGED}) == CLEAN


def test_an_unknown_forwarded_host_behind_a_trusted_proxy_is_refused_and_poisons_nothing(proxied_app: Flask) -> None:
    client = proxied_app.test_client()
    poisoned = client.get("/widget/config/general.json", headers={"X-Forwarded-Host": FORGED})
    assert poisoned.status_code == 400
    assert FORGED not in poisoned.get_data(as_text=True)
    assert widget_links(client, **{"X-Forwarded-Host": ALIAS}) == CLEAN
    assert widget_links(client) == CLEAN


def test_checkout_returns_the_donor_to_the_public_address(direct_app: Flask) -> None:
    gateway = direct_app.extensions["payments"]
    form = {
        "frequency": "one_time",
        "amount_choice": "5000",
        "currency": "PLN",
        "shown_currency": "PLN",
        "email": "ada@example.org",
        "name": "Ada Lovelace",
        "campaign": "general",
        "submission_id": "hosts-checkout-0001",
    }
    response = direct_app.test_client().post("/donate/", data=form, headers={"Host": ALIAS})
    assert response.status_code == 303
    [checkout] = gateway.checkouts
    assert checkout.success_url == f"{PUBLIC}/donate/thanks?session_id={{CHECKOUT_SESSION_ID}}"
    assert checkout.cancel_url == f"{PUBLIC}/donate/cancelled?session_id={{CHECKOUT_SESSION_ID}}"


@pytest.mark.parametrize(
    ("path", "canonical"),
    [
        ("/articles/grid-story", f"{PUBLIC}/articles/grid-story"),
        ("/articles/?tag=energy", f"{PUBLIC}/articles/?tag=energy"),
    ],
)
def test_canonical_links_name_the_public_address(direct_app: Flask, path: str, canonical: str) -> None:
    page = direct_app.test_client().get(path, headers={"Host": ALIAS}).get_data(as_text=True)
    assert re.findall(r'rel="canonical" href="([^"]+)"', page) == [canonical]
    assert ALIAS not in page


def test_the_donation_fallback_link_on_an_article_names_the_public_address(direct_app: Flask) -> None:
    page = direct_app.test_client().get("/articles/grid-story", headers={"Host": ALIAS}).get_data(as_text=True)
    assert '&amp;src=https://give.example.org/articles/grid-story"' in page


# --- Hosts the app does not serve -----------------------------------------------------------------------------------

REFUSED_REQUESTS = [
    ("GET", "/"),
    ("GET", "/donate/"),
    ("POST", "/donate/"),
    ("GET", "/articles/grid-story"),
    ("GET", "/widget.js"),
    ("GET", "/widget/config/general.json"),
    ("GET", "/widget/frame/general"),
    ("POST", "/widget/event"),
    ("GET", "/dashboard/"),
    ("GET", "/dashboard/login?next=/dashboard/gifts/"),
    ("POST", "/webhooks/stripe"),
    ("GET", "/no-such-page"),
]


@pytest.mark.parametrize(("method", "path"), REFUSED_REQUESTS)
@pytest.mark.parametrize("via", ["Host", "X-Forwarded-Host"])
def test_a_request_to_a_host_we_do_not_serve_is_a_clean_400(
    direct_app: Flask, proxied_app: Flask, method: str, path: str, via: str
) -> None:
    app = direct_app if via == "Host" else proxied_app
    response = app.test_client().open(path, method=method, headers={via: FORGED}, data="{}")
    assert response.status_code == 400
    assert FORGED not in response.get_data(as_text=True)
    assert not any(FORGED in value for _name, value in response.headers.items())
    if path.startswith(("/widget/", "/webhooks/")):
        assert response.get_json()["error"] == "Bad request"
    else:
        assert "This site is not served at that address" in response.get_data(as_text=True)


def test_a_refused_host_writes_nothing(direct_app: Flask) -> None:
    client = direct_app.test_client()
    event = '{"type": "impression", "campaign": "general", "variant": "default"}'
    assert client.post("/widget/event", data=event, headers={"Host": FORGED}).status_code == 400
    with direct_app.app_context():
        assert db.session.scalar(select(func.count()).select_from(WidgetStat)) == 0
    assert client.post("/widget/event", data=event).status_code == 204, "the same event, to our host, counts"
    with direct_app.app_context():
        flush_counts()
        assert db.session.scalar(select(func.sum(WidgetStat.impressions))) == 1
        db.session.execute(WidgetStat.__table__.delete())
        db.session.commit()


def test_the_health_check_answers_any_host(direct_app: Flask) -> None:
    """A load balancer asks by the machine's address; the answer holds no link."""
    response = direct_app.test_client().get("/healthz", headers={"Host": "10.0.0.7:8000"})
    assert response.status_code == 200 and response.get_json()["status"] == "ok"


def test_links_built_outside_a_request_name_the_public_address(direct_app: Flask) -> None:
    """The worker and `flask stripe reconcile` queue e-mails with links and have no request."""
    from supporters.lib.web import public_url

    with direct_app.app_context():
        assert public_url("donate.form", campaign="general") == f"{PUBLIC}/donate/?campaign=general"
