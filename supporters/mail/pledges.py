"""The e-mail with a bank-transfer pledge's instructions: the account, the amount and the
transfer title, queued with the pledge (flush, never commit), in the donor's language.

Unlike the newsletter confirmation, it goes before any money moves: a donor who
chose to pay by transfer needs it to pay at all. What a stranger could do with it is
bounded by the donation form's limits per connection and per address, and the
message asks nothing of its reader but a transfer they did not mean to make.
"""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

from supporters.donors.links import manage_url
from supporters.giving import transfer_details
from supporters.mail.language import mail_locale, render_email
from supporters.mail.outbox import queue_once
from supporters.models import Gift, OutboxEmail

TRANSFER_INSTRUCTIONS = "transfer_instructions"


def queue_instructions(gift: Gift, page_url: str) -> OutboxEmail | None:
    """Queue the instructions for a pledge, once per pledge; None when queued before."""
    supporter = gift.supporter
    if supporter is None or supporter.anonymised_at is not None:
        return None
    locale = mail_locale(supporter.language)
    subject, body_text, body_html = render_email(
        "transfer_instructions",
        locale,
        _l("How to complete your gift to %(org)s by bank transfer"),
        supporter.name,
        details=transfer_details.details(gift, locale),
        page_url=page_url,
        donor_link=manage_url(supporter, "/my/gifts", locale),
    )
    return queue_once(
        f"transfer-instructions:gift:{gift.id}", TRANSFER_INSTRUCTIONS, supporter.email, subject, body_text, body_html
    )
