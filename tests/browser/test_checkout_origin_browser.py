"""Chromium follows the donation form's 303 to a checkout on another origin, because
the form's page allows exactly that origin in `form-action`; without it, it refuses.

The offline stack's payment page is on our own origin, so the other browser tests
cannot see this: here the gateway's checkout is a page served on a second local
port, as Stripe's hosted Checkout is on https://checkout.stripe.com.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from flask_migrate import upgrade

from supporters.extensions import db
from tests.conftest import MIGRATIONS, DatabaseFactory, LiveServer, free_port, make_app
from tests.fakes import FakeGateway

pytestmark = pytest.mark.browser


class CheckoutStandIn:
    """A page on a second origin (another port) that records every request it gets."""

    def __init__(self) -> None:
        self.port = free_port()
        self.origin = f"http://127.0.0.1:{self.port}"
        self.paths: list[str] = []
        paths = self.paths

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path != "/favicon.ico":  # the browser's own request, not the donor's
                    paths.append(self.path)
                body = b"<!doctype html><title>Checkout</title><h1>Stand-in checkout</h1>"
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> CheckoutStandIn:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)


@pytest.fixture
def checkout() -> Iterator[CheckoutStandIn]:
    with CheckoutStandIn() as stand_in:
        yield stand_in


def serve(databases: DatabaseFactory, gateway: FakeGateway) -> Any:
    app = make_app(databases.create(), PAYMENTS_GATEWAY=gateway, WTF_CSRF_ENABLED=True)
    with app.app_context():
        upgrade(directory=MIGRATIONS)
    return app


@pytest.fixture
def site_with(databases: DatabaseFactory) -> Iterator[Any]:
    servers: list[LiveServer] = []

    def start(gateway: FakeGateway) -> LiveServer:
        server = LiveServer(serve(databases, gateway)).__enter__()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.__exit__(None, None, None)
        with server.app.app_context():
            db.engine.dispose()


def give(page: Any, site: LiveServer) -> None:
    page.goto(f"{site.url}/donate/?amount=25")
    page.get_by_role("textbox", name="E-mail").fill("marta@example.org")
    page.get_by_role("textbox", name="Full name").fill("Marta Wiśniewska")
    page.locator(".donate-button").click()


def test_chromium_follows_the_donation_form_to_a_checkout_on_another_origin(
    site_with: Any, checkout: CheckoutStandIn, page: Any
) -> None:
    gateway = FakeGateway(checkout_base=f"{checkout.origin}/c/pay", checkout_origins=(checkout.origin,))
    site = site_with(gateway)
    give(page, site)

    page.wait_for_url(f"{checkout.origin}/c/pay/cs_fake_*")
    assert "Stand-in checkout" in page.content()
    assert len(checkout.paths) == 1 and checkout.paths[0].startswith("/c/pay/cs_fake_")
    assert len(gateway.checkouts) == 1 and gateway.checkouts[0].amount_minor == 2500


def test_chromium_refuses_that_redirect_when_the_page_allows_forms_only_to_self(
    site_with: Any, checkout: CheckoutStandIn, page: Any
) -> None:
    """The browser really enforces form-action on the redirect: what the test above proves
    is the header's doing (this is the donor's lot before the fix: stuck on /donate/)."""
    gateway = FakeGateway(checkout_base=f"{checkout.origin}/c/pay", checkout_origins=())
    site = site_with(gateway)
    with page.expect_console_message(lambda message: "form-action" in message.text) as refused:
        give(page, site)

    assert "violates the following Content Security Policy directive" in refused.value.text
    assert "form-action 'self'" in refused.value.text
    assert len(gateway.checkouts) == 1  # the POST reached us and answered with the 303...
    assert checkout.paths == []  # ...which Chromium did not follow
    assert not page.url.startswith(checkout.origin)
