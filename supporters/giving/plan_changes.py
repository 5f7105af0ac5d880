"""A donor's changes to their own recurring gift: amount, monthly/yearly, pause and resume,
the card, cancelling (after one offer); and the same facts as Stripe reports them when
the change was made elsewhere (Stripe's dashboard, the Customer Portal).

Each rule locks the plan, refuses (`Refused`) what it may not do, asks the gateway FIRST
(a `PaymentsUnavailable` then leaves the plan, the audit log and the outbox as they
were), then changes the plan, writes its audit row as the donor
(`donors.web.actor_name`) and queues the confirmation e-mail. Functions flush; the
request commits.

Each call to Stripe has an idempotency key of its own (`_key`: the plan, the change, the
value asked and a random part), so the client's own retries of that call are one change at
Stripe, and no later change, even one asking the same value after a change that was
rolled back here, can ever be answered with an earlier call's cached result. Every change
is a "set" (this amount, paused until then, not paused), so a donor pressing twice asks
Stripe twice for the same thing and changes nothing more.

Stripe answers each change with the whole subscription as it now is: what others changed
before (a pause in Stripe's dashboard, whose event may arrive late or after this change)
comes onto the plan with it (`_bring_in`), audited as Stripe's. `plan.changed_at` then
orders what follows: an update Stripe made before, arriving late, never undoes a later one
(`take_from_stripe`): its facts were in the answer already.
"""

from __future__ import annotations

import calendar
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from supporters.donors import web
from supporters.extensions import db
from supporters.giving.checkout import maximum_gift, minimum_gift
from supporters.giving.lifecycle import move_plan
from supporters.lib import audit, money
from supporters.lib.errors import Refused
from supporters.lib.i18n import current_locale
from supporters.mail import plan_changes as mail
from supporters.models import AuditEvent, PlanInterval, PlanStatus, RecurringPlan, Supporter, utcnow
from supporters.payments import PaymentGateway

#: the pauses a donor may choose, in months
PAUSE_MONTHS = (1, 2, 3)
DONOR_CANCEL_REASON = "Canceled by the donor on their page"

CANCELED = _l("This gift has ended, so it can no longer be changed.")
NOT_STARTED = _l("This gift has not started yet: its first payment has not gone through.")


# --- Reading a plan -------------------------------------------------------------------


def own_plan(donor: Supporter, plan_id: int) -> RecurringPlan:
    """The donor's own plan `plan_id`; another's, or none, is refused with 404 (the same
    answer, so the page tells nothing of other plans)."""
    plan = db.session.get(RecurringPlan, plan_id)
    if plan is None or plan.supporter_id != donor.id:
        raise Refused(_l("There is no such gift on your page."), status=404)
    return plan


def plans_of(supporter_id: int) -> list[RecurringPlan]:
    """The supporter's plans, running ones first, newest first."""
    plans = db.session.scalars(
        select(RecurringPlan).where(RecurringPlan.supporter_id == supporter_id).order_by(RecurringPlan.id.desc())
    ).all()
    return sorted(plans, key=lambda plan: plan.status is PlanStatus.CANCELED)


def is_paused(plan: RecurringPlan, now: datetime | None = None) -> bool:
    """True while the plan's collection is paused (a pause whose end has passed is over)."""
    if plan.paused_at is None or plan.status is PlanStatus.CANCELED:
        return False
    return plan.paused_until is None or plan.paused_until > (now or utcnow())


def status_key(plan: RecurringPlan) -> str:
    """How the donor's page names the plan's state: "active", "paused", "failing",
    "canceled" or "starting"."""
    if plan.status is PlanStatus.CANCELED:
        return "canceled"
    if plan.status is PlanStatus.INCOMPLETE:
        return "starting"
    if plan.status is PlanStatus.PAST_DUE:
        return "failing"
    return "paused" if is_paused(plan) else "active"


def can_cancel_offer(plan: RecurringPlan) -> bool:
    """True until the offer (a lower amount or a pause) was shown once."""
    return plan.cancel_offer_shown_at is None


# --- The rules ------------------------------------------------------------------------------


def _lock(plan: RecurringPlan) -> RecurringPlan:
    db.session.flush()
    locked = db.session.get(RecurringPlan, plan.id, with_for_update=True, populate_existing=True)
    assert locked is not None
    return locked


def _changeable(plan: RecurringPlan) -> str:
    """The plan's subscription, when the plan may be changed; refuses otherwise."""
    if plan.status is PlanStatus.CANCELED:
        raise Refused(CANCELED, status=409)
    if plan.status is PlanStatus.INCOMPLETE or not plan.stripe_subscription_id:
        raise Refused(NOT_STARTED, status=409)
    return plan.stripe_subscription_id


def _key(plan: RecurringPlan, what: str, value: object = "") -> str:
    """A key for one call to Stripe (its retries included), never for another call."""
    return f"plan-{plan.id}-{what}-{value}-{uuid.uuid4().hex}"


def _bring_in(plan: RecurringPlan, subscription: dict[str, Any]) -> None:
    """The terms of the subscription Stripe answered a change with, onto the plan: after the
    donor's own change is on it, anything still different was changed by others before."""
    from supporters.giving.stripe_events import subscription_terms  # it reads Stripe's shapes; imports us

    changes = _apply_terms(plan, subscription_terms(subscription), utcnow())
    if changes:
        audit.record(None, "plan.stripe_change", "plan", plan.id, actor_name="Stripe", **changes)


def _done(plan: RecurringPlan, donor: Supporter, action: str, **details: Any) -> AuditEvent:
    """The change is made: counted, ordered, audited as the donor, confirmed by e-mail."""
    plan.change_count = (plan.change_count or 0) + 1
    # Stripe's event times are whole seconds: every event Stripe made before this change's call
    # returned (an earlier change's, arriving late) is older than the next second.
    plan.changed_at = utcnow().replace(microsecond=0) + timedelta(seconds=1)
    db.session.flush()
    row = audit.record(None, action, "plan", plan.id, actor_name=web.actor_name(donor), **details)
    mail.queue_plan_change(plan, action, details, f"plan-change:{plan.id}:{row.id}")
    return row


def read_amount(typed: str, currency: str) -> int:
    """The amount the donor typed, within the donation form's bounds (`checkout.minimum_gift`
    and `maximum_gift`); refuses with the form's own words."""
    try:
        amount = money.parse_amount(typed or "", currency)
    except money.MoneyError as exc:
        raise Refused(_(exc.template, **exc.params), field="amount") from None
    low, high = minimum_gift(currency), maximum_gift(currency)
    if amount < low:
        raise Refused(
            _l("The smallest gift we can accept online is %(amount)s."),
            field="amount",
            amount=money.format_amount(low, currency, current_locale()),
        )
    if amount > high:
        raise Refused(
            _l(
                "The largest gift we can accept online is %(amount)s. "
                "For a larger gift, please contact us about a bank transfer."
            ),
            field="amount",
            amount=money.format_amount(high, currency, current_locale()),
        )
    return amount


def change_amount(plan: RecurringPlan, typed: str, donor: Supporter, gateway: PaymentGateway) -> RecurringPlan:
    """A new amount from the next charge on (nothing prorated, nothing charged now)."""
    plan = _lock(plan)
    subscription = _changeable(plan)
    amount = read_amount(typed, plan.currency)
    if amount == plan.amount_minor:
        raise Refused(_l("Your gift is already this amount."), field="amount")
    if plan.status is PlanStatus.PAST_DUE:
        # Stripe keeps retrying the invoice it made at the old amount: the change would not
        # reach it, and its payment would then not match the plan's amount.
        raise Refused(
            _l("Your last payment did not go through: please update your card first, then change the amount."),
            status=409,
        )
    returned = gateway.change_subscription(
        subscription,
        amount_minor=amount,
        currency=plan.currency,
        interval=plan.interval.value,
        idempotency_key=_key(plan, "amount", amount),
    )
    before = plan.amount_minor
    plan.amount_minor = amount
    _bring_in(plan, returned)
    _done(plan, donor, "plan.amount_change", from_minor=before, to_minor=amount, currency=plan.currency)
    return plan


def switch_interval(
    plan: RecurringPlan, interval: str, typed: str, donor: Supporter, gateway: PaymentGateway
) -> RecurringPlan:
    """Monthly to yearly or back, from the next charge: the period paid is kept (the next
    charge is at its end, `current_period_end`), and from then on the new interval, at the
    amount typed (empty: the same amount)."""
    plan = _lock(plan)
    subscription = _changeable(plan)
    try:
        wanted = PlanInterval(interval)
    except ValueError:
        raise Refused(_l("Choose monthly or yearly."), field="interval") from None
    if wanted is plan.interval:
        raise Refused(_l("Your gift is already made this often."), field="interval")
    if plan.status is not PlanStatus.ACTIVE or is_paused(plan):
        raise Refused(
            _l("This can be changed while the gift is running: please resume it or update your card first."),
            status=409,
        )
    period_end = plan.current_period_end
    if period_end is None or period_end <= utcnow():
        raise Refused(_l("We do not know your next payment date yet; please try again tomorrow."), status=409)
    amount = read_amount(typed, plan.currency) if (typed or "").strip() else plan.amount_minor
    returned = gateway.change_subscription(
        subscription,
        amount_minor=amount,
        currency=plan.currency,
        interval=wanted.value,
        idempotency_key=_key(plan, wanted.value, amount),
        next_charge_at=period_end,
    )
    before, before_amount = plan.interval, plan.amount_minor
    plan.interval = wanted
    plan.amount_minor = amount
    _bring_in(plan, returned)
    _done(
        plan,
        donor,
        "plan.interval_change",
        from_interval=before.value,
        to_interval=wanted.value,
        from_minor=before_amount,
        to_minor=amount,
        currency=plan.currency,
        starts=period_end.isoformat(),
    )
    return plan


def add_months(moment: datetime, months: int) -> datetime:
    """`moment` `months` calendar months on (the 31st becomes the month's last day)."""
    month = moment.month - 1 + months
    year, month = moment.year + month // 12, month % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def pause(plan: RecurringPlan, months: int | None, donor: Supporter, gateway: PaymentGateway) -> RecurringPlan:
    """No payment for 1, 2 or 3 months from now; payments resume by themselves after it."""
    plan = _lock(plan)
    subscription = _changeable(plan)
    if months not in PAUSE_MONTHS:
        raise Refused(_l("Choose a pause of 1, 2 or 3 months."), field="months")
    if is_paused(plan):
        raise Refused(_l("Your gift is paused already."), status=409)
    now = utcnow().replace(microsecond=0)
    # From midnight (UTC) of the day, so a retry the same day asks Stripe exactly the same
    # (an idempotency key reused with other parameters is refused).
    resumes_at = add_months(now, months).replace(hour=0, minute=0, second=0) + timedelta(days=1)
    returned = gateway.pause_subscription(subscription, resumes_at, _key(plan, "pause", resumes_at.date().isoformat()))
    plan.paused_at, plan.paused_until = now, resumes_at
    _bring_in(plan, returned)
    _done(plan, donor, "plan.pause", months=months, until=resumes_at.isoformat())
    return plan


def resume(plan: RecurringPlan, donor: Supporter, gateway: PaymentGateway) -> RecurringPlan:
    """End a pause now; the next payment is the plan's next renewal."""
    plan = _lock(plan)
    subscription = _changeable(plan)
    if not is_paused(plan):
        raise Refused(_l("Your gift is not paused."), status=409)
    returned = gateway.resume_subscription(subscription, _key(plan, "resume"))
    until = plan.paused_until
    plan.paused_at = plan.paused_until = None
    _bring_in(plan, returned)
    _done(plan, donor, "plan.resume", was_until=until.isoformat() if until else None)
    return plan


def start_card_update(
    plan: RecurringPlan, donor: Supporter, gateway: PaymentGateway, return_url: str, locale: str
) -> str:
    """Where the donor gives a new card (Stripe's portal, or the offline card page). The card
    in use now is noted (audited), so the return can tell whether it changed."""
    plan = _lock(plan)
    subscription = _changeable(plan)
    before = gateway.default_payment_method(subscription)
    url = gateway.card_update_url(subscription, return_url, locale)
    audit.record(None, "plan.card_update_opened", "plan", plan.id, actor_name=web.actor_name(donor), card_before=before)
    return url


def note_card_update(plan: RecurringPlan, donor: Supporter, gateway: PaymentGateway) -> bool:
    """Back from the card update: True (audited, e-mailed, once per card) when the
    subscription now uses another card than when the donor left."""
    plan = _lock(plan)
    subscription = _changeable(plan)
    opened = db.session.scalars(
        select(AuditEvent)
        .filter_by(target_type="plan", target_id=str(plan.id), action="plan.card_update_opened")
        .order_by(AuditEvent.id.desc())
        .limit(1)
    ).first()
    if opened is None:
        return False
    now = gateway.default_payment_method(subscription)
    before = (opened.details or {}).get("card_before")
    if now is None or now == before:
        return False
    recorded = db.session.scalars(
        select(AuditEvent.id).filter_by(target_type="plan", target_id=str(plan.id), action="plan.card_update")
    ).all()
    for row_id in recorded:
        row = db.session.get(AuditEvent, row_id)
        if row is not None and (row.details or {}).get("card") == now:
            return False
    _done(plan, donor, "plan.card_update", card=now)
    return True


def show_cancel_offer(plan: RecurringPlan, donor: Supporter) -> bool:
    """The donor asked to cancel: True (recorded) the first time, when the offer of a lower
    amount or a pause is to be shown; False after (cancelling is then one click)."""
    plan = _lock(plan)
    if plan.status is PlanStatus.CANCELED:
        raise Refused(CANCELED, status=409)
    if plan.cancel_offer_shown_at is not None:
        return False
    plan.cancel_offer_shown_at = utcnow()
    audit.record(None, "plan.cancel_offer_shown", "plan", plan.id, actor_name=web.actor_name(donor))
    return True


def cancel(plan: RecurringPlan, donor: Supporter, gateway: PaymentGateway) -> RecurringPlan:
    """End the gift now: Stripe's subscription first, then the plan (`move_plan`)."""
    plan = _lock(plan)
    if plan.status is PlanStatus.CANCELED:
        raise Refused(CANCELED, status=409)
    if plan.stripe_subscription_id:
        gateway.cancel_subscription(plan.stripe_subscription_id)
    plan.cancel_reason = plan.cancel_reason or DONOR_CANCEL_REASON
    move_plan(plan, PlanStatus.CANCELED)
    _done(plan, donor, "plan.cancel", reason=DONOR_CANCEL_REASON, subscription_id=plan.stripe_subscription_id)
    return plan


# --- What Stripe says changed -----------------------------------------------------------


@dataclass(frozen=True)
class StripeTerms:
    """What a subscription object says of the plan's terms (None: it does not say)."""

    amount_minor: int | None
    currency: str | None
    interval: str | None
    #: None: the object does not say; else whether collection is paused, and until when
    paused: bool | None
    resumes_at: datetime | None


def take_from_stripe(plan: RecurringPlan, terms: StripeTerms, at: datetime | None) -> str:
    """Bring a change made at Stripe onto the plan: amount, interval, pause. `at` is the
    event's time: an update older than the plan's last change (`changed_at`, ours or
    Stripe's) changes nothing, so events in any order, and twice, leave the latest terms.
    Returns what changed, in a few words ("" for nothing)."""
    if plan.status is PlanStatus.CANCELED or at is None:
        return ""
    if plan.changed_at is not None and at < plan.changed_at:
        return "terms older than the plan's last change"
    plan.changed_at = at
    changes = _apply_terms(plan, terms, at)
    if not changes:
        return ""
    db.session.flush()
    audit.record(None, "plan.stripe_change", "plan", plan.id, actor_name="Stripe", **changes)
    return ", ".join(sorted(changes))


def _apply_terms(plan: RecurringPlan, terms: StripeTerms, at: datetime) -> dict[str, Any]:
    """Make the plan's amount, interval and pause what `terms` say (what they leave unsaid
    stays); returns what changed, for the audit row."""
    changes: dict[str, Any] = {}
    if terms.amount_minor and terms.amount_minor > 0 and terms.amount_minor != plan.amount_minor:
        if (terms.currency or "").upper() == plan.currency:
            changes.update(from_minor=plan.amount_minor, to_minor=terms.amount_minor, currency=plan.currency)
            plan.amount_minor = terms.amount_minor
    if terms.interval in ("month", "year") and terms.interval != plan.interval.value:
        changes.update(from_interval=plan.interval.value, to_interval=terms.interval)
        plan.interval = PlanInterval(terms.interval)
    if terms.paused is True and (plan.paused_at is None or plan.paused_until != terms.resumes_at):
        plan.paused_at = plan.paused_at or at
        plan.paused_until = terms.resumes_at
        changes["paused_until"] = terms.resumes_at.isoformat() if terms.resumes_at else "until resumed"
    elif terms.paused is False and plan.paused_at is not None:
        plan.paused_at = plan.paused_until = None
        changes["resumed"] = True
    return changes


# --- The plan's changes in plain words --------------------------------------------------------


INTERVAL_WORDS = {"month": _l("monthly"), "year": _l("yearly")}


def describe(action: str, details: dict[str, Any] | None, locale: str) -> str | None:
    """One change of a plan (an audit row's action and details) in plain words; None for
    an action that is no change of the plan's terms."""
    d = details or {}
    currency = str(d.get("currency") or "")

    def amount(key: str) -> str:
        value = d.get(key)
        return money.format_amount(int(value), currency, locale) if isinstance(value, int) and currency else "?"

    def interval(key: str) -> str:
        return str(INTERVAL_WORDS.get(str(d.get(key)), d.get(key) or "?"))

    def day(key: str) -> str:
        from flask_babel import format_date

        value = d.get(key)
        try:
            return format_date(datetime.fromisoformat(str(value)), "medium") if value else ""
        except ValueError:
            return str(value)

    if action == "plan.amount_change":
        return _(
            "Amount changed from %(old)s to %(new)s, from the next payment.",
            old=amount("from_minor"),
            new=amount("to_minor"),
        )
    if action == "plan.interval_change":
        return _(
            "Changed from %(old)s to %(new)s (%(amount)s), from the payment on %(day)s.",
            old=interval("from_interval"),
            new=interval("to_interval"),
            amount=amount("to_minor"),
            day=day("starts"),
        )
    if action == "plan.pause":
        return _("Paused for %(months)s month(s), until %(day)s.", months=d.get("months"), day=day("until"))
    if action == "plan.resume":
        return _("Resumed.")
    if action == "plan.card_update":
        return _("Card updated.")
    if action == "plan.card_update_opened":
        return _("Card update started.")
    if action == "plan.cancel_offer_shown":
        return _("Offered a lower amount or a pause before cancelling.")
    if action == "plan.cancel":
        return _("Canceled.")
    if action == "plan.stripe_change":
        parts = []
        if "to_minor" in d:
            parts.append(_("amount now %(new)s", new=amount("to_minor")))
        if "to_interval" in d:
            parts.append(_("now %(new)s", new=interval("to_interval")))
        if d.get("paused_until") == "until resumed":
            parts.append(_("paused until resumed"))
        elif "paused_until" in d:
            parts.append(_("paused until %(day)s", day=day("paused_until")))
        if d.get("resumed"):
            parts.append(_("resumed"))
        return _("Changed at the payment provider: %(what)s.", what=", ".join(parts))
    return None


@dataclass(frozen=True)
class Change:
    """One line of a plan's history of changes, for the donor's and staff's pages."""

    at: datetime
    plan_id: int
    who: str  # "donor", "staff", "stripe" or "system"
    actor: str
    words: str


def changes_of(plan_ids: list[int], locale: str) -> list[Change]:
    """The plans' changes (audit rows about them, in plain words), oldest first."""
    if not plan_ids:
        return []
    rows = db.session.scalars(
        select(AuditEvent)
        .where(AuditEvent.target_type == "plan", AuditEvent.target_id.in_([str(i) for i in plan_ids]))
        .order_by(AuditEvent.created_at, AuditEvent.id)
        .limit(1000)
    ).all()
    changes = []
    for row in rows:
        words = describe(row.action, row.details, locale)
        if words is None:
            continue
        if row.staff_user_id is not None:
            who = "staff"
        elif row.actor.startswith("donor #"):
            who = "donor"
        elif row.actor == "Stripe":
            who = "stripe"
        else:
            who = "system"
        changes.append(Change(row.created_at, int(row.target_id or 0), who, row.actor, words))
    return changes
