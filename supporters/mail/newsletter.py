"""The e-mail that asks an address to confirm the newsletter (double opt-in), queued
with the payment of the gift whose form asked, in the supporter's language.

It goes once the gift is paid, not when the form is sent: a form costs nothing to
send with a stranger's address, a payment does, so nobody can use the form to fill
someone's mailbox. Flush, never commit; one message per request, ever (dedupe key).
"""

from __future__ import annotations

from flask import current_app, render_template
from flask_babel import force_locale, format_date
from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from supporters.extensions import db
from supporters.lib.web import public_url
from supporters.mail.language import mail_locale, privacy_link
from supporters.models import ConsentRequest, Gift, OutboxEmail, Supporter, utcnow
from supporters.people import consent

NEWSLETTER_CONFIRMATION = "newsletter_confirmation"


def confirmation_dedupe_key(request: ConsentRequest) -> str:
    """The outbox key of a request's confirmation: one e-mail per request, ever."""
    return f"newsletter-confirmation:request:{request.id}"


def queue_confirmation(gift: Gift) -> OutboxEmail | None:
    """Queue the confirmation link for the newsletter request of `gift`'s form, if there
    is one that should be sent now (`people.consent.request_to_send`); flush, never commit.

    Call it in the transaction that records the gift's payment. Returns the new outbox
    row, or None when nothing was queued.
    """
    request = consent.request_to_send(gift)
    if request is None:
        return None
    key = confirmation_dedupe_key(request)
    if db.session.scalar(select(OutboxEmail.id).filter_by(dedupe_key=key)) is not None:
        return None
    supporter = db.session.get(Supporter, request.supporter_id)
    assert supporter is not None
    # A savepoint, so a duplicate from a concurrent transaction costs only this message
    # (and its token), not the caller's transaction that records the payment.
    savepoint = db.session.begin_nested()
    token = consent.issue_link(request)
    locale = mail_locale(supporter.language)
    org_name = current_app.config.get("SUPPORTERS_ORG_NAME", "")
    with force_locale(locale):
        context = {
            "lang": locale,
            "org_name": org_name,
            "supporter_name": supporter.name.strip(),
            "wording": request.wording,
            "link": confirmation_link(token, locale),
            "asked_on": format_date(request.requested_at, format="long"),
            "valid_until": format_date(request.expires_at, format="long"),
            "privacy_link": privacy_link(locale),
        }
        subject = _("Please confirm your subscription to the %(org)s newsletter", org=org_name)
        body_text = render_template("email/newsletter_confirmation.txt", **context)
        body_html = render_template("email/newsletter_confirmation.html", **context)
    email = OutboxEmail(
        dedupe_key=key,
        kind=NEWSLETTER_CONFIRMATION,
        to_address=supporter.email,
        subject=subject[:300],
        body_text=body_text,
        body_html=body_html,
        send_after=utcnow(),
    )
    db.session.add(email)
    try:
        savepoint.commit()
    except IntegrityError:
        savepoint.rollback()
        if db.session.scalar(select(OutboxEmail.id).filter_by(dedupe_key=key)) is None:
            raise
        return None
    return email


def confirmation_link(token: str, locale: str) -> str:
    """The absolute link of the confirmation page, on SUPPORTERS_PUBLIC_URL, in `locale`
    (in a request or not: `flask stripe reconcile` may queue it from the command line)."""
    return public_url("newsletter.confirm", token=token, lang=locale)
