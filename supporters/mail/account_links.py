"""The e-mails of a staff account (the module is not named staff_*: that prefix marks
dashboard pages): a password-reset link, and the unlock link sent after many failed
sign-ins. Queued with the request (flush, never commit), in the app's
default language (a staff account has no language of its own).

Only an active account is written to; the pages answer the same either way.
"""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

from supporters.lib.web import public_url
from supporters.mail.language import mail_locale, render_email
from supporters.mail.outbox import queue_once
from supporters.models import OutboxEmail, StaffToken, StaffUser

STAFF_PASSWORD_RESET = "staff_password_reset"
STAFF_UNLOCK = "staff_unlock"


def queue_reset(user: StaffUser, row: StaffToken, token: str, minutes: int) -> OutboxEmail | None:
    """Queue the reset e-mail for `row` (once per link)."""
    locale = mail_locale(None)
    subject, body_text, body_html = render_email(
        "staff_password_reset",
        locale,
        _l("Reset your staff password for %(org)s"),
        "",
        link=public_url("dashboard_auth.reset_page", staff_token=token, lang=locale),
        minutes=minutes,
        email=user.email,
        donor_link="",
    )
    return queue_once(f"staff-reset:{row.id}", STAFF_PASSWORD_RESET, user.email, subject, body_text, body_html)


def queue_unlock(user: StaffUser, row: StaffToken, token: str, minutes: int) -> OutboxEmail | None:
    """Queue the unlock e-mail for `row` (once per link)."""
    locale = mail_locale(None)
    subject, body_text, body_html = render_email(
        "staff_unlock",
        locale,
        _l("Many failed sign-ins to your staff account at %(org)s"),
        "",
        link=public_url("dashboard_auth.unlock_page", unlock_token=token, lang=locale),
        reset_link=public_url("dashboard_auth.forgot_page", lang=locale),
        minutes=minutes,
        email=user.email,
        donor_link="",
    )
    return queue_once(f"staff-unlock:{row.id}", STAFF_UNLOCK, user.email, subject, body_text, body_html)
