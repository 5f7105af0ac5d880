"""The e-mail that confirms a donor's change to their recurring gift: a new amount, monthly
or yearly, a pause and its end, a new card, the gift canceled. Queued with the change
(flush, never commit), once per change (the key names the change's audit row), in the
supporter's language, with a signed link to the plan's page (`/my/plans/<id>`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask_babel import force_locale, format_date
from flask_babel import lazy_gettext as _l

from supporters.donors.links import manage_url
from supporters.lib.money import format_amount
from supporters.mail.language import mail_locale, render_email
from supporters.mail.outbox import queue_once
from supporters.models import OutboxEmail, RecurringPlan

PLAN_CHANGED = "plan_changed"

SUBJECTS = {
    "plan.amount_change": _l("The amount of your regular gift to %(org)s has changed"),
    "plan.interval_change": _l("How often you give to %(org)s has changed"),
    "plan.pause": _l("Your regular gift to %(org)s is paused"),
    "plan.resume": _l("Your regular gift to %(org)s is running again"),
    "plan.card_update": _l("Your card for your regular gift to %(org)s is updated"),
    "plan.cancel": _l("Your regular gift to %(org)s is canceled"),
}


def _day(value: Any, locale: str) -> str:
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str) and value:
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return value
    else:
        return ""
    with force_locale(locale):
        return str(format_date(moment, "long"))


def queue_plan_change(plan: RecurringPlan, action: str, details: dict[str, Any], key: str) -> OutboxEmail | None:
    """Queue the confirmation of one change (`action`, as audited, with its details); None
    when queued before, or for a supporter who cannot be written to."""
    supporter = plan.supporter
    if action not in SUBJECTS or supporter is None or supporter.anonymised_at is not None:
        return None
    locale = mail_locale(supporter.language)
    currency = plan.currency

    def amount(value: Any) -> str:
        return format_amount(int(value), currency, locale) if isinstance(value, int) else ""

    subject, body_text, body_html = render_email(
        "plan_changed",
        locale,
        SUBJECTS[action],
        supporter.name,
        change=action.removeprefix("plan."),
        amount=amount(plan.amount_minor),
        old_amount=amount(details.get("from_minor")),
        interval=plan.interval.value,
        old_interval=details.get("from_interval"),
        months=details.get("months"),
        until=_day(details.get("until"), locale),
        starts=_day(details.get("starts"), locale),
        next_charge=_day(plan.current_period_end, locale),
        plan_link=manage_url(supporter, f"/my/plans/{plan.id}", locale),
        donor_link=manage_url(supporter, f"/my/plans/{plan.id}", locale),
    )
    return queue_once(key, PLAN_CHANGED, supporter.email, subject, body_text, body_html)
