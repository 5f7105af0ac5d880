"""Dashboard: recurring plans. The list by status with its monthly income per
currency, one plan with its gifts and history, and cancelling a plan."""

from __future__ import annotations

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
from wtforms import TextAreaField
from wtforms.validators import DataRequired, Length

from supporters import payments
from supporters.dashboard.access import acting_staff, fetch, requires
from supporters.extensions import db
from supporters.giving import plan_changes, plans, queries, totals
from supporters.giving.staff_gifts import stripe_dashboard_url
from supporters.lib.errors import Refused
from supporters.lib.forms import Form, no_control_characters
from supporters.lib.i18n import current_locale
from supporters.lib.paging import page_count, page_number
from supporters.models import Gift, PlanStatus, RecurringPlan, Supporter

bp = Blueprint("plans", __name__, url_prefix="/plans")

PER_PAGE = 50
#: the tabs of the list, in order; active is the default
TABS = (PlanStatus.ACTIVE, PlanStatus.PAST_DUE, PlanStatus.CANCELED, PlanStatus.INCOMPLETE)


@bp.get("/")
@requires("view")
def index() -> ResponseReturnValue:
    """Plans of one status (active by default), newest first, and their monthly income."""
    notes = []
    raw = (request.args.get("status") or "").strip()
    status = PlanStatus.ACTIVE
    if raw in {tab.value for tab in TABS}:
        status = PlanStatus(raw)
    elif raw:
        notes.append(_("Ignored the status “%(value)s”: showing active plans.", value=raw[:40]))
    page = page_number(request.args)
    where = RecurringPlan.status == status
    total = db.session.scalar(sa.select(sa.func.count()).select_from(RecurringPlan).where(where)) or 0
    pages = page_count(total, PER_PAGE)
    page = min(page, pages)
    order = RecurringPlan.canceled_at.desc() if status is PlanStatus.CANCELED else RecurringPlan.created_at.desc()
    plans = db.session.scalars(
        sa.select(RecurringPlan)
        .where(where)
        .options(joinedload(RecurringPlan.supporter).options(lazyload(Supporter.tags)))
        .order_by(order, RecurringPlan.id.desc())
        .limit(PER_PAGE)
        .offset((page - 1) * PER_PAGE)
    ).all()
    counts = dict(
        db.session.execute(sa.select(RecurringPlan.status, sa.func.count()).group_by(RecurringPlan.status)).all()
    )
    return render_template(
        "dashboard/plans/index.html",
        plans=plans,
        status=status,
        tabs=TABS,
        counts=counts,
        notes=notes,
        total=total,
        page=page,
        pages=pages,
        income=totals.monthly_income(where),
    )


class CancelForm(Form):
    """Why a plan ends: kept on the plan and in the audit log."""

    reason = TextAreaField(
        _l("Reason"),
        validators=[DataRequired(_l("Say why the plan is canceled.")), Length(max=500), no_control_characters],
    )


def _render_detail(plan: RecurringPlan) -> ResponseReturnValue:
    supporter = plan.supporter
    gifts = db.session.scalars(
        sa.select(Gift)
        .filter_by(recurring_plan_id=plan.id)
        .order_by(sa.func.coalesce(Gift.paid_at, Gift.created_at).desc(), Gift.id.desc())
        .limit(500)
    ).all()
    events = queries.plan_history(plan)
    return render_template(
        "dashboard/plans/detail.html",
        plan=plan,
        supporter=supporter,
        gifts=gifts,
        events=events,
        changes=plan_changes.changes_of([plan.id], current_locale()),
        monthly=totals.monthly_income(RecurringPlan.id == plan.id).get(plan.currency, 0),
        stripe_subscription_url=stripe_dashboard_url("subscriptions", plan.stripe_subscription_id),
    )


@bp.get("/<int:plan_id>")
@requires("view")
def detail(plan_id: int) -> ResponseReturnValue:
    """One plan: amount, status, period, its gifts and its history; staff who may write
    are offered to cancel it (on a page of its own that asks first)."""
    return _render_detail(fetch(RecurringPlan, plan_id))


def _render_cancel(
    plan: RecurringPlan, form: CancelForm, status: int = 200, error: str | None = None
) -> ResponseReturnValue:
    return render_template("dashboard/plans/cancel.html", plan=plan, form=form, error=error), status


@bp.get("/<int:plan_id>/cancel")
@requires("write")
def confirm_cancel(plan_id: int) -> ResponseReturnValue:
    """What cancelling the plan will do, the reason to give, and the button that does it;
    changes nothing. A plan already canceled is refused (409)."""
    plan = fetch(RecurringPlan, plan_id)
    if plan.status is PlanStatus.CANCELED:
        raise Refused(_l("This recurring plan is already canceled."), status=409)
    return _render_cancel(plan, CancelForm(formdata=None))


@bp.post("/<int:plan_id>/cancel")
@requires("write")
def cancel(plan_id: int) -> ResponseReturnValue:
    """End the plan now: at Stripe, and here at once (the confirmation page's button)."""
    plan = fetch(RecurringPlan, plan_id)
    form = CancelForm()
    if not form.validate():
        return _render_cancel(plan, form, 400)
    try:
        plans.cancel_plan(plan, form.reason.data or "", payments.gateway(), acting_staff())
    except Refused as refused:
        return _render_cancel(plan, form, 400, error=refused.message())
    except payments.PaymentsUnavailable as exc:
        current_app.logger.warning("cancelling plan %s failed at the payment provider: %s", plan.id, exc)
        return _render_cancel(
            plan,
            form,
            502,
            error=_(
                "Stripe did not cancel the subscription (%(reason)s). Nothing was changed; "
                "you can try again in a minute.",
                reason=str(exc)[:300],
            ),
        )
    flash(_("The recurring plan was canceled. No further payments will be taken."), "info")
    return redirect(url_for(".detail", plan_id=plan.id), 303)
