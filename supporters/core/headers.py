"""Security headers on every response."""

from __future__ import annotations

from flask import Response

#: no framing, no third-party anything; widget routes will set their own
DEFAULT_CSP = (
    "default-src 'self'; img-src 'self' data: https:; style-src 'self'; script-src 'self'; "
    "form-action 'self'; base-uri 'self'; object-src 'none'; frame-ancestors 'none'"
)


def apply_security_headers(response: Response) -> Response:
    """Add CSP and friends unless a view already chose its own policy."""
    response.headers.setdefault("Content-Security-Policy", DEFAULT_CSP)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "strict-origin-when-cross-origin")
    if "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]:
        response.headers.setdefault("X-Frame-Options", "DENY")
    return response
