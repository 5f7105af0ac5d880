"""The one keyed digest of the app's secrets: what is stored of a single-use token or code
(never the token), and the digest a signed link holds of the address it was sent to."""

from __future__ import annotations

import hashlib
import hmac

from flask import current_app


def keyed_hash(value: str) -> str:
    """HMAC-SHA-256 of `value` keyed with SECRET_KEY, in hex (64 characters)."""
    key = str(current_app.config["SECRET_KEY"]).encode()
    return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()
