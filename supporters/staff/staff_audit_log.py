"""Dashboard: the audit log, newest first, filtered by person, action and date (admins only:
it shows who looked at and exported whose personal data)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from flask import Blueprint, render_template, request
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from sqlalchemy import Select, select

from supporters.dashboard.access import requires
from supporters.extensions import db
from supporters.lib.dates import in_order, swapped_note
from supporters.lib.forms import whole_number
from supporters.lib.paging import page_number
from supporters.models import AuditEvent, StaffUser, utcnow

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
    if filters.start:
        query = query.where(AuditEvent.created_at >= datetime.combine(filters.start, time.min, UTC))
    if filters.end:
        query = query.where(AuditEvent.created_at < datetime.combine(filters.end + timedelta(days=1), time.min, UTC))
    return query.order_by(AuditEvent.created_at.desc(), AuditEvent.id.desc())


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
    ), 400 if filters.error else 200
