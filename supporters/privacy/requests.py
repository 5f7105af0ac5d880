"""The privacy request log: a request logged, its deadline, what was done, its answer;
and the health of the open ones for the overview."""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, timedelta

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l

from supporters.extensions import db
from supporters.lib import audit
from supporters.lib.audit import Actor
from supporters.lib.dates import org_today
from supporters.lib.errors import Refused
from supporters.models import PrivacyRequest, RequestKind, RequestStatus, Supporter, utcnow

__all__ = ["PrivacyRequest", "RequestKind", "RequestStatus"]

#: a request due within this many days is "due soon" on the overview
DUE_SOON_DAYS = 7


def one_month_after(day: date) -> date:
    """The same day of the next month (the last day of a shorter month): Art. 12(3)'s one
    month, counted as the EU's rule on periods counts it (Regulation 1182/71)."""
    year, month = (day.year + 1, 1) if day.month == 12 else (day.year, day.month + 1)
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def _actor_name(actor: Actor | None) -> str:
    return actor.email if actor is not None else "cli"


def log_request(
    actor: Actor | None,
    kind: RequestKind,
    *,
    received_on: date,
    requester_name: str = "",
    requester_email: str = "",
    supporter: Supporter | None = None,
    notes: str = "",
) -> PrivacyRequest:
    """Log a request as it arrived; it is due one month after it was received. Refuses a
    date in the future, and a request that names nobody."""
    if received_on > org_today():
        raise Refused(_l("The request cannot have arrived in the future."), field="received_on")
    requester_name, requester_email = requester_name.strip(), requester_email.strip()
    if supporter is None and not (requester_name or requester_email):
        raise Refused(_l("Say who asked: a name or an e-mail address."), field="requester_name")
    request = PrivacyRequest(
        kind=kind,
        status=RequestStatus.OPEN,
        received_on=received_on,
        due_on=one_month_after(received_on),
        requester_name=requester_name or None,
        requester_email=requester_email or None,
        supporter_id=supporter.id if supporter is not None else None,
        notes=notes.strip(),
        created_by=_actor_name(actor),
    )
    db.session.add(request)
    db.session.flush()
    audit.record(
        actor,
        "privacy.request_logged",
        "privacy_request",
        request.id,
        kind=kind.value,
        supporter_id=request.supporter_id,
        due_on=request.due_on.isoformat(),
    )
    return request


def link_supporter(actor: Actor | None, request: PrivacyRequest, supporter: Supporter) -> None:
    """Say which supporter an open request is about."""
    _refuse_if_closed(request)
    request.supporter_id = supporter.id
    db.session.flush()
    audit.record(actor, "privacy.request_linked", "privacy_request", request.id, supporter_id=supporter.id)


def close_request(actor: Actor | None, request: PrivacyRequest, outcome: str) -> None:
    """Answer the request: what was done (or why not), by whom, now."""
    _refuse_if_closed(request)
    outcome = outcome.strip()
    if not outcome:
        raise Refused(_l("Say what was done."), field="outcome")
    request.status = RequestStatus.CLOSED
    request.outcome = outcome
    request.closed_at = utcnow()
    request.closed_by = _actor_name(actor)
    db.session.flush()
    audit.record(actor, "privacy.request_closed", "privacy_request", request.id, late=org_today() > request.due_on)


def _refuse_if_closed(request: PrivacyRequest) -> None:
    if not request.is_open:
        raise Refused(_l("This request is closed already."), status=409)


def note_export(request: PrivacyRequest) -> None:
    """The access export was downloaded for the request (the caller audits it)."""
    request.exported_at = utcnow()
    db.session.flush()


def requests_page(status: RequestStatus | None, limit: int = 200) -> list[PrivacyRequest]:
    """The log, open ones by deadline first, closed ones newest first."""
    statement = sa.select(PrivacyRequest)
    if status is not None:
        statement = statement.where(PrivacyRequest.status == status)
    statement = statement.order_by(
        (PrivacyRequest.status == RequestStatus.CLOSED), PrivacyRequest.due_on, PrivacyRequest.id
    ).limit(limit)
    return list(db.session.scalars(statement))


def requests_of(supporter: Supporter) -> list[PrivacyRequest]:
    return list(
        db.session.scalars(
            sa.select(PrivacyRequest)
            .where(PrivacyRequest.supporter_id == supporter.id)
            .order_by(PrivacyRequest.received_on.desc(), PrivacyRequest.id.desc())
        )
    )


@dataclass(frozen=True)
class RequestHealth:
    """The open requests as the overview shows them."""

    open: int
    overdue: list[PrivacyRequest]
    due_soon: list[PrivacyRequest]

    @property
    def needs_attention(self) -> bool:
        return bool(self.overdue or self.due_soon)


def open_request_health(today: date | None = None) -> RequestHealth:
    """How many requests are open, which are past their deadline, and which are due within
    DUE_SOON_DAYS days."""
    today = today or org_today()
    rows = list(
        db.session.scalars(
            sa.select(PrivacyRequest)
            .where(PrivacyRequest.status == RequestStatus.OPEN)
            .order_by(PrivacyRequest.due_on, PrivacyRequest.id)
        )
    )
    soon = today + timedelta(days=DUE_SOON_DAYS)
    return RequestHealth(
        open=len(rows),
        overdue=[row for row in rows if row.due_on < today],
        due_soon=[row for row in rows if today <= row.due_on <= soon],
    )
