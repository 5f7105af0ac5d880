"""The local test-payment page: Checkout's stand-in when the app runs offline on localstripe.

Only served by the offline gateway. It creates in localstripe what Checkout would
create in Stripe; the gift is then marked paid by localstripe's signed webhooks,
exactly as with Stripe.
"""

from __future__ import annotations

from flask import Blueprint, abort, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from schwifty import IBAN
from schwifty.exceptions import SchwiftyException

from supporters.extensions import limiter
from supporters.giving import checkout, lifecycle
from supporters.lib.transactions import keep_changes
from supporters.models import Gift, GiftStatus
from supporters.payments import PaymentsUnavailable, gateway
from supporters.payments.offline import (
    P24_FAILING_BANK,
    TEST_BLIK_CODES,
    TEST_CARDS,
    TEST_IBANS,
    TEST_P24_BANKS,
    OfflineChoice,
    OfflineGateway,
)

bp = Blueprint("offline_pay", __name__, url_prefix="/pay/test")


def _offline() -> OfflineGateway:
    current = gateway()
    if not isinstance(current, OfflineGateway):
        abort(404)
    return current


def _gift(session_id: str) -> Gift:
    gift = checkout.gift_by_checkout_session(session_id)
    if gift is None:
        abort(404, _("This payment page does not exist or has expired."))
    return gift


def _page(
    gift: Gift, session_id: str, error: str | None = None, status: int = 200, chosen: str | None = None
) -> ResponseReturnValue:
    plan = gift.recurring_plan
    cancel = url_for("donate.cancelled", session_id=session_id)
    offered = checkout.checkout_request(gift).payment_methods
    return render_template(
        "donate/offline_pay.html",
        gift=gift,
        plan=plan,
        methods=offered,
        chosen=chosen if chosen in offered else offered[0],
        cards=TEST_CARDS,
        blik_codes=TEST_BLIK_CODES,
        banks=TEST_P24_BANKS,
        failing_bank=P24_FAILING_BANK,
        ibans=TEST_IBANS,
        form=request.form if request.method == "POST" else {},
        session_id=session_id,
        error=error,
        cancel_url=cancel,
    ), status


def _choice(gift: Gift) -> OfflineChoice | str:
    """What the donor chose on the page, checked; or what to tell them when it is no choice."""
    form = request.form
    method = form.get("method", "card")
    if method not in checkout.checkout_request(gift).payment_methods:
        return _("Choose one of the ways to pay.")
    if method == "card":
        card = form.get("card", "")
        return OfflineChoice("card", card) if card in TEST_CARDS else _("Choose one of the test cards.")
    if method == "blik":
        code = form.get("blik_code", "").strip()
        if len(code) == 6 and code.isascii() and code.isdigit():
            return OfflineChoice("blik", code)
        return _("Enter the 6-digit BLIK code from your banking app.")
    if method == "p24":
        bank = form.get("p24_bank", "")
        return OfflineChoice("p24", bank) if bank in TEST_P24_BANKS else _("Choose your bank.")
    try:
        iban = IBAN(form.get("iban", "")[:64])
    except SchwiftyException:
        return _("This is not a valid IBAN. Check it and try again.")
    return OfflineChoice("sepa_debit", iban.compact)


#: what the page says when a payment is declined, by `OfflineChoice.declined_because`
DECLINED = {
    "card": _l("Your card was declined. Nothing was charged. Try another card."),
    "blik_refused": _l(
        "The BLIK code was refused. Nothing was charged. Get a new code in your banking app and try again."
    ),
    "blik_timed_out": _l(
        "The payment was not confirmed in your banking app in time. Nothing was charged. Get a new code and try again."
    ),
    "bank": _l("Your bank refused the payment. Nothing was charged. Choose another bank or another way to pay."),
}


@bp.get("/<session_id>")
def page(session_id: str) -> ResponseReturnValue:
    """The ways to pay one gift, as Checkout would offer them, with their test values."""
    _offline()
    gift = _gift(session_id)
    if gift.status not in (GiftStatus.PENDING, GiftStatus.FAILED):
        return redirect(url_for("donate.thanks", session_id=session_id), 303)
    return _page(gift, session_id)


def _attempt(gift: Gift) -> str:
    """The name of the attempt about to be made: the gift and the attempt before it (a
    declined card's intent), so a retry is a new attempt and a repeated press is not."""
    return f"offline-pay:gift-{gift.id}:after-{gift.stripe_payment_intent_id or 'none'}"


@bp.post("/<session_id>")
@limiter.limit("30 per hour")
def pay(session_id: str) -> ResponseReturnValue:
    """Pay as the donor chose (test card, BLIK code, bank, IBAN): once, however many times Pay is pressed.

    Presses take turns on the gift's row (held until this request commits, charge
    included), and each asks localstripe what the attempt before it became: one that
    succeeded, is processing or waits for 3-D Secure is not paid again (its webhook
    may not have arrived yet, so the gift alone cannot tell).
    """
    offline = _offline()
    gift = lifecycle.lock(_gift(session_id))
    if gift.status not in (GiftStatus.PENDING, GiftStatus.FAILED):
        return redirect(url_for("donate.thanks", session_id=session_id), 303)
    choice = _choice(gift)
    if isinstance(choice, str):
        return _page(gift, session_id, choice, 400, chosen=request.form.get("method"))
    try:
        standing = offline.standing_attempt(gift.stripe_payment_intent_id)
        if standing == "requires_action":
            return redirect(url_for("offline_pay.authenticate", session_id=session_id), 303)
        if standing is not None:
            return redirect(url_for("donate.thanks", session_id=session_id), 303)
        result = offline.pay(checkout.checkout_request(gift), choice, _attempt(gift))
    except PaymentsUnavailable:
        return render_template("donate/unavailable.html"), 503
    checkout.record_payment_attempt(
        gift,
        payment_intent_id=result.payment_intent_id,
        subscription_id=result.subscription_id,
        customer_id=result.customer_id,
    )
    keep_changes()  # the attempt happened, declined or not: Stripe would remember it too
    if result.status == "requires_action":
        return redirect(url_for("offline_pay.authenticate", session_id=session_id), 303)
    if result.status == "declined":
        return _page(gift, session_id, str(DECLINED[choice.declined_because]), 402, chosen=choice.method)
    return redirect(url_for("donate.thanks", session_id=session_id), 303)


@bp.route("/<session_id>/authenticate", methods=["GET", "POST"])
def authenticate(session_id: str) -> ResponseReturnValue:
    """A stand-in for the bank's 3-D Secure challenge: approve or fail it."""
    offline = _offline()
    gift = _gift(session_id)
    if gift.status not in (GiftStatus.PENDING, GiftStatus.FAILED) or not gift.stripe_payment_intent_id:
        return redirect(url_for("donate.thanks", session_id=session_id), 303)
    if request.method == "GET":
        return render_template("donate/offline_3ds.html", gift=gift, session_id=session_id)
    try:
        intent = offline.retrieve_payment_intent(gift.stripe_payment_intent_id)
        if intent.get("status") != "requires_action":
            return redirect(url_for("offline_pay.page", session_id=session_id), 303)
        outcome = offline.authenticate(intent["id"], intent["client_secret"], request.form.get("decision") == "approve")
    except PaymentsUnavailable:
        return render_template("donate/unavailable.html"), 503
    if outcome == "succeeded":
        return redirect(url_for("donate.thanks", session_id=session_id), 303)
    if outcome == "declined":
        return _page(gift, session_id, _("Your card was declined. Nothing was charged. Try another card."), 402)
    return _page(gift, session_id, _("The bank could not confirm it was you. Nothing was charged. Try again."), 402)


# --- The card of a recurring gift (the Customer Portal's stand-in) ---------------------------

#: the test cards the card page offers (localstripe attaches a declined card too; its next charge fails)
CARD_UPDATE_CARDS = ("4242424242424242", "4000000000000341")


def _card_target(token: str) -> tuple[OfflineGateway, str, str]:
    offline = _offline()
    target = offline.read_card_token(token)
    if target is None:
        abort(404, _("This card page does not exist or has expired."))
    return offline, target[0], target[1]


@bp.get("/card/<token>")
def card(token: str) -> ResponseReturnValue:
    """Give the recurring gift a new test card, as Stripe's Customer Portal would."""
    _offline_gateway, _subscription, back = _card_target(token)
    return render_template("donate/offline_card.html", cards=CARD_UPDATE_CARDS, back=back, error=None)


@bp.post("/card/<token>")
@limiter.limit("30 per hour")
def save_card(token: str) -> ResponseReturnValue:
    """The new card becomes the subscription's and its customer's default; back to the plan."""
    offline, subscription, back = _card_target(token)
    number = request.form.get("card", "")
    if number not in CARD_UPDATE_CARDS:
        return render_template(
            "donate/offline_card.html", cards=CARD_UPDATE_CARDS, back=back, error=_("Choose one of the test cards.")
        ), 400
    try:
        offline.attach_test_card(subscription, number)
    except PaymentsUnavailable:
        return render_template("donate/unavailable.html"), 503
    return redirect(back, 303)
