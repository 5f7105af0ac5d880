"""Security headers on every response.

One Content-Security-Policy for every page, with two openings, each as narrow as
it can be:

- `form-action`: 'self' everywhere, plus the payment provider's page origin(s) on
  the pages whose form leads there: Checkout on the donation form (`CHECKOUT_FORMS`),
  the Customer Portal on the donor's plan page, whose card button leads there
  (`CARD_FORMS`). Chromium applies `form-action` to the redirect that follows a form
  POST, so the donation form's 303 to Stripe's hosted Checkout would be blocked by
  'self' alone.
- `img-src`: our own origin, `data:` (the app's own icons) and the hosts named in
  SUPPORTERS_IMAGE_HOSTS (the only other hosts article images may come from; see
  `articles/markup.py`). Nothing else: an image is a request that tells its host
  who is reading.

Views that need another policy set their own header (the widget frame does); it is
left as they set it. HSTS is sent in production on HTTPS requests.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, Response, request

#: endpoints whose page holds a form that ends on the payment provider's page (the
#: donation form, shown again by its POST when a field needs fixing).
CHECKOUT_FORMS = frozenset({"donate.form", "donate.start"})
#: endpoints whose page holds the card button that ends on Stripe's Customer Portal: the
#: donor's plan page, shown again by each of its forms' POSTs when a value needs fixing
CARD_FORMS = frozenset(
    {
        "donor_plans.plan_page",
        "donor_plans.change_amount",
        "donor_plans.switch_interval",
        "donor_plans.pause",
        "donor_plans.resume",
        "donor_plans.update_card",
        "donor_plans.card_done",
    }
)

_STATIC = "default-src 'self'; style-src 'self'; script-src 'self'; base-uri 'self'; object-src 'none'"


def content_security_policy(form_targets: Iterable[str] = (), image_sources: Iterable[str] = ()) -> str:
    """The policy of a page: forms may go to 'self' and `form_targets`, images come
    from 'self', data: and `image_sources`; no framing, no third-party anything else."""
    form_action = " ".join(dict.fromkeys(["'self'", *form_targets]))
    img_src = " ".join(dict.fromkeys(["'self'", "data:", *image_sources]))
    return f"{_STATIC}; img-src {img_src}; form-action {form_action}; frame-ancestors 'none'"


def image_sources(config: Mapping[str, Any]) -> list[str]:
    """Where images may come from besides 'self': the public origin (an absolute link
    to our own image, on a page served under another trusted host) and the configured
    image hosts (scheme-less: only https on an https page)."""
    public = str(config.get("SUPPORTERS_PUBLIC_URL") or "")
    sources = [public] if urlsplit(public).hostname else []
    return sources + [str(host) for host in config.get("SUPPORTERS_IMAGE_HOSTS") or []]


def hsts_value(seconds: int) -> str:
    return f"max-age={seconds}; includeSubDomains"


def init_app(
    app: Flask,
    checkout_origins: Callable[[], Sequence[str]],
    card_origins: Callable[[], Sequence[str]] = lambda: (),
) -> None:
    """Add the headers to every response. `checkout_origins()` names the payment
    page origin(s) of the gateway in use, `card_origins()` its card update page's,
    asked per response (tests swap gateways)."""
    images = image_sources(app.config)
    production = app.config["SUPPORTERS_ENV"] == "production"
    hsts_seconds = int(app.config["SUPPORTERS_HSTS_SECONDS"])

    #: the policy of every page without a form that leaves for the payment provider, made once
    common_policy = content_security_policy((), images)

    def apply_security_headers(response: Response) -> Response:
        """Add CSP and friends unless a view already chose its own policy."""
        headers = response.headers
        if request.endpoint in CHECKOUT_FORMS:
            policy = content_security_policy(checkout_origins(), images)
        elif request.endpoint in CARD_FORMS:
            policy = content_security_policy(card_origins(), images)
        else:
            policy = common_policy
        policy = headers.setdefault("Content-Security-Policy", policy)
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("Referrer-Policy", "strict-origin-when-cross-origin")
        if "frame-ancestors 'none'" in policy:
            headers.setdefault("X-Frame-Options", "DENY")
        # Behind the trusted proxy, ProxyFix makes is_secure follow X-Forwarded-Proto.
        if production and hsts_seconds > 0 and request.is_secure:
            headers.setdefault("Strict-Transport-Security", hsts_value(hsts_seconds))
        return response

    app.after_request(apply_security_headers)
