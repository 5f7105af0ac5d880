"""Dashboard: the audit log, newest first, filtered by person, action and date (admins only:
it shows who looked at and exported whose personal data). Each event reads as a sentence
with links to its records (SENTENCES); its raw details stay one click away."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from flask import Blueprint, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from markupsafe import Markup, escape
from sqlalchemy import Select, select

from supporters.dashboard.access import requires
from supporters.extensions import db
from supporters.giving import plan_changes
from supporters.lib.dates import in_order, org_timezone, swapped_note
from supporters.lib.forms import whole_number
from supporters.lib.i18n import current_locale, format_money
from supporters.lib.paging import page_number
from supporters.models import AuditEvent, Campaign, Gift, RecurringPlan, StaffUser, Supporter, utcnow

bp = Blueprint("audit", __name__, url_prefix="/audit")

PER_PAGE = 100
#: actors that are not staff accounts
OTHER_ACTORS = ("cli", "system")


@dataclass
class AuditFilters:
    """What the page was asked to show; `error` says what could not be understood."""

    person: str = ""
    action: str = ""
    start: date | None = None
    end: date | None = None
    page: int = 1
    error: str | None = None
    #: what was read differently from how it was typed (a period the wrong way round, a page)
    notes: list[str] = field(default_factory=list)

    def query_args(self, **changes: Any) -> dict[str, Any]:
        """The filters as the page's query string, for links to other pages."""
        args = {
            "person": self.person or None,
            "action": self.action or None,
            "from": self.start.isoformat() if self.start else None,
            "to": self.end.isoformat() if self.end else None,
            "page": self.page if self.page > 1 else None,
        }
        args.update(changes)
        return {key: value for key, value in args.items() if value is not None}


def read_filters() -> AuditFilters:
    """The filters in the query string: ?person= (a staff id, or cli/system/an e-mail),
    ?action= (exact, or a prefix ending in "." or "*"), ?from=&to= (dates), ?page=."""
    filters = AuditFilters(
        person=request.args.get("person", "").strip()[:320], action=request.args.get("action", "").strip()[:64]
    )
    try:
        filters.start = date.fromisoformat(request.args["from"]) if request.args.get("from") else None
        filters.end = date.fromisoformat(request.args["to"]) if request.args.get("to") else None
    except ValueError:
        filters.start = filters.end = None
        filters.error = _("Enter dates as YYYY-MM-DD, e.g. %(example)s.", example=utcnow().date().isoformat())
    filters.start, filters.end, swapped = in_order(filters.start, filters.end)
    if swapped:
        filters.notes.append(swapped_note())
    filters.page = page_number(request.args, filters.notes)
    return filters


def events_query(filters: AuditFilters) -> Select[AuditEvent]:
    """The audit events the filters select, newest first."""
    query = select(AuditEvent)
    staff_id = whole_number(filters.person)
    if staff_id is not None:
        query = query.where(AuditEvent.staff_user_id == staff_id)
    elif filters.person:
        query = query.where(AuditEvent.actor == filters.person)
    action = filters.action
    if action.endswith("*"):
        query = query.where(AuditEvent.action.startswith(action.rstrip("*"), autoescape=True))
    elif action.endswith("."):
        query = query.where(AuditEvent.action.startswith(action, autoescape=True))
    elif action:
        query = query.where(AuditEvent.action == action)
    # The days are the organisation's, as every time on the page is.
    zone = org_timezone()
    if filters.start:
        query = query.where(AuditEvent.created_at >= datetime.combine(filters.start, time.min, zone).astimezone(UTC))
    if filters.end:
        end = datetime.combine(filters.end + timedelta(days=1), time.min, zone).astimezone(UTC)
        query = query.where(AuditEvent.created_at < end)
    return query.order_by(AuditEvent.created_at.desc(), AuditEvent.id.desc())


# --- Sentences -----------------------------------------------------------------------------------

#: What each action says, one line each. In a sentence, %(actor)s is who acted, %(target)s
#: the record the event is about (a link), %(supporter)s the supporter concerned (of the
#: gift or plan, or the details' supporter_id), %(gift)s the details' gift_id (a link),
#: %(amount)s the details' amount_minor in their currency (%(from_amount)s and
#: %(to_amount)s: from_minor and to_minor); any other %(name)s is the details' value of
#: that name. An action missing here reads as GENERIC.
SENTENCES: dict[str, Any] = {
    "article.create": _l("%(actor)s wrote %(target)s"),
    "article.publish": _l("%(actor)s published %(target)s"),
    "article.unpublish": _l("%(actor)s unpublished %(target)s"),
    "article.update": _l("%(actor)s changed %(target)s (%(changed)s)"),
    "bank.line_not_a_gift": _l("%(actor)s marked %(target)s as not a gift: %(reason)s"),
    "bank.line_recorded_as_gift": _l("%(actor)s recorded %(target)s as %(gift)s of %(supporter)s"),
    "bank.statement_imported": _l(
        "%(actor)s imported %(target)s: %(new)s new lines, %(pledges_paid)s pledges paid, %(open)s left to decide"
    ),
    "bank.statement_uploaded": _l("%(actor)s uploaded %(target)s (%(file_name)s, %(lines)s lines)"),
    "campaign.create": _l("%(actor)s created %(target)s"),
    "campaign.update": _l("%(actor)s changed %(target)s (%(changed)s)"),
    "consent.granted": _l("%(actor)s recorded the consent of %(target)s to the %(purpose)s (%(source)s)"),
    "consent.withdrawn": _l("%(actor)s recorded that %(target)s withdrew consent to the %(purpose)s (%(source)s)"),
    "gift.correct": _l("%(actor)s corrected %(target)s of %(supporter)s (%(changed)s): %(reason)s"),
    "gift.pledge_closed": _l("%(actor)s closed %(target)s of %(supporter)s: not received in %(days)s days"),
    "gift.record_offline": _l("%(actor)s recorded %(target)s of %(amount)s (%(method)s) from %(supporter)s"),
    "gift.refund": _l("%(actor)s refunded %(amount)s of %(target)s to %(supporter)s"),
    "gift.transfer_received": _l("%(actor)s recorded the transfer of %(amount)s for %(target)s of %(supporter)s"),
    "gift.void": _l("%(actor)s voided %(target)s of %(supporter)s: %(reason)s"),
    "gifts.export": _l("%(actor)s exported gifts (%(filters)s)"),
    "plan.amount_change": _l("%(actor)s changed %(target)s of %(supporter)s: %(plan_change)s"),
    "plan.cancel": _l("%(actor)s canceled %(target)s of %(supporter)s: %(reason)s"),
    "plan.cancel_offer_shown": _l("%(actor)s was offered a pause instead of cancelling %(target)s"),
    "plan.card_update": _l("%(actor)s changed the card of %(target)s of %(supporter)s"),
    "plan.card_update_opened": _l("%(actor)s opened Stripe's page to change the card of %(target)s"),
    "plan.interval_change": _l("%(actor)s changed %(target)s of %(supporter)s: %(plan_change)s"),
    "plan.pause": _l("%(actor)s paused %(target)s of %(supporter)s: %(plan_change)s"),
    "plan.resume": _l("%(actor)s resumed %(target)s of %(supporter)s"),
    "plan.stripe_change": _l("%(actor)s changed %(target)s of %(supporter)s: %(plan_change)s"),
    "rates.import": _l("%(actor)s imported exchange rates: %(new_rates)s new, %(converted)s gifts converted"),
    "staff.2fa_disabled": _l("%(actor)s turned off two-factor sign-in"),
    "staff.2fa_enabled": _l("%(actor)s turned on two-factor sign-in"),
    "staff.2fa_recovery_code_used": _l("%(actor)s signed in with a recovery code (%(recovery_codes_left)s left)"),
    "staff.2fa_recovery_codes_renewed": _l("%(actor)s made new recovery codes"),
    "staff.2fa_reset": _l("%(actor)s reset the two-factor sign-in of %(target)s"),
    "staff.activate": _l("%(actor)s reactivated %(target)s"),
    "staff.change_role": _l("%(actor)s changed the role of %(target)s from %(before)s to %(after)s"),
    "staff.create": _l("%(actor)s created the account %(target)s (%(role)s)"),
    "staff.deactivate": _l("%(actor)s deactivated %(target)s"),
    "staff.invite": _l("%(actor)s invited %(target)s (%(role)s)"),
    "staff.lockout": _l("%(target)s was locked after too many failed sign-ins; an unlock link was sent"),
    "staff.login": _l("%(actor)s signed in"),
    "staff.login_failed": _l("A sign-in to %(target)s failed (%(stage)s)"),
    "staff.logout": _l("%(actor)s signed out"),
    "staff.password_change": _l("%(actor)s changed their password"),
    "staff.password_reset": _l("The password of %(target)s was reset through an e-mailed link"),
    "staff.password_reset_requested": _l("A password reset link was asked for %(target)s"),
    "staff.reinvite": _l("%(actor)s invited %(target)s again (%(role)s)"),
    "staff.unlock_link_used": _l("The unlock link of %(target)s was used"),
    "stripe.reconcile": _l("%(actor)s reconciled with Stripe since %(since)s: %(applied)s events applied"),
    "stripe_event.reviewed": _l("%(actor)s marked %(target)s reviewed: %(note)s"),
    "supporter.add_note": _l("%(actor)s added a note to %(target)s"),
    "supporter.delete_note": _l("%(actor)s deleted a note on %(target)s"),
    "supporter.edit_note": _l("%(actor)s edited a note on %(target)s"),
    "supporter.edit_profile": _l("%(actor)s changed the profile of %(target)s (%(changes)s)"),
    "supporter.set_tags": _l("%(actor)s changed the tags of %(target)s (%(changes)s)"),
    "supporters.bulk_tag": _l("%(actor)s %(change)s the tag “%(tag)s” for %(count)s supporters (%(filters)s)"),
    "supporters.export": _l("%(actor)s exported %(rows)s supporters (%(filters)s)"),
    "saved_search.create": _l("%(actor)s saved the search “%(name)s”"),
    "saved_search.delete": _l("%(actor)s deleted the saved search “%(name)s”"),
    "import.committed": _l(
        "%(actor)s imported %(target)s from %(source)s (%(file_name)s): supporters %(supporters)s; gifts %(gifts)s"
    ),
    "import.mapping_saved": _l("%(actor)s saved the column mapping of %(target)s"),
    "import.uploaded": _l("%(actor)s uploaded %(target)s (%(file_name)s)"),
    "import.upload_removed": _l("%(actor)s removed %(target)s, an upload not imported within %(days)s days"),
    "privacy.erase": _l("%(actor)s erased the personal data of %(target)s (%(request)s)"),
    "privacy.export": _l("%(actor)s exported the personal data of %(target)s (%(request)s)"),
    "privacy.purge": _l("%(actor)s purged what was kept of %(target)s after the retention period (%(request)s)"),
    "privacy.request_closed": _l("%(actor)s closed %(target)s"),
    "privacy.request_linked": _l("%(actor)s linked %(target)s to %(supporter)s"),
    "privacy.request_logged": _l("%(actor)s logged %(target)s (%(kind)s) about %(supporter)s"),
    "supporter.merge": _l("%(actor)s merged %(merged)s into %(target)s (%(merge)s)"),
    "supporter.merge_undone": _l("%(actor)s undid %(merge)s: %(restored)s taken out of %(target)s again"),
    "supporter.not_a_duplicate": _l("%(actor)s marked %(target)s and %(other)s as not duplicates"),
    "variant.create": _l("%(actor)s added the appeal variant %(key)s to %(campaign)s"),
    "variant.delete": _l("%(actor)s deleted the appeal variant %(key)s of %(campaign)s"),
    "variant.update": _l("%(actor)s changed the appeal variant %(key)s of %(campaign)s (%(changed)s)"),
}
#: what an action missing from SENTENCES reads as
GENERIC = _l("%(actor)s: %(action)s on %(target)s")
GENERIC_NO_TARGET = _l("%(actor)s: %(action)s")
#: the names a sentence may use besides the details' own
FILLED = frozenset(
    {
        "actor",
        "target",
        "supporter",
        "gift",
        "amount",
        "from_amount",
        "to_amount",
        "action",
        "plan_change",
        "merge",
        "request",
        "other",
    }
)

#: who acted, when it was no staff account: a donor on their own page (donors.web.actor_name)
_DONOR = re.compile(r"donor #(\d+)")


def placeholders(sentence: Any) -> set[str]:
    """The %(name)s a sentence uses, in the language it is written in."""
    return set(re.findall(r"%\((\w+)\)s", str(sentence)))


class _Filled(dict[str, Any]):
    """A sentence's values; a value the event does not have reads as a dash."""

    def __missing__(self, key: str) -> str:
        return "—"


@dataclass
class _Records:
    """What the page's sentences name, read in a few queries for the whole page."""

    #: supporter id: (name, erased)
    supporters: dict[int, tuple[str, bool]] = field(default_factory=dict)
    gift_owner: dict[int, int] = field(default_factory=dict)
    plan_owner: dict[int, int] = field(default_factory=dict)
    campaigns: dict[int, str] = field(default_factory=dict)
    staff: dict[int, str] = field(default_factory=dict)


def _pairs(rows: Iterable[Any]) -> dict[Any, Any]:
    return {row[0]: row[1] for row in rows}


def _ids(events: Iterable[AuditEvent], target_type: str) -> set[int]:
    found = set()
    for event in events:
        if event.target_type == target_type:
            number = whole_number(event.target_id or "")
            if number is not None:
                found.add(number)
    return found


def _read_records(events: list[AuditEvent]) -> _Records:
    records = _Records()
    gift_ids = _ids(events, "gift") | {
        event.details["gift_id"] for event in events if isinstance((event.details or {}).get("gift_id"), int)
    }
    if gift_ids:
        records.gift_owner = _pairs(db.session.execute(select(Gift.id, Gift.supporter_id).where(Gift.id.in_(gift_ids))))
    plan_ids = _ids(events, "plan")
    if plan_ids:
        records.plan_owner = _pairs(
            db.session.execute(
                select(RecurringPlan.id, RecurringPlan.supporter_id).where(RecurringPlan.id.in_(plan_ids))
            )
        )
    supporter_ids = _ids(events, "supporter") | set(records.gift_owner.values()) | set(records.plan_owner.values())
    for event in events:
        details = event.details or {}
        named = [details.get("supporter_id"), details.get("other_id"), *_listed(details, "merged", "restored")]
        supporter_ids.update(number for number in named if isinstance(number, int))
        donor = _DONOR.fullmatch(event.actor or "")
        if donor:
            supporter_ids.add(int(donor.group(1)))
    if supporter_ids:
        records.supporters = {
            row.id: (row.name, row.anonymised_at is not None)
            for row in db.session.execute(
                select(Supporter.id, Supporter.name, Supporter.anonymised_at).where(Supporter.id.in_(supporter_ids))
            )
        }
    campaign_ids = _ids(events, "campaign")
    if campaign_ids:
        records.campaigns = _pairs(
            db.session.execute(select(Campaign.id, Campaign.name).where(Campaign.id.in_(campaign_ids)))
        )
    staff_ids = _ids(events, "staff_user") | {event.staff_user_id for event in events if event.staff_user_id}
    if staff_ids:
        records.staff = _pairs(
            db.session.execute(select(StaffUser.id, StaffUser.email).where(StaffUser.id.in_(staff_ids)))
        )
    return records


def _listed(details: dict[str, Any], *keys: str) -> list[Any]:
    """The items of the details' lists under `keys` (the supporters a merge named)."""
    return [item for key in keys if isinstance(details.get(key), list) for item in details[key]]


def _link(endpoint: str, text: str, **values: Any) -> Markup:
    return Markup('<a href="%s"><bdi>%s</bdi></a>') % (url_for(endpoint, **values), text)


def _supporter(records: _Records, supporter_id: int | None) -> Markup | str:
    if supporter_id is None:
        return "—"
    if supporter_id not in records.supporters:
        return _("supporter #%(id)s", id=supporter_id)
    name, erased = records.supporters[supporter_id]
    if erased:
        name = _("Erased supporter #%(id)s", id=supporter_id)
    return _link("dashboard.supporters.detail", name, supporter_id=supporter_id)


def _staff(records: _Records, staff_id: int, fallback: str | None = None) -> Markup:
    email = records.staff.get(staff_id) or fallback or _("staff #%(id)s", id=staff_id)
    return _link("dashboard.audit.index", email, person=staff_id)


def _target(event: AuditEvent, records: _Records) -> Markup | str:
    """The event's record, named and linked to its page where it has one."""
    kind, raw = event.target_type, event.target_id or ""
    number = whole_number(raw)
    details = event.details or {}
    if kind is None:
        return "—"
    if number is None:
        return f"{kind} {raw}".strip()
    if kind == "supporter":
        return _supporter(records, number)
    if kind == "gift":
        return _link("dashboard.gifts.detail", _("gift #%(id)s", id=number), gift_id=number)
    if kind == "plan":
        return _link("dashboard.plans.detail", _("recurring plan #%(id)s", id=number), plan_id=number)
    if kind == "campaign":
        name = records.campaigns.get(number) or details.get("name") or _("campaign #%(id)s", id=number)
        return _link("dashboard.campaigns.detail", str(name), campaign_id=number)
    if kind == "staff_user":
        return _staff(records, number, details.get("email"))
    if kind == "article":
        title = details.get("title") or details.get("slug") or _("article #%(id)s", id=number)
        return _link("dashboard.articles.detail", str(title), article_id=number)
    if kind == "bank_statement":
        return _link("dashboard.bank.statement", _("bank statement #%(id)s", id=number), statement_id=number)
    if kind == "import_run":
        return _link("dashboard.imports.detail", _("import #%(id)s", id=number), run_id=number)
    if kind == "import_mapping":
        return _("the source %(name)s", name=details.get("name") or number)
    if kind == "privacy_request":
        return _link("dashboard.privacy.detail", _("privacy request #%(id)s", id=number), request_id=number)
    if kind == "bank_line":
        return _link("dashboard.bank.line", _("bank line #%(id)s", id=number), line_id=number)
    return f"{kind} {raw}"


def _actor(event: AuditEvent, records: _Records) -> Markup | str:
    if event.staff_user_id:
        return Markup("%s %s") % (_staff(records, event.staff_user_id, event.actor), _("(staff)"))
    donor = _DONOR.fullmatch(event.actor or "")
    if donor:
        return Markup("%s %s") % (_("The donor"), _supporter(records, int(donor.group(1))))
    return event.actor or _("system")


def _value(value: Any) -> str:
    """A detail as words: a list or a change set by its names, a mapping as name: value."""
    if value is None or value == "" or value == [] or value == {}:
        return "—"
    if isinstance(value, bool):
        return _("yes") if value else _("no")
    if isinstance(value, dict):
        if all(isinstance(inner, (dict, list)) for inner in value.values()):
            return ", ".join(str(name) for name in value)
        return ", ".join(f"{name}: {_value(inner)}" for name, inner in value.items())
    if isinstance(value, list):
        return ", ".join(_value(item) for item in value)
    text = str(value)
    return text if len(text) <= 200 else text[:200] + "…"


def _money(details: dict[str, Any], key: str) -> str:
    amount, currency = details.get(key), details.get("currency")
    if isinstance(amount, int) and isinstance(currency, str) and len(currency) == 3:
        return format_money(amount, currency)
    return "—"


def _numbered(details: dict[str, Any], key: str, endpoint: str, name: Any) -> Markup | str:
    """A link to the record whose id the details keep under `key` (the endpoint's argument), or a dash."""
    number = details.get(key)
    if not isinstance(number, int) or isinstance(number, bool):
        return "—"
    return _link(endpoint, str(name) % {"id": number}, **{key: number})


def sentence(event: AuditEvent, records: _Records) -> Markup:
    """The event in words, with links to its records; HTML-safe (every value is escaped)."""
    details = event.details if isinstance(event.details, dict) else {}
    values = _Filled({name: _value(value) for name, value in details.items()})
    values["change"] = {"add": _("added"), "remove": _("removed")}.get(str(details.get("change")), values["change"])
    gift_id = details.get("gift_id")
    owner: int | None = details.get("supporter_id") if isinstance(details.get("supporter_id"), int) else None
    number = whole_number(event.target_id or "")
    if event.target_type == "gift" and number is not None:
        owner = records.gift_owner.get(number, owner)
    elif event.target_type == "plan" and number is not None:
        owner = records.plan_owner.get(number, owner)
    elif isinstance(gift_id, int):
        owner = records.gift_owner.get(gift_id, owner)
    values.update(
        actor=_actor(event, records),
        target=_target(event, records),
        supporter=_supporter(records, owner),
        gift=_link("dashboard.gifts.detail", _("gift #%(id)s", id=gift_id), gift_id=gift_id)
        if isinstance(gift_id, int)
        else "—",
        amount=_money(details, "amount_minor"),
        plan_change=plan_changes.describe(event.action, details, current_locale()) or "—",
        from_amount=_money(details, "from_minor"),
        to_amount=_money(details, "to_minor"),
        action=event.action,
        merge=_numbered(details, "merge_id", "dashboard.duplicates.merge_record", _l("merge #%(id)s")),
        request=_numbered(details, "request_id", "dashboard.privacy.detail", _l("privacy request #%(id)s")),
        other=_supporter(records, details["other_id"]) if isinstance(details.get("other_id"), int) else "—",
    )
    if isinstance(details.get("merged"), list):
        values["merged"] = Markup(", ").join(
            _supporter(records, number) for number in details["merged"] if isinstance(number, int)
        )
    if isinstance(details.get("restored"), list):
        values["restored"] = Markup(", ").join(
            _supporter(records, number) for number in details["restored"] if isinstance(number, int)
        )
    template = SENTENCES.get(event.action) or (GENERIC if event.target_type else GENERIC_NO_TARGET)
    return Markup(escape(str(template))) % values


def sentences(events: list[AuditEvent]) -> dict[int, Markup]:
    """Each event's sentence, by event id (the records they name read once for all)."""
    records = _read_records(events)
    return {event.id: sentence(event, records) for event in events}


def details_json(details: dict[str, Any] | None) -> str:
    """An event's details as compact JSON text (the template escapes it)."""
    return json.dumps(details or {}, ensure_ascii=False, sort_keys=True, default=str)


@bp.get("/")
@requires("staff")
def index() -> ResponseReturnValue:
    """Who did what to which record, and when; 100 events a page."""
    filters = read_filters()
    events: list[AuditEvent] = []
    more = False
    if filters.error is None:
        found = list(
            db.session.scalars(events_query(filters).offset((filters.page - 1) * PER_PAGE).limit(PER_PAGE + 1))
        )
        events, more = found[:PER_PAGE], len(found) > PER_PAGE
    people = db.session.execute(select(StaffUser.id, StaffUser.email).order_by(StaffUser.email)).all()
    return render_template(
        "dashboard/audit/index.html",
        events=events,
        more=more,
        filters=filters,
        people=people,
        other_actors=OTHER_ACTORS,
        details_json=details_json,
        sentences=sentences(events),
        zone=str(org_timezone()),
    ), 400 if filters.error else 200
