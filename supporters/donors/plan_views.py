"""/my/plans: a signed-in donor's own recurring gifts, and every change they may make.

Thin views: each reads its form, calls one rule of `giving.plan_changes` and shows the
plan again (or goes where the rule says). Another donor's plan, or none, is 404; a
refusal is shown on the plan's page with its status; Stripe unreachable is the "try
again later" page (503), with nothing changed (the rule asked Stripe first, and the
request rolls back).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, flash, redirect, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from wtforms import RadioField, SelectField, StringField
from wtforms.validators import Length, Optional

from supporters.donors.web import current_donor, donor_required, page
from supporters.extensions import limiter
from supporters.giving import plan_changes
from supporters.lib.errors import Refused
from supporters.lib.forms import Form, choices, show_refusal, strip
from supporters.lib.i18n import current_locale
from supporters.lib.transactions import writes_on_get
from supporters.lib.web import public_url
from supporters.models import RecurringPlan
from supporters.payments import PaymentsUnavailable, gateway

bp = Blueprint("donor_plans", __name__, url_prefix="/my")

#: every change reaches Stripe: a connection makes at most this many, all routes together
changes_limit = limiter.shared_limit("60 per hour", scope="donor-plan-changes")


class AmountForm(Form):
    amount = StringField(_l("New amount"), filters=[strip], validators=[Length(max=30)])


class IntervalForm(Form):
    interval = RadioField(
        _l("How often"), choices=choices([("month", _l("Monthly")), ("year", _l("Yearly"))]), validate_choice=False
    )
    amount = StringField(
        _l("Amount each time (empty: the same)"), filters=[strip], validators=[Optional(), Length(max=30)]
    )


class PauseForm(Form):
    months = SelectField(
        _l("Pause for"),
        choices=choices([("1", _l("1 month")), ("2", _l("2 months")), ("3", _l("3 months"))]),
        validate_choice=False,
    )


class ButtonForm(Form):
    """A button's form: only the CSRF token."""


def _plan(plan_id: int) -> RecurringPlan:
    return plan_changes.own_plan(current_donor(), plan_id)


def _show(
    plan: RecurringPlan,
    status: int = 200,
    *,
    error: str | None = None,
    amount_form: AmountForm | None = None,
    interval_form: IntervalForm | None = None,
    pause_form: PauseForm | None = None,
) -> ResponseReturnValue:
    locale = current_locale()
    return page(
        "donors/plan.html",
        status,
        plan=plan,
        state=plan_changes.status_key(plan),
        changes=list(reversed(plan_changes.changes_of([plan.id], locale))),
        locale=locale,
        error=error,
        amount_form=amount_form or AmountForm(formdata=None),
        interval_form=interval_form or IntervalForm(formdata=None, interval=_other(plan)),
        pause_form=pause_form or PauseForm(formdata=None),
        button=ButtonForm(formdata=None),
    )


def _other(plan: RecurringPlan) -> str:
    return "year" if plan.interval.value == "month" else "month"


def _unavailable(plan: RecurringPlan, what: str) -> ResponseReturnValue:
    current_app.logger.exception("the payment provider failed: %s of plan %s", what, plan.id)
    return page("donors/plan_unavailable.html", 503, plan=plan)


def _refused(plan: RecurringPlan, refused: Refused, **forms: Any) -> ResponseReturnValue:
    error: str | None = refused.message()
    for form in forms.values():
        if refused.field and refused.field in form._fields:
            error = show_refusal(form, refused)
            break
    return _show(plan, refused.status, error=error, **forms)


def _changed(plan: RecurringPlan, message: str) -> ResponseReturnValue:
    flash(message, "info")
    return redirect(url_for(".plan_page", plan_id=plan.id), 303)


@bp.get("/plans/<int:plan_id>")
@donor_required
def plan_page(plan_id: int) -> ResponseReturnValue:
    """The plan: amount, how often, its state, the next payment, its changes and the forms to change it."""
    try:
        plan = _plan(plan_id)
    except Refused as refused:
        return page("donors/plan_missing.html", refused.status, message=refused.message())
    return _show(plan)


def _owned(plan_id: int) -> RecurringPlan | ResponseReturnValue:
    try:
        return _plan(plan_id)
    except Refused as refused:
        return page("donors/plan_missing.html", refused.status, message=refused.message())


@bp.post("/plans/<int:plan_id>/amount")
@changes_limit
@donor_required
def change_amount(plan_id: int) -> ResponseReturnValue:
    plan = _owned(plan_id)
    if not isinstance(plan, RecurringPlan):
        return plan
    form = AmountForm()
    if not form.validate():
        return _show(plan, 400, amount_form=form)
    try:
        plan_changes.change_amount(plan, form.amount.data or "", current_donor(), gateway())
    except Refused as refused:
        return _refused(plan, refused, amount_form=form)
    except PaymentsUnavailable:
        return _unavailable(plan, "amount")
    return _changed(plan, _("Your gift's amount is changed, from the next payment. A confirmation is on its way."))


@bp.post("/plans/<int:plan_id>/interval")
@changes_limit
@donor_required
def switch_interval(plan_id: int) -> ResponseReturnValue:
    plan = _owned(plan_id)
    if not isinstance(plan, RecurringPlan):
        return plan
    form = IntervalForm()
    if not form.validate():
        return _show(plan, 400, interval_form=form)
    try:
        plan_changes.switch_interval(
            plan, str(form.interval.data or ""), form.amount.data or "", current_donor(), gateway()
        )
    except Refused as refused:
        return _refused(plan, refused, interval_form=form)
    except PaymentsUnavailable:
        return _unavailable(plan, "interval")
    return _changed(plan, _("How often you give is changed, from the next payment. A confirmation is on its way."))


@bp.post("/plans/<int:plan_id>/pause")
@changes_limit
@donor_required
def pause(plan_id: int) -> ResponseReturnValue:
    plan = _owned(plan_id)
    if not isinstance(plan, RecurringPlan):
        return plan
    form = PauseForm()
    if not form.validate():
        return _show(plan, 400, pause_form=form)
    raw = str(form.months.data or "")
    months = int(raw) if raw in ("1", "2", "3") else None
    try:
        plan_changes.pause(plan, months, current_donor(), gateway())
    except Refused as refused:
        return _refused(plan, refused, pause_form=form)
    except PaymentsUnavailable:
        return _unavailable(plan, "pause")
    return _changed(plan, _("Your gift is paused. A confirmation is on its way."))


@bp.post("/plans/<int:plan_id>/resume")
@changes_limit
@donor_required
def resume(plan_id: int) -> ResponseReturnValue:
    plan = _owned(plan_id)
    if not isinstance(plan, RecurringPlan):
        return plan
    if not ButtonForm().validate():
        return _show(plan, 400, error=_("The form has expired. Please try again."))
    try:
        plan_changes.resume(plan, current_donor(), gateway())
    except Refused as refused:
        return _refused(plan, refused)
    except PaymentsUnavailable:
        return _unavailable(plan, "resume")
    return _changed(plan, _("Your gift is running again. A confirmation is on its way."))


@bp.post("/plans/<int:plan_id>/card")
@changes_limit
@donor_required
def update_card(plan_id: int) -> ResponseReturnValue:
    """To Stripe's page (or the offline card page) for a new card; back to the plan after."""
    plan = _owned(plan_id)
    if not isinstance(plan, RecurringPlan):
        return plan
    if not ButtonForm().validate():
        return _show(plan, 400, error=_("The form has expired. Please try again."))
    locale = current_locale()
    back = public_url("donor_plans.card_done", plan_id=plan.id, lang=locale)
    try:
        url = plan_changes.start_card_update(plan, current_donor(), gateway(), back, locale)
    except Refused as refused:
        return _refused(plan, refused)
    except PaymentsUnavailable:
        return _unavailable(plan, "card")
    return redirect(url, 303)


@bp.get("/plans/<int:plan_id>/card/done")
@writes_on_get
@donor_required
def card_done(plan_id: int) -> ResponseReturnValue:
    """Back from the card update: says whether the card changed (recorded once per card)."""
    plan = _owned(plan_id)
    if not isinstance(plan, RecurringPlan):
        return plan
    try:
        changed = plan_changes.note_card_update(plan, current_donor(), gateway())
    except Refused as refused:
        return _refused(plan, refused)
    except PaymentsUnavailable:
        return _unavailable(plan, "card check")
    flash(
        _("Your card is updated. A confirmation is on its way.")
        if changed
        else _("Your card is as it was: nothing was changed."),
        "info",
    )
    return redirect(url_for(".plan_page", plan_id=plan.id, _anchor="card"), 303)


@bp.get("/plans/<int:plan_id>/cancel")
@writes_on_get
@donor_required
def cancel_page(plan_id: int) -> ResponseReturnValue:
    """Before cancelling: once, the offer of a lower amount or a pause; then one button."""
    plan = _owned(plan_id)
    if not isinstance(plan, RecurringPlan):
        return plan
    try:
        offer = plan_changes.show_cancel_offer(plan, current_donor())
    except Refused as refused:
        return _refused(plan, refused)
    return page(
        "donors/cancel_offer.html",
        plan=plan,
        offer=offer,
        paused=plan_changes.is_paused(plan),
        amount_form=AmountForm(formdata=None),
        pause_form=PauseForm(formdata=None),
        button=ButtonForm(formdata=None),
    )


@bp.post("/plans/<int:plan_id>/cancel")
@changes_limit
@donor_required
def cancel(plan_id: int) -> ResponseReturnValue:
    plan = _owned(plan_id)
    if not isinstance(plan, RecurringPlan):
        return plan
    if plan_changes.can_cancel_offer(plan) and not plan.status.value == "canceled":
        return redirect(url_for(".cancel_page", plan_id=plan.id), 303)
    if not ButtonForm().validate():
        return _show(plan, 400, error=_("The form has expired. Please try again."))
    try:
        plan_changes.cancel(plan, current_donor(), gateway())
    except Refused as refused:
        return _refused(plan, refused)
    except PaymentsUnavailable:
        return _unavailable(plan, "cancel")
    return _changed(plan, _("Your gift is canceled: no further payments will be taken. Thank you for your support."))
