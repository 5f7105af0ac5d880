"""Security headers: where forms may go, where images may come from, HSTS in production."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import Flask

from supporters.config import ConfigError, load_config
from supporters.payments.offline import OfflineGateway
from supporters.payments.stripe_gateway import StripeGateway
from tests.conftest import DatabaseFactory, make_app
from tests.fakes import FakeGateway


def directives(response: Any) -> dict[str, str]:
    """The response's Content-Security-Policy, directive name -> its sources."""
    policy = response.headers["Content-Security-Policy"]
    parts = (part.strip().split(" ", 1) for part in policy.split(";") if part.strip())
    return {part[0]: (part[1] if len(part) > 1 else "") for part in parts}


@contextmanager
def gateway_in_use(app: Flask, gateway: object) -> Iterator[None]:
    real = app.extensions["payments"]
    app.extensions["payments"] = gateway
    try:
        yield
    finally:
        app.extensions["payments"] = real


STRIPE = StripeGateway(secret_key="sk_test_headers", webhook_secret="whsec_headers")
FIXTURES = Path(__file__).parents[2].parent / "shared/stripe/fixtures3.json"


def test_the_stripe_gateway_names_the_origin_of_stripes_checkout_sessions() -> None:
    """Stripe's own fixture of a Checkout Session: its `url` is where the donor is sent."""
    if not FIXTURES.is_file():
        pytest.skip(f"Stripe's fixture objects are not at {FIXTURES}")
    session = json.loads(FIXTURES.read_text(encoding="utf-8"))["resources"]["checkout.session"]
    parts = urlsplit(session["url"])
    assert STRIPE.checkout_origins == (f"{parts.scheme}://{parts.netloc}",) == ("https://checkout.stripe.com",)


def test_the_donation_form_may_send_donors_to_stripe_checkout_and_nowhere_else(app: Flask, client: Any) -> None:
    with gateway_in_use(app, STRIPE):
        assert directives(client.get("/donate/"))["form-action"] == "'self' https://checkout.stripe.com"
        # The form shown again for a field to fix is the same form, and leads to the same place.
        again = client.post("/donate/", data={"email": "not an address"})
        assert again.status_code == 400
        assert directives(again)["form-action"] == "'self' https://checkout.stripe.com"


def test_the_donation_form_allows_exactly_the_checkout_origin_of_the_gateway_in_use(app: Flask, client: Any) -> None:
    fake = FakeGateway(checkout_base="http://127.0.0.1:9/pay", checkout_origins=("http://127.0.0.1:9",))
    with gateway_in_use(app, fake):
        assert directives(client.get("/donate/?amount=25"))["form-action"] == "'self' http://127.0.0.1:9"
    # The offline gateway's test-payment page is one of ours: 'self' is all it needs.
    with gateway_in_use(app, OfflineGateway("http://127.0.0.1:9", "whsec_x")):
        assert directives(client.get("/donate/"))["form-action"] == "'self'"


@pytest.mark.parametrize("path", ["/", "/donate/thanks?session_id=cs_x", "/dashboard/login", "/articles/", "/nowhere"])
def test_every_other_page_sends_forms_only_to_its_own_origin(app: Flask, client: Any, path: str) -> None:
    with gateway_in_use(app, STRIPE):
        response = client.get(path)
    policy = directives(response)
    assert policy["form-action"] == "'self'", (path, response.status_code)
    assert policy["frame-ancestors"] == "'none'" and response.headers["X-Frame-Options"] == "DENY"


def test_images_come_only_from_our_origin_data_and_the_configured_hosts(client: Any) -> None:
    policy = directives(client.get("/"))
    # no "https:": an image from anywhere is a request that tells its host who reads the page
    assert policy["img-src"] == "'self' data: http://127.0.0.1:5000"


def test_configured_image_hosts_are_the_only_other_image_sources(databases: DatabaseFactory) -> None:
    app = make_app(databases.create(), ENVIRON={"SUPPORTERS_IMAGE_HOSTS": "images.example.org, cdn.example.net"})
    policy = directives(app.test_client().get("/"))
    assert policy["img-src"] == "'self' data: http://127.0.0.1:5000 images.example.org cdn.example.net"


@pytest.mark.parametrize("value", ["evil.example;script-src *", "https://images.example.org", "images.example.org/x"])
def test_an_image_host_that_is_no_host_name_is_refused_at_start(tmp_path: Any, value: str) -> None:
    with pytest.raises(ConfigError, match="SUPPORTERS_IMAGE_HOSTS"):
        load_config(tmp_path, env={"SUPPORTERS_IMAGE_HOSTS": value})


def production_like(databases: DatabaseFactory, **config: object) -> Flask:
    """An app whose headers are those of production (the database stays the test one)."""
    settings: dict[str, object] = {"SUPPORTERS_ENV": "production", "SUPPORTERS_HSTS_SECONDS": 31_536_000}
    settings.update(config)
    return make_app(databases.create(), **settings)


def test_production_sends_hsts_on_https(databases: DatabaseFactory) -> None:
    client = production_like(databases).test_client()
    response = client.get("/healthz", base_url="https://localhost")
    assert response.headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
    assert "Strict-Transport-Security" not in client.get("/healthz").headers  # plain http: browsers ignore it


def test_behind_the_trusted_proxy_hsts_follows_the_forwarded_scheme(databases: DatabaseFactory) -> None:
    client = production_like(databases, ENVIRON={"SUPPORTERS_PROXIES": "1"}).test_client()
    secure = client.get("/healthz", headers={"X-Forwarded-Proto": "https"})
    assert secure.headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
    assert "Strict-Transport-Security" not in client.get("/healthz", headers={"X-Forwarded-Proto": "http"}).headers
    assert "Strict-Transport-Security" not in client.get("/healthz").headers


def test_hsts_is_off_in_development_and_when_set_to_zero(databases: DatabaseFactory) -> None:
    development = make_app(databases.create(), SUPPORTERS_HSTS_SECONDS=31_536_000).test_client()
    assert "Strict-Transport-Security" not in development.get("/healthz", base_url="https://localhost").headers
    off = production_like(databases, SUPPORTERS_HSTS_SECONDS=0).test_client()
    assert "Strict-Transport-Security" not in off.get("/healthz", base_url="https://localhost").headers


def test_hsts_max_age_is_the_setting(databases: DatabaseFactory) -> None:
    client = production_like(databases, SUPPORTERS_HSTS_SECONDS=600).test_client()
    assert client.get("/healthz", base_url="https://localhost").headers["Strict-Transport-Security"] == (
        "max-age=600; includeSubDomains"
    )
