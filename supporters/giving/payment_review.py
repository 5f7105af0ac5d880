"""Stripe events kept for review: payments that are not the ones we asked for, and
events no handler could read. They were recorded and acknowledged, counted nowhere;
staff look at each (in Stripe, on the gift), act there, and mark it reviewed here.

`stripe_events.hold()` is what marks an event; this module lists them and closes them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l

from supporters.extensions import db
from supporters.lib import audit
from supporters.lib.errors import Refused
from supporters.models import StaffUser, StripeEvent, utcnow

#: the longest note staff may leave when they mark an event reviewed
NOTE_LENGTH = 500


@dataclass(frozen=True)
class ReviewFilters:
    """Which events the list shows: the open ones (default) or those already reviewed,
    optionally only those about one gift."""

    reviewed: bool = False
    gift_id: int | None = None


def _where(filters: ReviewFilters) -> sa.ColumnElement[bool]:
    if filters.reviewed:
        where = sa.and_(StripeEvent.needs_review.is_(False), StripeEvent.reviewed_at.isnot(None))
    else:
        where = StripeEvent.needs_review.is_(True)
    if filters.gift_id is not None:
        where = sa.and_(where, StripeEvent.gift_id == filters.gift_id)
    return where


def count_to_review(filters: ReviewFilters) -> int:
    """How many events the list of `filters` holds."""
    return db.session.scalar(sa.select(sa.func.count()).select_from(StripeEvent).where(_where(filters))) or 0


def events_to_review(filters: ReviewFilters, limit: int, offset: int = 0) -> list[StripeEvent]:
    """A page of the events of `filters`: the newest received first (reviewed: the newest reviewed)."""
    order = StripeEvent.reviewed_at.desc() if filters.reviewed else StripeEvent.received_at.desc()
    return list(
        db.session.scalars(
            sa.select(StripeEvent)
            .where(_where(filters))
            .order_by(order, StripeEvent.id.desc())
            .limit(limit)
            .offset(offset)
        )
    )


def open_reviews_of_gift(gift_id: int) -> int:
    """How many events about the gift still wait for staff's review (its page says so)."""
    return count_to_review(ReviewFilters(gift_id=gift_id))


def received(event: StripeEvent) -> dict[str, Any]:
    """What the event's object said, for staff to compare with what we expected: its
    object type and id, amount fields, currency, and the ids it named ({} when none)."""
    data = event.payload.get("data") if isinstance(event.payload, dict) else None
    obj = data.get("object") if isinstance(data, dict) else None
    if not isinstance(obj, dict):
        return {}
    keys = ("object", "id", "amount", "amount_received", "amount_total", "amount_paid", "currency", "subscription")
    shown = {key: obj[key] for key in keys if key in obj and not isinstance(obj[key], dict | list)}
    metadata = obj.get("metadata")
    if isinstance(metadata, dict):
        shown.update({f"metadata.{key}": value for key, value in metadata.items() if key in _NAMING_KEYS})
    if obj.get("client_reference_id") is not None:
        shown["client_reference_id"] = obj["client_reference_id"]
    return {key: "".join(c if c.isprintable() else "?" for c in str(value)[:80]) for key, value in shown.items()}


_NAMING_KEYS = ("gift_id", "recurring_plan_id")


def mark_reviewed(event_id: str, note: str, actor: StaffUser) -> StripeEvent:
    """Close the review of one event, with staff's note of what they did (in Stripe, on
    the gift). Audited. Nothing else changes: the event still counts nowhere.

    Refuses (Refused) an event that is not waiting for review and an empty note.
    """
    readable = 0 < len(event_id) <= 255 and event_id.isprintable()
    event = db.session.get(StripeEvent, event_id, with_for_update=True, populate_existing=True) if readable else None
    if event is None or not event.needs_review:
        raise Refused(_l("This event is not waiting for review (someone may have just reviewed it)."), status=409)
    note = note.strip()
    if not note:
        raise Refused(_l("Say what you did about this event."), field="note")
    event.needs_review = False
    event.reviewed_at = utcnow()
    event.reviewed_by_id = actor.id
    event.review_note = note[:NOTE_LENGTH]
    db.session.flush()
    audit.record(
        actor,
        "stripe_event.reviewed",
        "stripe_event",
        event.id,
        type=event.type,
        reason=event.review_reason,
        gift_id=event.gift_id,
        note=event.review_note,
    )
    return event


def reviewers(events: list[StripeEvent]) -> dict[int, str]:
    """The e-mail of each staff member who reviewed one of `events`, by id."""
    ids = {event.reviewed_by_id for event in events if event.reviewed_by_id is not None}
    if not ids:
        return {}
    found = db.session.execute(sa.select(StaffUser.id, StaffUser.email).where(StaffUser.id.in_(ids))).all()
    return {row.id: row.email for row in found}
