"""Newsletter consent by double opt-in: a ticked box is a request; only the address,
through the single-use link it is e-mailed, turns it into a consent. And the donor's
own decisions later: withdrawn or given again on their page (signed in), withdrawn by a
newsletter's one-click unsubscribe (RFC 8058).

Anyone can give with someone else's e-mail address, so the box alone proves nothing.
The request keeps what the donor saw and when; the link (a random token, of which only
the hash is stored) works for LINK_VALID_DAYS and once; the consent it records says
when it was confirmed. Functions flush; the caller commits.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask_babel import format_date
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from supporters.donors import links, web
from supporters.extensions import db
from supporters.lib import audit
from supporters.lib.errors import Refused
from supporters.lib.web import public_url
from supporters.models import Consent, ConsentRequest, Gift, Supporter, utcnow
from supporters.models.supporter import NEWSLETTER

#: how long a confirmation link works after it is e-mailed
LINK_VALID_DAYS = 30
#: what a confirmed consent's source says: where it was asked, and how it was given
CONFIRMED_BY_EMAIL = "{source}, confirmed by e-mail"
#: a token as `issue_link` makes it (secrets.token_urlsafe(32)); anything else is not looked up
TOKEN = re.compile(r"[A-Za-z0-9_-]{20,100}")


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def newest_newsletter_consent(supporter_id: int) -> Consent | None:
    """The supporter's current newsletter decision (the newest row), if any."""
    return db.session.scalars(
        select(Consent)
        .where(Consent.supporter_id == supporter_id, Consent.purpose == NEWSLETTER)
        .order_by(Consent.recorded_at.desc(), Consent.id.desc())
        .limit(1)
    ).first()


def has_confirmed_newsletter(supporter_id: int) -> bool:
    """The supporter's current newsletter decision is a grant their address confirmed."""
    current = newest_newsletter_consent(supporter_id)
    return current is not None and current.granted and current.confirmed_at is not None


def request_newsletter(
    supporter: Supporter, *, wording: str, source: str, gift: Gift | None = None
) -> ConsentRequest | None:
    """Remember that the newsletter was asked for, with the wording shown; nothing is
    granted until the address confirms. None when the supporter already confirmed: they
    are not asked again."""
    if has_confirmed_newsletter(supporter.id):
        return None
    request = ConsentRequest(
        supporter_id=supporter.id,
        purpose=NEWSLETTER,
        gift_id=gift.id if gift is not None else None,
        source=source[:100],
        wording=wording,
    )
    db.session.add(request)
    db.session.flush()
    return request


def request_to_send(gift: Gift, now: datetime | None = None) -> ConsentRequest | None:
    """The newsletter request of `gift`'s form, when its address should now be e-mailed a
    link: not yet sent, the supporter not erased and not already confirmed, and no other
    link of theirs still open (one e-mail at a time asks them)."""
    now = now or utcnow()
    request = db.session.scalars(select(ConsentRequest).filter_by(gift_id=gift.id, purpose=NEWSLETTER)).first()
    if request is None or request.emailed_at is not None or request.confirmed_at is not None:
        return None
    supporter = db.session.get(Supporter, request.supporter_id)
    if supporter is None or supporter.anonymised_at is not None or has_confirmed_newsletter(supporter.id):
        return None
    open_link = db.session.scalar(
        select(ConsentRequest.id).where(
            ConsentRequest.supporter_id == supporter.id,
            ConsentRequest.purpose == NEWSLETTER,
            ConsentRequest.id != request.id,
            ConsentRequest.confirmed_at.is_(None),
            ConsentRequest.expires_at > now,
            ~_decided_since(ConsentRequest),
        )
    )
    return None if open_link is not None else request


def issue_link(request: ConsentRequest, now: datetime | None = None) -> str:
    """A new single-use token for `request`'s link, valid for LINK_VALID_DAYS from now.
    Only its hash is stored: put the returned token into the e-mail, nowhere else."""
    now = now or utcnow()
    token = secrets.token_urlsafe(32)
    request.token_hash = _hash(token)
    request.emailed_at = now
    request.expires_at = now + timedelta(days=LINK_VALID_DAYS)
    db.session.flush()
    return token


def _decided_since(request: type[ConsentRequest] | ConsentRequest) -> sa.Exists:
    """A newsletter decision was recorded after the request was made."""
    return (
        select(Consent.id)
        .where(
            Consent.supporter_id == request.supporter_id,
            Consent.purpose == NEWSLETTER,
            Consent.recorded_at > request.requested_at,
        )
        .exists()
    )


NOT_FOUND = _l("This link is not valid. Please open the link exactly as it is in the e-mail.")
EXPIRED = _l(
    "This link has expired: links to confirm the newsletter work for %(days)s days. "
    "Tick the box again the next time you give, and we will send you a new one."
)
ALREADY_CONFIRMED = _l("You already confirmed your subscription on %(day)s. There is nothing more to do.")
ALREADY_SUBSCRIBED = _l("You are already subscribed to our newsletter. There is nothing more to do.")
DECIDED_SINCE = _l("This link is no longer valid: your newsletter choice has changed since it was sent.")


def open_request(token: str, now: datetime | None = None) -> ConsentRequest:
    """The request whose link holds `token`, while that link may still confirm it.

    Refuses (404) a token that is not one of ours, and (410) a link that was used, has
    expired, or was overtaken by a later decision, or whose supporter was erased.
    """
    now = now or utcnow()
    request = None
    if TOKEN.fullmatch(token):
        request = db.session.scalars(select(ConsentRequest).filter_by(token_hash=_hash(token))).first()
    if request is None or request.expires_at is None:
        raise Refused(NOT_FOUND, status=404)
    supporter = db.session.get(Supporter, request.supporter_id)
    if supporter is None or supporter.anonymised_at is not None:
        raise Refused(NOT_FOUND, status=404)
    if request.confirmed_at is not None:
        raise Refused(ALREADY_CONFIRMED, status=410, day=format_date(request.confirmed_at, format="long"))
    if db.session.scalar(select(_decided_since(request))):
        current = newest_newsletter_consent(supporter.id)
        raise Refused(ALREADY_SUBSCRIBED if current and current.granted else DECIDED_SINCE, status=410)
    if request.expires_at <= now:
        raise Refused(EXPIRED, status=410, days=LINK_VALID_DAYS)
    return request


def confirm_newsletter(token: str, now: datetime | None = None) -> Consent:
    """The address confirmed: record the consent (granted, confirmed now, with the
    request's wording and where it was asked) and close the link.

    Refuses as `open_request` does, so a second press records nothing. Two presses
    at the same moment record one consent: closing the link is one conditional UPDATE
    that only one of them can win.
    """
    now = now or utcnow()
    request = open_request(token, now)
    closed = db.session.connection().execute(
        sa.update(ConsentRequest)
        .where(ConsentRequest.id == request.id, ConsentRequest.confirmed_at.is_(None))
        .values(confirmed_at=now)
    )
    if closed.rowcount != 1:
        db.session.refresh(request)
        raise Refused(ALREADY_CONFIRMED, status=410, day=format_date(request.confirmed_at or now, format="long"))
    db.session.refresh(request)
    consent = Consent(
        supporter_id=request.supporter_id,
        purpose=request.purpose,
        granted=True,
        recorded_at=now,
        confirmed_at=now,
        source=CONFIRMED_BY_EMAIL.format(source=request.source)[:100],
        wording=request.wording,
        request_id=request.id,
    )
    db.session.add(consent)
    db.session.flush()
    return consent


def pending_requests(supporter_id: int, now: datetime | None = None) -> list[ConsentRequest]:
    """The supporter's requests still waiting for the address, newest first: what staff
    see as "waiting". Not confirmed, not overtaken by a later decision, and either e-mailed
    with a link that still works or not e-mailed yet (its gift not paid) for as long as
    a link would work."""
    now = now or utcnow()
    return list(
        db.session.scalars(
            select(ConsentRequest)
            .where(
                ConsentRequest.supporter_id == supporter_id,
                ConsentRequest.confirmed_at.is_(None),
                sa.or_(
                    ConsentRequest.expires_at > now,
                    sa.and_(
                        ConsentRequest.emailed_at.is_(None),
                        ConsentRequest.requested_at > now - timedelta(days=LINK_VALID_DAYS),
                    ),
                ),
                ~_decided_since(ConsentRequest),
            )
            .order_by(ConsentRequest.requested_at.desc(), ConsentRequest.id.desc())
        )
    )


# --- The donor's own decisions ---------------------------------------------------------

#: where a decision taken on the donor's own page (/my, signed in) is recorded as coming from
DONOR_PAGE = "donor page"
#: a grant given there: the sign-in (a link or code e-mailed to the address) proved the address
DONOR_PAGE_SIGNED_IN = "donor page, signed in by e-mail"
#: what a newsletter's one-click unsubscribe (RFC 8058) records
ONE_CLICK_SOURCE = "List-Unsubscribe"
ONE_CLICK_WORDING = "one-click unsubscribe"
#: the words next to the buttons on the donor's page: what the log keeps as shown
GIVE_WORDING = _l(
    "Yes, send me occasional e-mails about your work and how my gift helps. I can unsubscribe at any time."
)
WITHDRAW_WORDING = _l("Stop sending me the newsletter. I can subscribe again here at any time.")
_UNSUBSCRIBE_SALT = "supporters.newsletter-unsubscribe"
UNSUBSCRIBE_NOT_VALID = _l(
    "This unsubscribe link is not valid: it may have been cut short, or your e-mail address has changed "
    "since it was sent. Sign in to your page to choose, or reply to any of our e-mails."
)


def newsletter_state(supporter_id: int) -> str:
    """What the donor's page says: "subscribed" (the newest decision is a grant), "waiting"
    (asked, the address has not confirmed yet) or "not subscribed"."""
    current = newest_newsletter_consent(supporter_id)
    if current is not None and current.granted:
        return "subscribed"
    if pending_requests(supporter_id):
        return "waiting"
    return "not subscribed"


def withdraw_newsletter(
    supporter: Supporter, *, wording: str, source: str, actor_name: str, now: datetime | None = None
) -> Consent | None:
    """Record that the supporter withdrew the newsletter (the time, the exact `wording`
    shown, the `source`) and audit it; flush. Links still waiting to confirm a request die
    with it (a later decision overtakes them). None, and nothing recorded, when there is
    nothing to withdraw: the newest decision already is a withdrawal, or there is none and
    nothing waits. So pressing twice, or a mail provider posting twice, records one row."""
    now = now or utcnow()
    current = newest_newsletter_consent(supporter.id)
    if not (current is not None and current.granted) and not pending_requests(supporter.id, now):
        return None
    return _decide(supporter, granted=False, wording=wording, source=source, actor_name=actor_name, now=now)


def give_newsletter(
    supporter: Supporter, *, wording: str, actor_name: str, now: datetime | None = None
) -> Consent | None:
    """The signed-in donor gives the newsletter again from their page: granted at once and
    recorded as confirmed now, with no e-mail to confirm. The sign-in was itself a link or
    code e-mailed to this address, so it proves what double opt-in's link would prove.
    Audited; flush. None when the newest decision already is a grant."""
    now = now or utcnow()
    current = newest_newsletter_consent(supporter.id)
    if current is not None and current.granted:
        return None
    return _decide(
        supporter, granted=True, wording=wording, source=DONOR_PAGE_SIGNED_IN, actor_name=actor_name, now=now
    )


def _decide(
    supporter: Supporter, *, granted: bool, wording: str, source: str, actor_name: str, now: datetime
) -> Consent:
    if supporter.anonymised_at is not None:
        raise Refused(_l("This record was erased."), status=410)
    # Recorded after every request it overtakes, even one made in the same instant.
    newest_request = db.session.scalar(
        select(sa.func.max(ConsentRequest.requested_at)).where(
            ConsentRequest.supporter_id == supporter.id, ConsentRequest.purpose == NEWSLETTER
        )
    )
    if newest_request is not None and newest_request >= now:
        now = newest_request + timedelta(microseconds=1)
    consent = Consent(
        supporter_id=supporter.id,
        purpose=NEWSLETTER,
        granted=granted,
        recorded_at=now,
        confirmed_at=now if granted else None,
        source=source[:100],
        wording=wording,
    )
    db.session.add(consent)
    db.session.flush()
    audit.record(
        None,
        "consent.granted" if granted else "consent.withdrawn",
        "supporter",
        supporter.id,
        actor_name=actor_name,
        purpose=NEWSLETTER,
        source=source[:100],
        consent_id=consent.id,
    )
    return consent


def unsubscribe_token(supporter_id: int, email_normalised: str) -> str:
    """The token of a supporter's one-click unsubscribe link: signed, for this address
    only (a change of address kills it), and never running out (a newsletter is read late)."""
    return links.sign_for_address(supporter_id, email_normalised, _UNSUBSCRIBE_SALT)


def unsubscribe_url(supporter_id: int, email_normalised: str) -> str:
    """The one-click unsubscribe address of a supporter, on SUPPORTERS_PUBLIC_URL: what a
    newsletter's List-Unsubscribe header holds (mail/unsubscribe.py, the supporters export)."""
    return public_url("newsletter.unsubscribe", unsubscribe_token=unsubscribe_token(supporter_id, email_normalised))


def unsubscribing(token: str) -> Supporter:
    """The supporter an unsubscribe token is for; Refused (404) for a token not ours, of an
    address that has changed, or of an erased record."""
    if len(token) > 400:
        raise Refused(UNSUBSCRIBE_NOT_VALID, status=404)
    return links.supporter_for_address(token, _UNSUBSCRIBE_SALT, UNSUBSCRIBE_NOT_VALID)


def one_click_unsubscribe(token: str, now: datetime | None = None) -> Supporter:
    """RFC 8058: the POST behind a newsletter's List-Unsubscribe header (or the button of
    its page) withdraws the newsletter, as "one-click unsubscribe" from "List-Unsubscribe".
    Idempotent: once withdrawn, another press records nothing."""
    supporter = unsubscribing(token)
    withdraw_newsletter(
        supporter,
        wording=ONE_CLICK_WORDING,
        source=ONE_CLICK_SOURCE,
        actor_name=web.actor_name(supporter),
        now=now,
    )
    return supporter
