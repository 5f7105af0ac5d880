"""The links in a donor's e-mails that open their own page at a gift or a plan, signed in.

A receipt or a plan's e-mail carries one, so most donors never type their address.
Unlike the sign-in link (single use, 30 minutes), it is signed rather than stored and
works for LINK_DAYS from when the e-mail was written, as often as it is opened: a
receipt is read again weeks later. It names the supporter, the page it leads to and
a digest of the address it was sent to, so it stops working when the supporter's
address changes (it speaks for that address only) and when the record is erased.
One that has run out can still say who it was for, so its page offers to e-mail a
fresh sign-in link to that address, in one click.

The target is a path of the donor's area (/my/...), checked when the link is made and
again when it is read, so a link can never lead off the site.
"""

from __future__ import annotations

import hmac
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from flask import current_app
from flask_babel import lazy_gettext as _l
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from supporters.extensions import db
from supporters.lib.errors import Refused
from supporters.lib.forms import MAX_ID
from supporters.lib.tokens import keyed_hash
from supporters.lib.web import public_url
from supporters.models import Supporter

LINK_DAYS = 60
_SALT = "supporters.donor-link"
#: the donor's pages a link may lead to: /my/ and what is under it, in plain path segments that
#: never start with a dot (no "." or ".." to climb out), and an optional #anchor
TARGET = re.compile(r"/my/(?:[A-Za-z0-9_-][A-Za-z0-9_.-]*(?:/[A-Za-z0-9_-][A-Za-z0-9_.-]*)*)?(?:#[A-Za-z0-9_-]+)?")

NOT_VALID = _l("This link is not valid. Please open it exactly as it is in the e-mail, or sign in below.")
EXPIRED = _l(
    "This link has expired: links in e-mails work for %(days)s days. "
    "We can send a new sign-in link to the address it was sent to."
)


@dataclass(frozen=True)
class DonorLink:
    supporter: Supporter
    target: str


def _serializer(salt: str = _SALT) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=salt)


def _address_digest(supporter: Supporter) -> str:
    return _digest(supporter.email_normalised)


def _digest(email_normalised: str) -> str:
    return keyed_hash(email_normalised)[:16]


def make_token(supporter: Supporter, target: str) -> str:
    """A signed token for `supporter` leading to `target` (a path under /my/)."""
    if not TARGET.fullmatch(target):
        raise ValueError(f"a donor link leads only into the donor's area, not to {target!r}")
    return _serializer().dumps({"s": supporter.id, "t": target, "a": _address_digest(supporter)})


def manage_url(supporter: Supporter, target: str, locale: str) -> str:
    """The link an e-mail carries: `target` opened signed in, on SUPPORTERS_PUBLIC_URL."""
    return public_url("donors.manage_link_page", link_token=make_token(supporter, target), lang=locale)


def read_token(token: str, *, allow_expired: bool = False) -> DonorLink:
    """The supporter and target of a valid token. Refuses (404) a token not ours or no
    longer matching its supporter, and (410) an expired one unless `allow_expired`."""
    serializer = _serializer()
    expired = False
    try:
        data = serializer.loads(token, max_age=int(timedelta(days=LINK_DAYS).total_seconds()))
    except SignatureExpired as exc:
        # The signature was checked before the age: the payload is ours.
        expired = True
        try:
            data = serializer.load_payload(exc.payload) if isinstance(exc.payload, bytes) else None
        except BadSignature:
            data = None
    except BadSignature:
        raise Refused(NOT_VALID, status=404) from None
    link = _link_of(data)
    if expired and not allow_expired:
        raise Refused(EXPIRED, status=410, days=LINK_DAYS)
    return link


def sign_for_address(supporter_id: int, email_normalised: str, salt: str) -> str:
    """A token that names a supporter and the address it is made for (their
    `email_normalised`), signed for one purpose (`salt`) and never running out: the one-click
    unsubscribe link of a newsletter (people/consent.py). Read with `supporter_for_address`."""
    return _serializer(salt).dumps({"s": supporter_id, "a": _digest(email_normalised)})


def supporter_for_address(token: str, salt: str, refusal: Any) -> Supporter:
    """The supporter a `sign_for_address` token names, while it is still the address it was
    made for and the record is not erased; otherwise Refused(`refusal`, 404)."""
    try:
        data = _serializer(salt).loads(token)
    except BadSignature:
        raise Refused(refusal, status=404) from None
    if not isinstance(data, dict):
        raise Refused(refusal, status=404)
    supporter = _supporter_of(data.get("s"), data.get("a"))
    if supporter is None:
        raise Refused(refusal, status=404)
    return supporter


def _supporter_of(supporter_id: object, digest: object) -> Supporter | None:
    """The supporter `supporter_id` names, if `digest` is still that of their address."""
    if type(supporter_id) is not int or not 0 < supporter_id <= MAX_ID or not isinstance(digest, str):
        return None
    supporter = db.session.get(Supporter, supporter_id)
    if (
        supporter is None
        or supporter.anonymised_at is not None
        or not hmac.compare_digest(digest, _address_digest(supporter))
    ):
        return None
    return supporter


def _link_of(data: object) -> DonorLink:
    if not isinstance(data, dict):
        raise Refused(NOT_VALID, status=404)
    supporter_id, target, digest = data.get("s"), data.get("t"), data.get("a")
    if not isinstance(target, str) or not TARGET.fullmatch(target):
        raise Refused(NOT_VALID, status=404)
    supporter = _supporter_of(supporter_id, digest)
    if supporter is None:
        raise Refused(NOT_VALID, status=404)
    return DonorLink(supporter, target)
