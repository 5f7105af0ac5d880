"""/donate: the donation form, the thank-you page and the way back from checkout."""

from __future__ import annotations

import math
import secrets
import unicodedata
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_babel import format_decimal, format_time, ngettext
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from supporters.campaigns.presets import suggested_amounts
from supporters.core.errors import render_error
from supporters.extensions import db, limiter
from supporters.giving import checkout, transfer_details, transfers
from supporters.giving.forms import BANK_TRANSFER, NEWSLETTER_WORDING, OTHER, DonationForm, preset_label
from supporters.lib import limits, money
from supporters.lib.forms import whole_number
from supporters.lib.i18n import current_locale
from supporters.lib.transactions import commit_now
from supporters.models import (
    Campaign,
    Frequency,
    Gift,
    GiftMethod,
    GiftStatus,
    normalise_email,
)
from supporters.payments import PaymentsUnavailable, gateway

bp = Blueprint("donate", __name__, url_prefix="/donate")

ATTRIBUTION_LIMITS = {
    "src": 2000,
    "article": 200,
    "variant": 64,
    "utm_source": 100,
    "utm_medium": 100,
    "utm_campaign": 100,
}


def _clean(value: str | None, limit: int) -> str | None:
    """Attribution is never the donor's doing: trim it to what fits, never refuse a gift over it."""
    if not value:
        return None
    text = "".join(ch for ch in value if unicodedata.category(ch)[0] != "C").strip()
    return text[:limit] or None


def _campaign(slug: str | None) -> Campaign | None:
    """The active campaign named in the link, else the general one, else any active one."""
    query = select(Campaign).filter_by(active=True)
    slug = _clean(slug, 64)
    if slug:
        found = db.session.execute(query.filter_by(slug=slug)).scalar_one_or_none()
        if found:
            return found
    return db.session.execute(query.order_by((Campaign.slug != "general"), Campaign.id).limit(1)).scalar_one_or_none()


def _presets(campaign: Campaign | None, currency: str) -> list[int]:
    return suggested_amounts(campaign, currency)


def _notes(campaign: Campaign | None, currency: str) -> dict[int, str]:
    """The words beside each suggested amount, in the page's language."""
    if campaign is None:
        return {}
    locale = current_locale()
    return {amount: campaign.amount_note(currency, amount, locale) for amount in _presets(campaign, currency)}


def _setup(form: DonationForm, campaign: Campaign | None, currency: str) -> None:
    form.setup(_presets(campaign, currency), _notes(campaign, currency))


def _email_key() -> str:
    return "donor:" + normalise_email(request.form.get("email", ""))[:254]


def _no_email() -> bool:
    """A form without an e-mail is sent back (and the per-address limit still counts it)."""
    return not normalise_email(request.form.get("email", ""))


def _sent_back(response: Any) -> bool:
    """A form sent back with errors starts no gift: its hits are given back. Every other
    answer counts, a started gift first (and a checkout that could not open: its gift exists)."""
    return bool(response.status_code == 400)


def _ip_limit() -> str:
    return str(current_app.config["DONATE_LIMIT_PER_IP"])


def _email_limit() -> str:
    return str(current_app.config["DONATE_LIMIT_PER_EMAIL"])


def _limited_message() -> str:
    return _(
        "Several gifts were started from this connection or with this e-mail address in a short time. "
        "To protect donors from card fraud, "
        "please wait a while before trying again. If you were charged, your receipt is on its way."
    )


def _prefill(form: DonationForm, campaign: Campaign | None) -> None:
    """Fill a fresh form from the link that led here (campaign, amount, frequency, currency, src)."""
    args = request.args
    currencies = current_app.config["SUPPORTERS_CURRENCIES"]
    currency = (args.get("currency") or "").upper()
    form.currency.data = currency if currency in currencies else currencies[0]
    form.shown_currency.data = form.currency.data
    frequency = args.get("frequency", "")
    if frequency in {f.value for f in Frequency}:
        form.frequency.data = frequency
    elif campaign is not None:
        form.frequency.data = campaign.default_frequency.value
    presets = _presets(campaign, form.currency.data)
    try:
        amount = money.parse_amount(args.get("amount", ""), form.currency.data)
    except money.MoneyError:
        amount = None
    if amount in presets:
        form.amount_choice.data = str(amount)
    elif amount is not None:
        form.amount_choice.data = OTHER
        form.custom_amount.data = money.format_amount_plain(amount, form.currency.data, current_locale())
    else:
        form.amount_choice.data = str(presets[min(1, len(presets) - 1)])
    form.campaign.data = campaign.slug if campaign else ""
    for name, limit in ATTRIBUTION_LIMITS.items():
        getattr(form, name).data = _clean(args.get(name), limit) or ""
    form.submission_id.data = secrets.token_hex(16)


def _render(
    form: DonationForm, campaign: Campaign | None, status: int = 200, limited: str | None = None
) -> ResponseReturnValue:
    currency = _shown_currency(form)
    locale = current_locale()
    chosen = form.amount_minor or _chosen_amount(form, currency)
    sample = chosen or checkout.minimum_gift(currency)
    fee = {
        "percent": format_decimal(Decimal(current_app.config["SUPPORTERS_FEE_PERCENT"])),
        "example": money.format_amount(checkout.estimate_fee(sample, currency), currency, locale),
        "on": money.format_amount(sample, currency, locale),
    }
    return render_template(
        "donate/form.html",
        form=form,
        campaign=campaign,
        fee=fee,
        button=_button_label(form, chosen, currency),
        client=_client_data(campaign),
        keep=_link_state(form, chosen, currency),
        limited=limited,
    ), status


def _shown_currency(form: DonationForm) -> str:
    currencies: list[str] = current_app.config["SUPPORTERS_CURRENCIES"]
    return form.currency.data if form.currency.data in currencies else currencies[0]


def _chosen_amount(form: DonationForm, currency: str) -> int | None:
    """The amount the form shows as chosen (a preset, or a readable own amount), in minor units."""
    typed = form.custom_amount.data or ""
    if typed:
        try:
            return money.parse_amount(typed, currency)
        except money.MoneyError:
            return None
    return _first_amount(form)


#: what the pay button says, by how often and how the donor pays ("%(amount)s" filled in)
BUTTON_LABELS = {
    Frequency.ONE_TIME.value: _l("Give %(amount)s"),
    Frequency.MONTHLY.value: _l("Give %(amount)s every month"),
    Frequency.YEARLY.value: _l("Give %(amount)s every year"),
    "transfer": _l("Get the transfer details for %(amount)s"),
}


def _button_label(form: DonationForm, amount: int | None, currency: str) -> str:
    """ "Give 102,54 zł every month": the amount (with the fee, if the donor covers it) and how often."""
    if amount is None:
        return _("Continue to payment")
    by_transfer = form.payment.data == BANK_TRANSFER
    if form.covers_fee.data and not by_transfer:
        amount += checkout.estimate_fee(amount, currency)
    key = "transfer" if by_transfer else (form.frequency.data or Frequency.ONE_TIME.value)
    label = BUTTON_LABELS.get(key, BUTTON_LABELS[Frequency.ONE_TIME.value])
    return str(label) % {"amount": money.format_amount(amount, currency, current_locale())}


def _client_data(campaign: Campaign | None) -> dict[str, Any]:
    """What donate.js needs to follow the donor's choices without a round trip: each
    currency's presets (labels formatted here, as the page formats them), the fee rule's
    figures, and the texts with "{amount}" / "{fee}" where the numbers go. The server
    computes the gift and its fee again on submission; the page only previews them."""
    locale = current_locale()
    currencies: list[str] = current_app.config["SUPPORTERS_CURRENCIES"]
    fixed = current_app.config["SUPPORTERS_FEE_FIXED"]
    return {
        "locale": locale.replace("_", "-"),
        "presets": {
            code: [
                [str(amount), preset_label(amount, code, locale, _notes(campaign, code).get(amount))]
                for amount in _presets(campaign, code)
            ]
            for code in currencies
        },
        "exponent": {code: money.minor_unit_exponent(code) for code in currencies},
        "fee": {
            "percent": str(current_app.config["SUPPORTERS_FEE_PERCENT"]),
            "fixed": {c: fixed.get(c, 0) for c in currencies},
        },
        "labels": {key: str(label) % {"amount": "{amount}"} for key, label in BUTTON_LABELS.items()},
        "fallback": _("Continue to payment"),
        "fee_hint": _(
            "About %(fee)s on a gift of %(amount)s (%(percent)s%% plus a fixed fee), "
            "so that all of your gift reaches us.",
            fee="{fee}",
            amount="{amount}",
            percent=format_decimal(Decimal(current_app.config["SUPPORTERS_FEE_PERCENT"])),
        ),
    }


def _link_state(form: DonationForm, amount: int | None, currency: str) -> dict[str, str]:
    """The gift's choices as the form's own link would carry them (no personal data): the
    language switch sends them along, so a new language keeps the gift as it was."""
    state = {
        "campaign": form.campaign.data or "",
        "frequency": form.frequency.data or "",
        "currency": currency,
        "amount": money.plain(amount, currency) if amount else "",
    }
    for name in ATTRIBUTION_LIMITS:
        state[name] = getattr(form, name).data or ""
    return {name: value for name, value in state.items() if value}


def _first_amount(form: DonationForm) -> int | None:
    """The preset the donor chose (in minor units), to show the fee on; None if it is none."""
    return whole_number(form.amount_choice.data, maximum=money.MAX_AMOUNT_MINOR)


@bp.get("/")
def form() -> ResponseReturnValue:
    """The donation form, prefilled from the link."""
    campaign = _campaign(request.args.get("campaign"))
    form = DonationForm(formdata=None)
    _prefill(form, campaign)
    # back from the payment page: who was giving (kept in the signed session, never in the link)
    donor = session.pop(DONOR_KEPT, None)
    if isinstance(donor, dict):
        form.email.data = str(donor.get("email", ""))[:254]
        form.name.data = str(donor.get("name", ""))[:200]
    _setup(form, campaign, form.currency.data)
    return _render(form, campaign)


#: the session key that carries the donor's e-mail and name from the payment page back to the form
DONOR_KEPT = "donate.donor"


def _submitted_form() -> tuple[DonationForm, Campaign | None]:
    """The donation form as it was sent, with the choices of the currency it showed."""
    campaign = _campaign(request.form.get("campaign"))
    form = DonationForm()
    currency = request.form.get("shown_currency") or request.form.get("currency") or ""
    if currency not in current_app.config["SUPPORTERS_CURRENCIES"]:
        currency = current_app.config["SUPPORTERS_CURRENCIES"][0]
    _setup(form, campaign, currency)
    return form, campaign


@bp.errorhandler(429)
def too_many(exc: Exception) -> ResponseReturnValue:
    """A form sent over the limit comes back as it was sent, saying when to try again."""
    if request.endpoint != "donate.start":
        return render_error(429)
    form, campaign = _submitted_form()
    hit = limiter.current_limit
    when = ""
    if hit is not None:
        reset = datetime.fromtimestamp(hit.reset_at, UTC)
        minutes = max(1, math.ceil((reset - datetime.now(UTC)).total_seconds() / 60))
        when = " " + ngettext(
            "You can try again in about %(num)d minute, at %(time)s.",
            "You can try again in about %(num)d minutes, at %(time)s.",
            minutes,
            time=format_time(reset, format="short"),
        )
    return _render(form, campaign, 429, limited=_limited_message() + when)


@bp.post("/")
@limiter.limit(_ip_limit, error_message=lambda: _limited_message())
@limiter.limit(_email_limit, key_func=_email_key, exempt_when=_no_email, error_message=lambda: _limited_message())
@limits.give_back_when(_sent_back)
def start() -> ResponseReturnValue:
    """Start the gift: record it, commit, then open the checkout and send the donor there."""
    form, campaign = _submitted_form()
    if not form.validate():
        _after_currency_change(form, campaign)
        return _render(form, campaign, 400)
    assert form.amount_minor is not None
    amount = form.amount_minor
    by_transfer = form.by_transfer
    if form.covers_fee.data and not by_transfer:  # a transfer of one's own has no processing fee
        amount += checkout.estimate_fee(amount, form.currency.data)
    intent = checkout.GiftIntent(
        email=form.email.data,
        name=form.name.data,
        amount_minor=amount,
        currency=form.currency.data,
        frequency=Frequency(form.frequency.data),
        submission_id=(form.submission_id.data or "")[:64],
        language=current_locale(),
        campaign_id=campaign.id if campaign else None,
        # Optional() lets a blank-looking choice ("\x1e" is whitespace to Python) through unchecked.
        country=(form.country.data or "").strip() or None,
        address_line1=form.address_line1.data or None,
        address_line2=form.address_line2.data or None,
        postal_code=form.postal_code.data or None,
        city=form.city.data or None,
        anonymous=bool(form.anonymous.data),
        dedication_kind=(form.dedication_kind.data or "").strip() or None,
        dedication=form.dedication.data or None,
        comment=form.comment.data or None,
        covers_fee=bool(form.covers_fee.data) and not by_transfer,
        newsletter=bool(form.newsletter.data),
        newsletter_wording=str(NEWSLETTER_WORDING),
        source_article=_clean(form.article.data, 200),
        source_url=_clean(form.src.data, 2000),
        source_variant=_clean(form.variant.data, 64),
        utm_source=_clean(form.utm_source.data, 100),
        utm_medium=_clean(form.utm_medium.data, 100),
        utm_campaign=_clean(form.utm_campaign.data, 100),
        method=GiftMethod.BANK_TRANSFER if by_transfer else GiftMethod.STRIPE,
    )
    gift = checkout.start_gift(intent)
    # What this browser typed, for the form if the donor comes back from the payment page;
    # never the stored supporter's details (the address may be someone else's).
    session[DONOR_KEPT] = {"email": form.email.data, "name": form.name.data}
    if by_transfer:
        return redirect(url_for("donate.transfer", token=transfer_details.page_token(gift)), 303)
    commit_now()  # the gift exists before Stripe hears of it: every Stripe object can point back at it
    if gift.status is GiftStatus.SUCCEEDED and gift.stripe_checkout_session_id:
        return redirect(url_for("donate.thanks", session_id=gift.stripe_checkout_session_id), 303)
    try:
        url = checkout.begin_checkout(gift, gateway())
    except PaymentsUnavailable:
        current_app.logger.exception("could not open a checkout for gift %s", gift.id)
        return render_template("donate/unavailable.html"), 503
    return redirect(url, 303)


def _after_currency_change(form: DonationForm, campaign: Campaign | None) -> None:
    """Show the suggested amounts of the currency the donor picked."""
    currency = form.currency.data
    if currency in current_app.config["SUPPORTERS_CURRENCIES"] and currency != form.shown_currency.data:
        form.shown_currency.data = currency
        form.amount_choice.data = None
        _setup(form, campaign, currency)


@bp.get("/transfer/<token>")
def transfer(token: str) -> ResponseReturnValue:
    """A bank-transfer pledge's instructions: account, amount, title and QR code."""
    gift = transfer_details.pledge_for_token(token)
    if gift is None:
        abort(404, _("We could not find this pledge. The e-mail we sent has its details."))
    return render_template(
        "donate/transfer.html",
        gift=gift,
        details=transfer_details.details(gift, current_locale(), with_qr=True),
        awaiting=transfers.is_awaiting(gift),
    )


@bp.get("/thanks")
def thanks() -> ResponseReturnValue:
    """The gift's real state: processing until the webhook arrives, then thanks or failure."""
    gift = checkout.gift_by_checkout_session(request.args.get("session_id", ""))
    if gift is None:
        abort(404, _("We could not find this gift. If you were charged, your receipt is on its way by e-mail."))
    if gift.status is not GiftStatus.PENDING:
        session.pop(DONOR_KEPT, None)  # given: the next form starts empty
    plan = gift.recurring_plan
    campaign = gift.campaign
    return render_template(
        "donate/thanks.html", gift=gift, plan=plan, campaign=campaign, retry_url=_retry_url(gift, campaign)
    )


@bp.get("/cancelled")
def cancelled() -> ResponseReturnValue:
    """Back from the payment page without paying: the form again, as it was."""
    gift = checkout.gift_by_checkout_session(request.args.get("session_id", ""))
    if gift is None:
        return redirect(url_for("donate.form"), 303)
    campaign = gift.campaign
    if gift.status in (GiftStatus.PENDING, GiftStatus.FAILED):
        flash(_("You left the payment page. Nothing was charged; you can try again below."), "info")
    else:
        session.pop(DONOR_KEPT, None)
    return redirect(_retry_url(gift, campaign), 303)


def _retry_url(gift: Gift, campaign: Campaign | None) -> str:
    plan = gift.recurring_plan
    frequency = {None: Frequency.ONE_TIME, "month": Frequency.MONTHLY, "year": Frequency.YEARLY}[
        plan.interval.value if plan else None
    ]
    query: dict[str, str] = {
        "amount": money.plain(gift.amount_minor, gift.currency),
        "currency": gift.currency,
        "frequency": frequency.value,
    }
    if campaign:
        query["campaign"] = campaign.slug
    for name, value in (("src", gift.source_url), ("article", gift.source_article), ("variant", gift.source_variant)):
        if value:
            query[name] = value
    return f"{url_for('donate.form')}?{urlencode(query)}"
