"""Dashboard: gifts. The list with its filters and CSV export, one gift's whole story,
refunds through Stripe (with a confirmation step), and offline gifts."""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import quote

import sqlalchemy as sa
from flask import (
    Blueprint,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import joinedload, lazyload
from werkzeug.datastructures import MultiDict
from wtforms import (
    BooleanField,
    DateField,
    EmailField,
    HiddenField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, Email, Length, Optional

from supporters import payments
from supporters.dashboard.access import acting_staff, fetch, requires
from supporters.extensions import db
from supporters.giving import offline_gifts, payment_review, queries, refunds
from supporters.lib import exporting, money
from supporters.lib.dates import in_order, org_today, swapped_note
from supporters.lib.errors import Refused
from supporters.lib.forms import (
    Form,
    choices,
    has_control_characters,
    no_control_characters,
    show_refusal,
    strip,
    whole_number,
)
from supporters.lib.i18n import current_locale
from supporters.lib.paging import count_up_to, page_number
from supporters.models import (
    Campaign,
    Gift,
    GiftKind,
    GiftMethod,
    GiftStatus,
    Supporter,
    normalise_email,
)
from supporters.people import edits

bp = Blueprint("gifts", __name__, url_prefix="/gifts")

PER_PAGE = 50
#: the gift list counts matching gifts up to this many
COUNT_CAP = 10_000

REASON_LABELS = {
    "requested_by_customer": _l("Requested by the donor"),
    "duplicate": _l("Duplicate payment"),
    "fraudulent": _l("Fraudulent payment"),
    "other": _l("Other (say why below)"),
}


# --- Filters ---------------------------------------------------------------------


def _clean(value: str | None, limit: int) -> str | None:
    """A query value fit to search by: trimmed, within `limit`, without control characters."""
    value = (value or "").strip()
    if not value or len(value) > limit or has_control_characters(value):
        return None
    return value


def parse_filters(args: MultiDict[str, str]) -> queries.GiftFilters:
    """Read the gift filters from query arguments; invalid values are ignored with a note."""
    found = queries.GiftFilters()
    notes = found.notes

    for value in args.getlist("status"):
        if value in {member.value for member in GiftStatus}:
            status = GiftStatus(value)
            if status not in found.statuses:
                found.statuses.append(status)
        elif value:
            notes.append(_("Ignored the status “%(value)s”: there is no such status.", value=value[:40]))
    if found.statuses:
        found.args["status"] = [s.value for s in found.statuses]

    for name in ("date_from", "date_to"):
        raw = (args.get(name) or "").strip()
        if not raw:
            continue
        try:
            day = date.fromisoformat(raw)
            if not 1970 <= day.year <= 2999:
                raise ValueError
        except ValueError:
            notes.append(_("Ignored the date “%(value)s”: use a date like 2026-01-31.", value=raw[:40]))
            continue
        setattr(found, name, day)
        found.args[name] = day.isoformat()
    found.date_from, found.date_to, swapped = in_order(found.date_from, found.date_to)
    if swapped:
        assert found.date_from and found.date_to
        found.args["date_from"], found.args["date_to"] = found.date_from.isoformat(), found.date_to.isoformat()
        notes.append(swapped_note())

    for name, enum_cls, attr in (("method", GiftMethod, "method"), ("kind", GiftKind, "kind")):
        raw = (args.get(name) or "").strip()
        if not raw:
            continue
        if raw in {member.value for member in enum_cls}:
            setattr(found, attr, enum_cls(raw))
            found.args[name] = raw
        else:
            notes.append(_("Ignored “%(value)s”: not a choice of this filter.", value=raw[:40]))

    for name, attr in (("campaign", "campaign_id"), ("supporter_id", "supporter_id")):
        raw = (args.get(name) or "").strip()
        if not raw:
            continue
        number = whole_number(raw)
        if number is not None:
            setattr(found, attr, number)
            found.args[name] = raw
        else:
            notes.append(_("Ignored “%(value)s”: not a choice of this filter.", value=raw[:40]))

    raw_currency = (args.get("currency") or "").strip().upper()
    if raw_currency:
        try:
            money.minor_unit_exponent(raw_currency)
        except money.MoneyError:
            notes.append(_("Ignored the currency “%(value)s”: not a currency code.", value=raw_currency[:40]))
        else:
            found.currency = raw_currency
            found.args["currency"] = raw_currency

    for name in ("amount_min", "amount_max"):
        raw = (args.get(name) or "").strip()
        if not raw:
            continue
        if not found.currency:
            notes.append(_("Amounts are compared within one currency: choose a currency to filter by amount."))
            break
        try:
            setattr(found, name, money.parse_amount(raw, found.currency))
        except money.MoneyError as error:
            notes.append(_("Ignored the amount “%(value)s”:", value=raw[:40]) + " " + _(error.template, **error.params))
            continue
        found.args[name] = raw

    raw_article = args.get("article")
    if raw_article and raw_article.strip():
        article = _clean(raw_article, 200)
        if article:
            found.article = article
            found.args["article"] = article
        else:
            notes.append(_("Ignored the article: it is too long or contains characters no address has."))

    found.page = page_number(args, notes)
    return found


def _filter_choices() -> dict[str, Any]:
    campaigns = db.session.execute(sa.select(Campaign.id, Campaign.name).order_by(Campaign.name)).all()
    currencies = list(current_app.config["SUPPORTERS_CURRENCIES"])
    return {"campaigns": campaigns, "currencies": currencies}


# --- The list and the export --------------------------------------------------------


@bp.get("/")
@requires("view")
def index() -> ResponseReturnValue:
    """All gifts, filtered, newest first, 50 to a page."""
    filters = parse_filters(request.args)
    query = filters.query()
    counted = count_up_to(query.with_only_columns(Gift.id), COUNT_CAP)
    exact = counted is not None
    total = counted or 0
    pages = max(1, -(-total // PER_PAGE)) if exact else None
    page = min(filters.page, pages) if pages else filters.page
    gifts = db.session.scalars(
        query.options(joinedload(Gift.supporter).options(lazyload(Supporter.tags)), joinedload(Gift.campaign))
        .limit(PER_PAGE + 1)
        .offset((page - 1) * PER_PAGE)
    ).all()
    more = len(gifts) > PER_PAGE
    link_args = {key: value for key, value in filters.args.items() if key != "page"}
    return render_template(
        "dashboard/gifts/index.html",
        gifts=gifts[:PER_PAGE],
        filters=filters,
        total=total if exact else None,
        count_cap=COUNT_CAP,
        page=page,
        pages=pages,
        more=more,
        link_args=link_args,
        statuses=list(GiftStatus),
        methods=list(GiftMethod),
        kinds=list(GiftKind),
        **_filter_choices(),
    )


@bp.post("/export.csv")
@requires("export")
def export() -> ResponseReturnValue:
    """The gifts of the current filters (in the address) as CSV, streamed; the download is
    audited first. A POST with the CSRF token, so a link cannot start one."""
    filters = parse_filters(request.args)
    bom = request.form.get("bom") == "1"
    chunks = queries.export_gifts(acting_staff(), filters, bom=bom)
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M")
    return exporting.csv_download(f"gifts-{stamp}.csv", chunks)


# --- One gift ------------------------------------------------------------------------


def stripe_dashboard_url(kind: str, object_id: str | None) -> str | None:
    """A link to the object in Stripe's dashboard; None offline (Stripe never saw it)."""
    gateway = payments.gateway()
    if not object_id or gateway.offline:
        return None
    mode = "" if gateway.livemode else "test/"
    return f"https://dashboard.stripe.com/{mode}{kind}/{quote(object_id, safe='')}"


@bp.get("/<int:gift_id>")
@requires("view")
def detail(gift_id: int) -> ResponseReturnValue:
    """Everything about one gift: amounts, who, where from, Stripe, refunds, and its history."""
    gift = fetch(Gift, gift_id)
    supporter = gift.supporter
    plan = gift.recurring_plan
    campaign = gift.campaign
    events = queries.gift_history(gift)
    refund_items = [item for item in events if item.what in ("gift.refund", "charge.refunded")]
    return render_template(
        "dashboard/gifts/detail.html",
        gift=gift,
        supporter=supporter,
        plan=plan,
        campaign=campaign,
        events=events,
        refunds=refund_items,
        refundable=refunds.refundable_minor(gift),
        net=(gift.amount_minor - gift.refunded_minor),
        refusal=refunds.refund_refusal(gift),
        stripe_payment_url=stripe_dashboard_url("payments", gift.stripe_payment_intent_id),
        to_review=payment_review.open_reviews_of_gift(gift.id),
        correctable=offline_gifts.correction_refusal(gift) is None,
        base_currency=current_app.config["SUPPORTERS_BASE_CURRENCY"],
    )


# --- Refunds ---------------------------------------------------------------------------


class RefundForm(Form):
    """How much to give back, and why."""

    amount = StringField(
        _l("Amount to refund"),
        filters=[strip],
        validators=[DataRequired(_l("Enter an amount to refund.")), Length(max=40), no_control_characters],
    )
    reason = SelectField(
        _l("Reason"),
        choices=choices(REASON_LABELS.items()),
        validators=[DataRequired(_l("Choose a reason for the refund."))],
    )
    note = TextAreaField(_l("Note"), filters=[strip], validators=[Length(max=500), no_control_characters])
    #: the refunded total the form was shown with: a second copy of the form then refunds nothing
    seen_refunded = HiddenField()
    confirm = HiddenField()


def _seen_refunded(form: RefundForm) -> int | None:
    return whole_number(form.seen_refunded.data, maximum=money.MAX_AMOUNT_MINOR)


def _render_refund(
    gift: Gift, form: RefundForm | None, status: int = 200, error: str | None = None, confirming: int | None = None
) -> ResponseReturnValue:
    supporter = gift.supporter
    refusal = refunds.refund_refusal(gift)
    return render_template(
        "dashboard/gifts/refund.html",
        gift=gift,
        supporter=supporter,
        form=form,
        error=error,
        refusal=refusal.message() if refusal else None,
        refundable=refunds.refundable_minor(gift),
        confirming=confirming,
        reason_label=REASON_LABELS.get(form.reason.data or "") if form else None,
    ), status


@bp.get("/<int:gift_id>/refund")
@requires("write")
def refund_form(gift_id: int) -> ResponseReturnValue:
    """The refund form: the amount still refundable, in the donor's currency, and a reason."""
    gift = fetch(Gift, gift_id)
    if refunds.refund_refusal(gift) is not None:
        return _render_refund(gift, None)
    form = RefundForm(formdata=None)
    form.amount.data = money.format_amount_plain(refunds.refundable_minor(gift), gift.currency, current_locale())
    form.reason.data = "requested_by_customer"
    form.seen_refunded.data = str(gift.refunded_minor)
    return _render_refund(gift, form)


@bp.post("/<int:gift_id>/refund")
@requires("write")
def refund(gift_id: int) -> ResponseReturnValue:
    """Without `confirm=yes`: check the request and ask to confirm it. With it: refund
    through Stripe, record the refund, and go back to the gift."""
    gift = fetch(Gift, gift_id)
    refusal = refunds.refund_refusal(gift)
    if refusal is not None:
        return _render_refund(gift, None, 400)
    form = RefundForm()
    if not form.validate():
        return _render_refund(gift, form, 400)
    try:
        amount = money.parse_amount(form.amount.data or "", gift.currency)
    except money.MoneyError as error:
        form.amount.errors = [_(error.template, **error.params)]
        return _render_refund(gift, form, 400)
    seen = _seen_refunded(form)
    try:
        refunds.check_refund(gift, amount, form.reason.data or "", form.note.data or "", seen_refunded_minor=seen)
        if form.confirm.data != "yes":
            form.amount.data = money.format_amount_plain(amount, gift.currency, current_locale())
            return _render_refund(gift, form, confirming=amount)
        result = refunds.refund(
            gift,
            amount,
            form.reason.data or "",
            payments.gateway(),
            acting_staff(),
            note=form.note.data or "",
            seen_refunded_minor=seen,
        )
    except refunds.RefundAlreadyMade as refused:
        if refused.duplicate:
            flash(_("This refund was already made; it was not made again."), "info")
            return redirect(url_for(".detail", gift_id=gift.id), 303)
        return _render_refund(gift, _fresh_form(gift, form), 409, error=refused.message())
    except Refused as refused:
        return _render_refund(gift, form, 400, error=refused.message())
    except payments.PaymentsUnavailable as exc:
        current_app.logger.warning("refund of gift %s failed at the payment provider: %s", gift.id, exc)
        return _render_refund(
            gift,
            form,
            502,
            error=_(
                "Stripe did not carry out the refund (%(reason)s). Nothing was refunded or changed; "
                "you can try again in a minute.",
                reason=str(exc)[:300],
            ),
        )
    supporter = gift.supporter
    name = supporter.name if supporter else ""
    if result.status in ("failed", "canceled"):
        flash(
            _(
                "Stripe could not complete the refund (status: %(status)s). Nothing was recorded as refunded.",
                status=result.status,
            ),
            "error",
        )
    else:
        flash(
            _(
                "Refunded %(amount)s to %(name)s.",
                amount=money.format_amount(result.amount_minor, gift.currency, current_locale()),
                name=name,
            ),
            "info",
        )
    return redirect(url_for(".detail", gift_id=gift.id), 303)


def _fresh_form(gift: Gift, submitted: RefundForm) -> RefundForm:
    """The form again, with what is refundable now (someone refunded in the meantime)."""
    form = RefundForm(formdata=None)
    db.session.refresh(gift)
    form.amount.data = money.format_amount_plain(
        max(refunds.refundable_minor(gift), 0), gift.currency, current_locale()
    )
    form.reason.data = submitted.reason.data
    form.note.data = submitted.note.data
    form.seen_refunded.data = str(gift.refunded_minor)
    return form


# --- Offline gifts ------------------------------------------------------------------------


#: how money arrives without Stripe, as the offline forms offer it
OFFLINE_METHOD_CHOICES = [
    (GiftMethod.BANK_TRANSFER.value, _l("Bank transfer")),
    (GiftMethod.CHEQUE.value, _l("Cheque")),
    (GiftMethod.CASH.value, _l("Cash")),
]


class OfflineGiftForm(Form):
    """Money that arrived without Stripe: who gave it, how much, how and when."""

    supporter_id = HiddenField()
    email = EmailField(
        _l("Supporter's e-mail"),
        filters=[strip],
        validators=[Optional(), Length(max=254), no_control_characters, Email(_l("Enter a valid e-mail address."))],
    )
    name = StringField(_l("Supporter's name"), filters=[strip], validators=[Length(max=200), no_control_characters])
    amount = StringField(
        _l("Amount received"),
        filters=[strip],
        validators=[DataRequired(_l("Enter the amount received.")), Length(max=40), no_control_characters],
    )
    currency = SelectField(_l("Currency"), choices=[])
    method = SelectField(_l("How it arrived"), choices=choices(OFFLINE_METHOD_CHOICES))
    received_on = DateField(_l("Date received"), validators=[DataRequired(_l("Enter the date the money arrived."))])
    reference = StringField(
        _l("Reference (transfer title, cheque number)"),
        filters=[strip],
        validators=[Length(max=200), no_control_characters],
    )
    campaign_id = SelectField(_l("Campaign"), choices=[], validators=[Optional()])
    comment = TextAreaField(_l("Comment"), filters=[strip], validators=[Length(max=500), no_control_characters])
    send_receipt = BooleanField(_l("Send the supporter a receipt by e-mail"), default=True)
    #: ticked when the form asked to confirm a large amount
    confirm_amount = BooleanField(_l("Yes, this amount is right"))
    submission_id = HiddenField()


def _offline_form() -> OfflineGiftForm:
    form = OfflineGiftForm()
    form.currency.choices = choices((code, code) for code in current_app.config["SUPPORTERS_CURRENCIES"])
    campaigns = db.session.execute(sa.select(Campaign.id, Campaign.name).order_by(Campaign.name)).all()
    form.campaign_id.choices = choices([("", _("No campaign")), *((str(cid), name) for cid, name in campaigns)])
    return form


def _prefilled_supporter(raw: str | None) -> Supporter | None:
    supporter_id = whole_number(raw)
    return db.session.get(Supporter, supporter_id) if supporter_id is not None else None


@bp.route("/new", methods=["GET", "POST"])
@requires("write")
def new_offline() -> ResponseReturnValue:
    """Record a gift that came by bank transfer, cheque or cash."""
    form = _offline_form()
    if request.method == "GET":
        supporter = _prefilled_supporter(request.args.get("supporter_id"))
        form.supporter_id.data = str(supporter.id) if supporter else ""
        form.received_on.data = org_today()
        form.submission_id.data = secrets.token_urlsafe(16)
        return _render_offline(form, supporter)

    supporter = _prefilled_supporter(form.supporter_id.data)
    valid = form.validate()
    if supporter is None and not form.email.data:
        form.email.errors = [*form.email.errors, _("Enter the supporter's e-mail address.")]
        valid = False
    amount = None
    if form.amount.data and not form.amount.errors and form.currency.data:
        try:
            amount = money.parse_amount(form.amount.data, form.currency.data)
        except money.MoneyError as error:
            form.amount.errors = [_(error.template, **error.params)]
            valid = False
    if supporter is None and form.email.data and not form.email.errors:
        known = db.session.scalar(sa.select(Supporter).filter_by(email_normalised=normalise_email(form.email.data)))
        if known is None and not form.name.data:
            form.name.errors = [
                *form.name.errors,
                _("There is no supporter with this e-mail yet: enter their name to add them."),
            ]
            valid = False
    if not valid or amount is None or form.received_on.data is None:
        return _render_offline(form, supporter, 400)

    if supporter is None:
        supporter = edits.find_or_create_supporter(form.email.data or "", form.name.data or "")
        db.session.flush()
    raw_key = (form.submission_id.data or "").strip()[:64]
    key = hashlib.sha256(f"offline:{raw_key}".encode()).hexdigest() if raw_key else None
    try:
        gift = offline_gifts.record_offline_gift(
            supporter,
            amount_minor=amount,
            currency=form.currency.data or "",
            method=GiftMethod(form.method.data),
            received_on=form.received_on.data,
            staff_user=acting_staff(),
            reference=form.reference.data,
            campaign_id=whole_number(form.campaign_id.data),
            comment=form.comment.data,
            send_receipt=bool(form.send_receipt.data),
            submission_key=key,
            confirmed=bool(form.confirm_amount.data),
        )
    except Refused as refused:
        return _render_offline(
            form,
            _prefilled_supporter(form.supporter_id.data),
            400,
            error=show_refusal(form, refused),
            ask_confirmation=isinstance(refused, offline_gifts.NeedsConfirmation),
        )
    flash(
        _(
            "Recorded %(amount)s from %(name)s.",
            amount=money.format_amount(gift.amount_minor, gift.currency, current_locale()),
            name=supporter.name,
        ),
        "info",
    )
    return redirect(url_for(".detail", gift_id=gift.id), 303)


def _render_offline(
    form: OfflineGiftForm,
    supporter: Supporter | None,
    status: int = 200,
    error: str | None = None,
    ask_confirmation: bool = False,
) -> ResponseReturnValue:
    return render_template(
        "dashboard/gifts/new_offline.html",
        form=form,
        supporter=supporter,
        error=error,
        today=org_today().isoformat(),
        founded=current_app.config["SUPPORTERS_FOUNDED_ON"].isoformat(),
        ask_confirmation=ask_confirmation,
    ), status


# --- Corrections of offline gifts -----------------------------------------------------------


class VoidGiftForm(Form):
    """Why an offline gift is voided, and whether the donor is told."""

    reason = TextAreaField(
        _l("Why is it voided?"),
        filters=[strip],
        validators=[DataRequired(_l("Say why, for the gift's history.")), Length(max=500), no_control_characters],
    )
    notify = BooleanField(_l("Send the supporter a notice that the receipt is cancelled"))
    #: the gift's values when the form was shown (offline_gifts.values_seen)
    seen = HiddenField()


class CorrectGiftForm(Form):
    """What was entered wrongly for an offline gift, corrected, with a reason."""

    amount = StringField(
        _l("Amount received"),
        filters=[strip],
        validators=[DataRequired(_l("Enter the amount received.")), Length(max=40), no_control_characters],
    )
    received_on = DateField(_l("Date received"), validators=[DataRequired(_l("Enter the date the money arrived."))])
    method = SelectField(_l("How it arrived"), choices=choices(OFFLINE_METHOD_CHOICES))
    reference = StringField(
        _l("Reference (transfer title, cheque number)"),
        filters=[strip],
        validators=[Length(max=200), no_control_characters],
    )
    reason = TextAreaField(
        _l("Why is it corrected?"),
        filters=[strip],
        validators=[DataRequired(_l("Say why, for the gift's history.")), Length(max=500), no_control_characters],
    )
    notify = BooleanField(_l("Send the supporter a corrected receipt"))
    confirm_amount = BooleanField(_l("Yes, this amount is right"))
    seen = HiddenField()


def _correctable(gift_id: int) -> tuple[Gift, Refused | None]:
    gift = fetch(Gift, gift_id)
    return gift, offline_gifts.correction_refusal(gift)


def _render_correction(
    template: str,
    gift: Gift,
    form: Form | None,
    status: int = 200,
    error: str | None = None,
    ask_confirmation: bool = False,
) -> ResponseReturnValue:
    refusal = offline_gifts.correction_refusal(gift)
    return render_template(
        template,
        gift=gift,
        supporter=gift.supporter,
        form=form if refusal is None else None,
        error=error,
        refusal=refusal.message() if refusal else None,
        today=org_today().isoformat(),
        founded=current_app.config["SUPPORTERS_FOUNDED_ON"].isoformat(),
        ask_confirmation=ask_confirmation,
    ), status


@bp.get("/<int:offline_gift_id>/void")
@requires("write")
def void_form(offline_gift_id: int) -> ResponseReturnValue:
    """The void form of an offline gift recorded by mistake: a reason, and whether to tell
    the donor (ticked when a receipt was sent)."""
    gift, refusal = _correctable(offline_gift_id)
    if refusal is not None:
        return _render_correction("dashboard/gifts/void.html", gift, None)
    form = VoidGiftForm(formdata=None)
    form.notify.data = offline_gifts.receipt_sent(gift)
    form.seen.data = offline_gifts.values_seen(gift)
    return _render_correction("dashboard/gifts/void.html", gift, form)


@bp.post("/<int:offline_gift_id>/void")
@requires("write")
def void(offline_gift_id: int) -> ResponseReturnValue:
    """Void the gift, tell the donor if asked, and go back to the gift."""
    gift, refusal = _correctable(offline_gift_id)
    if refusal is not None:
        return _render_correction("dashboard/gifts/void.html", gift, None, refusal.status)
    form = VoidGiftForm()
    if not form.validate():
        return _render_correction("dashboard/gifts/void.html", gift, form, 400)
    try:
        offline_gifts.void_offline_gift(
            gift,
            reason=form.reason.data or "",
            staff_user=acting_staff(),
            notify=bool(form.notify.data),
            seen=form.seen.data or None,
        )
    except Refused as refused:
        return _render_correction(
            "dashboard/gifts/void.html", gift, form, refused.status, error=show_refusal(form, refused)
        )
    flash(_("The gift was voided; it no longer counts in any total."), "info")
    return redirect(url_for(".detail", gift_id=gift.id), 303)


@bp.get("/<int:offline_gift_id>/correct")
@requires("write")
def correct_form(offline_gift_id: int) -> ResponseReturnValue:
    """The correction form of an offline gift, filled with what was entered."""
    gift, refusal = _correctable(offline_gift_id)
    if refusal is not None:
        return _render_correction("dashboard/gifts/correct.html", gift, None)
    form = CorrectGiftForm(formdata=None)
    form.amount.data = money.format_amount_plain(gift.amount_minor, gift.currency, current_locale())
    assert gift.paid_at is not None
    form.received_on.data = gift.paid_at.astimezone(UTC).date()
    form.method.data = GiftMethod(gift.method).value
    form.reference.data = gift.offline_reference or ""
    form.notify.data = offline_gifts.receipt_sent(gift)
    form.seen.data = offline_gifts.values_seen(gift)
    return _render_correction("dashboard/gifts/correct.html", gift, form)


@bp.post("/<int:offline_gift_id>/correct")
@requires("write")
def correct(offline_gift_id: int) -> ResponseReturnValue:
    """Correct the gift, send the corrected receipt if asked, and go back to the gift."""
    gift, refusal = _correctable(offline_gift_id)
    if refusal is not None:
        return _render_correction("dashboard/gifts/correct.html", gift, None, refusal.status)
    form = CorrectGiftForm()
    valid = form.validate()
    amount = None
    if form.amount.data and not form.amount.errors:
        try:
            amount = money.parse_amount(form.amount.data, gift.currency)
        except money.MoneyError as error:
            form.amount.errors = [_(error.template, **error.params)]
            valid = False
    if not valid or amount is None or form.received_on.data is None:
        return _render_correction("dashboard/gifts/correct.html", gift, form, 400)
    try:
        offline_gifts.correct_offline_gift(
            gift,
            amount_minor=amount,
            received_on=form.received_on.data,
            method=GiftMethod(form.method.data),
            reference=form.reference.data,
            reason=form.reason.data or "",
            staff_user=acting_staff(),
            notify=bool(form.notify.data),
            confirmed=bool(form.confirm_amount.data),
            seen=form.seen.data or None,
        )
    except Refused as refused:
        return _render_correction(
            "dashboard/gifts/correct.html",
            gift,
            form,
            refused.status,
            error=show_refusal(form, refused),
            ask_confirmation=isinstance(refused, offline_gifts.NeedsConfirmation),
        )
    flash(_("The gift was corrected; every total follows."), "info")
    return redirect(url_for(".detail", gift_id=gift.id), 303)
