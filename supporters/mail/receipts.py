"""Receipts: the e-mail a donor gets for a paid gift, queued in the transaction
that records the payment (flush, never commit), in the supporter's language.
One receipt per gift, ever: the outbox's unique dedupe key sees to it."""

from __future__ import annotations

from typing import Any

from flask import current_app, render_template
from flask_babel import force_locale, format_date
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from supporters.donors.links import manage_url
from supporters.extensions import db
from supporters.giving.fees import split_covered_fee
from supporters.lib.money import format_amount
from supporters.lib.web import public_url
from supporters.mail.language import mail_locale, privacy_link
from supporters.mail.outbox import queue_once
from supporters.models import (
    GIFT_PAID,
    Gift,
    GiftKind,
    GiftMethod,
    OutboxEmail,
    RecurringPlan,
    Supporter,
)
from supporters.models.recurring import PlanInterval

RECEIPT = "receipt"
CORRECTED_RECEIPT = "receipt_corrected"
CANCELLATION = "receipt_cancelled"

#: how the donor paid, as the receipt says it
PAYMENT_METHODS = {
    GiftMethod.STRIPE: _l("Online payment through Stripe"),
    GiftMethod.BANK_TRANSFER: _l("Bank transfer"),
    GiftMethod.CHEQUE: _l("Cheque"),
    GiftMethod.CASH: _l("Cash"),
}


def receipt_dedupe_key(gift: Gift) -> str:
    """The outbox key of a gift's receipt: one receipt per gift, ever."""
    return f"receipt:gift:{gift.id}"


def queue_receipt(gift: Gift) -> OutboxEmail | None:
    """Queue the receipt for a paid gift, in the supporter's language; flush, never commit.

    Call it in the transaction that marks the gift succeeded (a one-time gift, the
    first instalment of a plan or a renewal), so the receipt exists if and only if
    the payment is recorded. Returns the new outbox row, or None when nothing was
    queued: the gift already has a receipt (also when another transaction queued it
    at the same moment: the UNIQUE dedupe key catches that) or its supporter was
    anonymised. Raises ValueError for a gift whose money never arrived (not GIFT_PAID) or without a paid_at.
    """
    if gift.id is None:
        db.session.flush()
    if gift.id is None:
        raise ValueError("the gift must be added to the session before its receipt is queued")
    if gift.status not in GIFT_PAID or gift.paid_at is None:
        raise ValueError(f"gift {gift.id} is not paid; only paid gifts get a receipt")
    supporter = gift.supporter
    if supporter is None or supporter.anonymised_at is not None:
        return None
    # No look for an existing receipt first: a gift is paid once, so there almost never
    # is one, and the insert's ON CONFLICT answers the rare repeat (a second of a
    # statement every payment would pay for).
    subject, body_text, body_html = _render_receipt(gift, supporter)
    return _queue(receipt_dedupe_key(gift), RECEIPT, supporter, subject, body_text, body_html)


def receipt_was_queued(gift: Gift) -> bool:
    """True when the gift's receipt was queued (and so sent, or about to be)."""
    return _already_queued(receipt_dedupe_key(gift))


def queue_corrected_receipt(gift: Gift, *, correction: int, replaces: str | None) -> OutboxEmail | None:
    """Queue a corrected receipt for a gift staff corrected: the gift as it now is, saying it
    replaces receipt `replaces`. `correction` counts the gift's corrections (1, 2…), so each
    sends one e-mail however often its request is repeated. None for an anonymised supporter."""
    supporter = gift.supporter
    if supporter is None or supporter.anonymised_at is not None:
        return None
    key = f"receipt:gift:{gift.id}:correction:{correction}"
    if _already_queued(key):
        return None
    subject, body_text, body_html = _render_receipt(gift, supporter, replaces=replaces or "")
    return _queue(key, CORRECTED_RECEIPT, supporter, subject, body_text, body_html)


def queue_cancellation_notice(gift: Gift) -> OutboxEmail | None:
    """Queue the notice that a gift's receipt is cancelled: staff voided the gift, recorded by
    mistake. One per gift; None for an anonymised supporter."""
    supporter = gift.supporter
    if supporter is None or supporter.anonymised_at is not None:
        return None
    key = f"receipt:gift:{gift.id}:cancelled"
    if _already_queued(key):
        return None
    locale = mail_locale(supporter.language)
    org_name = current_app.config.get("SUPPORTERS_ORG_NAME", "")
    with force_locale(locale):
        context = {
            "lang": locale,
            "org_name": org_name,
            "supporter_name": supporter.name.strip(),
            "amount": format_amount(gift.amount_minor, gift.currency, locale),
            "paid_on": format_date(gift.paid_at, format="long") if gift.paid_at else "",
            "receipt_number": gift.receipt_number,
            "privacy_link": privacy_link(locale),
            "donor_link": manage_url(supporter, "/my/gifts", locale),
        }
        if gift.receipt_number:
            subject = _("Receipt %(number)s from %(org)s is cancelled", number=gift.receipt_number, org=org_name)
        else:
            subject = _("Your receipt from %(org)s is cancelled", org=org_name)
        body_text = render_template("email/receipt_cancelled.txt", **context)
        body_html = render_template("email/receipt_cancelled.html", **context)
    return _queue(key, CANCELLATION, supporter, subject, body_text, body_html)


def _queue(
    key: str, kind: str, supporter: Supporter, subject: str, body_text: str, body_html: str
) -> OutboxEmail | None:
    """The e-mail added to the outbox, or None when one with its key is there already."""
    return queue_once(key, kind, supporter.email, subject, body_text, body_html)


def _already_queued(dedupe_key: str) -> bool:
    return db.session.scalar(select(OutboxEmail.id).filter_by(dedupe_key=dedupe_key)) is not None


def receipt_context(gift: Gift, supporter: Supporter, locale: str, replaces: str | None = None) -> dict[str, Any]:
    """What a gift's receipt says, in `locale`, for its templates (the e-mail's and the PDF's:
    templates/receipts/_receipt.html); with `replaces`, a corrected receipt's."""
    org_name = current_app.config.get("SUPPORTERS_ORG_NAME", "")
    plan = gift.recurring_plan
    campaign = gift.campaign
    recurring = gift.kind == GiftKind.RECURRING
    test_mode = bool(current_app.config.get("PAYMENTS_TEST_MODE", True)) and gift.method == GiftMethod.STRIPE

    with force_locale(locale):
        context = {
            "lang": locale,
            "org_name": org_name,
            "supporter_name": supporter.name.strip(),
            "amount": format_amount(gift.amount_minor, gift.currency, locale),
            "covers_fee": gift.covers_fee,
            "covered_fee": _covered_fee(gift, locale),
            "method": str(PAYMENT_METHODS.get(gift.method, gift.method)),
            "paid_on": format_date(gift.paid_at, format="long"),
            "receipt_number": gift.receipt_number,
            "frequency": _frequency(gift, plan),
            "campaign_name": campaign.text("name", locale) if campaign else None,
            "dedication": _dedication(gift),
            "recurring": recurring,
            "test_mode": test_mode,
            "corrected": replaces is not None,
            "replaces": replaces,
            "privacy_link": privacy_link(locale),
            "donor_link": manage_url(supporter, "/my/gifts", locale),
            "quiet_link": public_url("donor_contact.quiet_page", lang=locale),
        }
    return context


def _render_receipt(gift: Gift, supporter: Supporter, replaces: str | None = None) -> tuple[str, str, str]:
    """Subject, plain text and HTML of a gift's receipt, in the supporter's language; with
    `replaces` (a receipt number, or "" when the first had none), a corrected receipt."""
    locale = mail_locale(supporter.language)
    org_name = current_app.config.get("SUPPORTERS_ORG_NAME", "")
    with force_locale(locale):
        context = receipt_context(gift, supporter, locale, replaces)
        if replaces is not None:
            subject = _(
                "Corrected receipt %(number)s for your gift to %(org)s", number=gift.receipt_number, org=org_name
            )
        elif gift.receipt_number:
            subject = _("Receipt %(number)s for your gift to %(org)s", number=gift.receipt_number, org=org_name)
        else:
            subject = _("Thank you for your gift to %(org)s", org=org_name)
        body_text = render_template("email/receipt.txt", **context)
        body_html = render_template("email/receipt.html", **context)
    return subject, body_text, body_html


def _covered_fee(gift: Gift, locale: str) -> dict[str, str] | None:
    """The gift and the processing fee the donor chose to add, apart (formatted), or None
    when the donor covered no fee or the two cannot be told apart any more."""
    if not gift.covers_fee:
        return None
    split = split_covered_fee(gift.amount_minor, gift.currency)
    if split is None:
        return None
    gift_minor, fee_minor = split
    return {
        "gift": format_amount(gift_minor, gift.currency, locale),
        "fee": format_amount(fee_minor, gift.currency, locale),
    }


def _frequency(gift: Gift, plan: RecurringPlan | None) -> str:
    if gift.kind != GiftKind.RECURRING:
        return _("One-time gift")
    if plan is not None and plan.interval == PlanInterval.YEAR:
        return _("Yearly gift")
    if plan is not None and plan.interval == PlanInterval.MONTH:
        return _("Monthly gift")
    return _("Regular gift")


def _dedication(gift: Gift) -> str | None:
    name = (gift.dedication or "").strip()
    if not name:
        return None
    if gift.dedication_kind == "memory":
        return _("In memory of %(name)s", name=name)
    if gift.dedication_kind == "honour":
        return _("In honour of %(name)s", name=name)
    return name
