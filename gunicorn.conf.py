"""gunicorn's settings for Supporters: read by `gunicorn wsgi:app` started in this
directory (gunicorn loads ./gunicorn.conf.py by default; elsewhere pass
`-c /path/to/gunicorn.conf.py`). Command-line options override what is set here.

What it does: responses do not say what serves them. gunicorn writes
`Server: gunicorn` on every response and has no setting to leave it out, so the
hook below removes that line when the server starts (before workers fork, so
every worker inherits it). tests/functional/test_request_sizes.py starts gunicorn and
checks that no response names it.
"""

from __future__ import annotations

from typing import Any


def on_starting(server: Any) -> None:
    """Leave the Server header out of every response."""
    from gunicorn.http import wsgi

    default_headers = wsgi.Response.default_headers
    if getattr(default_headers, "supporters_without_server", False):
        return

    def without_server(self: Any) -> list[str]:
        return [line for line in default_headers(self) if not line.lower().startswith("server:")]

    without_server.supporters_without_server = True  # type: ignore[attr-defined]
    wsgi.Response.default_headers = without_server  # type: ignore[method-assign]
