"""Newsletter-type e-mail: the one-click unsubscribe (RFC 8058) every such e-mail carries.

A newsletter-type e-mail (a kind in NEWSLETTER_KINDS) carries

    List-Unsubscribe: <https://…/newsletter/unsubscribe/<token>>, <mailto:…?subject=unsubscribe>
    List-Unsubscribe-Post: List-Unsubscribe=One-Click

so the reader's mail program shows an "Unsubscribe" button that withdraws the newsletter
with one POST (people/views.py). The token is signed for the supporter and their current
address (people/consent.unsubscribe_token).

None of the e-mails this app sends is a newsletter: receipts, sign-in links, pledges,
reminders about one's own gift and the newsletter's confirmation are what a donor asked
for or needs, and an unsubscribe there would not stop them. The foundation sends its
newsletters from another tool: the supporters export gives each subscriber's
`unsubscribe_url` (people/queries.py), for that tool to put in this header. A kind this app
sends later that is a newsletter is added to NEWSLETTER_KINDS and queued with `queue_newsletter`.
"""

from __future__ import annotations

from urllib.parse import quote

from flask import current_app

from supporters.mail.outbox import queue_once
from supporters.models import OutboxEmail, Supporter
from supporters.people import consent

#: the kinds of e-mail that are newsletters (none of ours yet: see the module's text)
NEWSLETTER_KINDS: frozenset[str] = frozenset()


def unsubscribe_headers(supporter: Supporter) -> dict[str, str]:
    """The List-Unsubscribe and List-Unsubscribe-Post header lines for an e-mail to `supporter`:
    the HTTPS one-click address first, then a mailto to the organisation (read by people)."""
    mailbox = current_app.config.get("MAIL_REPLY_TO") or current_app.config.get("SUPPORTERS_ORG_EMAIL") or ""
    targets = [f"<{consent.unsubscribe_url(supporter.id, supporter.email_normalised)}>"]
    if mailbox:
        targets.append(f"<mailto:{quote(mailbox, safe='@')}?subject=unsubscribe>")
    return {"List-Unsubscribe": ", ".join(targets), "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}


def queue_newsletter(
    dedupe_key: str, kind: str, supporter: Supporter, subject: str, body_text: str, body_html: str
) -> OutboxEmail | None:
    """Queue a newsletter-type e-mail (its `kind` one of NEWSLETTER_KINDS) to a supporter who
    gets the newsletter, with its unsubscribe headers; flush. None when the supporter does not
    (any more), was erased, or the message is queued already."""
    if kind not in NEWSLETTER_KINDS:
        raise ValueError(f"{kind!r} is not a newsletter-type e-mail (mail/unsubscribe.NEWSLETTER_KINDS)")
    if supporter.anonymised_at is not None or consent.newsletter_state(supporter.id) != "subscribed":
        return None
    return queue_once(
        dedupe_key, kind, supporter.email, subject, body_text, body_html, headers=unsubscribe_headers(supporter)
    )
