"""The e-mail with a donor's sign-in link and code, queued when they ask at /my (flush,
never commit), in the donor's language.

Only a supporter who has given is written to; the page answers the same either way.
What a stranger can do with it is bounded by the page's limits per connection and per
address: an e-mail that asks nothing of its reader but to ignore it.
"""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

from supporters.lib.web import public_url
from supporters.mail.language import mail_locale, render_email
from supporters.mail.outbox import queue_once
from supporters.models import DonorSignIn, OutboxEmail, Supporter

DONOR_SIGN_IN = "donor_sign_in"


def queue_sign_in(supporter: Supporter, row: DonorSignIn, token: str, code: str, minutes: int) -> OutboxEmail | None:
    """Queue the sign-in e-mail for `row` (once per sign-in)."""
    if supporter.anonymised_at is not None:
        return None
    locale = mail_locale(supporter.language)
    subject, body_text, body_html = render_email(
        "donor_sign_in",
        locale,
        _l("Your sign-in link for %(org)s"),
        supporter.name,
        link=public_url("donors.link_page", sign_in_token=token, lang=locale),
        code=code,
        minutes=minutes,
    )
    return queue_once(f"donor-sign-in:{row.id}", DONOR_SIGN_IN, supporter.email, subject, body_text, body_html)
