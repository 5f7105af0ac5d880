"""Requests to a host the app does not serve are refused with a clean 400.

Flask refuses a `Host` outside TRUSTED_HOSTS by leaving the request without a
URL adapter, so the error page itself, which builds links, failed with a 500.
Here a request to an unknown host (after ProxyFix, so behind a trusted proxy
that is its X-Forwarded-Host) is answered as if it had been sent to the public
host, and refused before any view runs: the forged name appears in no page,
header or link the app writes, and every page renders as usual.

Links are never built from the request's host anyway (`lib.web.public_url`):
this refusal is the second wall, not the first.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from flask import Flask, abort, request
from flask_babel import gettext as _
from werkzeug.exceptions import SecurityError
from werkzeug.wsgi import get_host

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

#: set in the WSGI environ of a request whose host the app does not serve
REFUSED = "supporters.unknown_host"
#: answered for any host: a load balancer asks by the machine's address, and the answer holds no link
ANY_HOST_PATHS = frozenset({"/healthz"})


class RefuseUnknownHosts:
    """WSGI middleware: mark a request to an unknown host, and give it the public host instead."""

    def __init__(self, app: Flask, wsgi_app: WSGIApplication) -> None:
        self.app = app
        self.wsgi_app = wsgi_app

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        trusted = self.app.config.get("TRUSTED_HOSTS")
        if "HTTP_HOST" in environ:
            # Host names are case-insensitive; Werkzeug compares them as sent.
            environ["HTTP_HOST"] = environ["HTTP_HOST"].lower()
        if trusted:
            try:
                get_host(environ, trusted)
            except SecurityError:
                environ[REFUSED] = True
                environ["HTTP_HOST"] = urlsplit(self.app.config["SUPPORTERS_PUBLIC_URL"]).netloc
        return self.wsgi_app(environ, start_response)


def refuse_unknown_host() -> None:
    """Before every other check: a request marked by the middleware is a 400."""
    if request.environ.get(REFUSED) and request.path not in ANY_HOST_PATHS:
        abort(400, _("This site is not served at that address."))


def init_app(app: Flask) -> None:
    """Wrap the app (inside ProxyFix, so the forwarded host is the one checked) and refuse first."""
    app.wsgi_app = RefuseUnknownHosts(app, app.wsgi_app)  # type: ignore[method-assign]
    app.before_request_funcs.setdefault(None, []).insert(0, refuse_unknown_host)
