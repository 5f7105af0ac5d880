"""The audit log: who did what to which record, and when.

The convention: each operation that changes something (or lets personal data
out) takes the acting staff member and calls `record` itself, in the same
transaction as the change, so the change and its record stand or fall together.
Views never write audit rows.
"""

from __future__ import annotations

from typing import Any, Protocol

from supporters.extensions import db
from supporters.models import AuditEvent


class Actor(Protocol):
    """Whoever acts: a staff account (`StaffUser`), or `None` for the system."""

    id: int
    email: str


def record(
    actor: Actor | None,
    action: str,
    target_type: str | None = None,
    target_id: object = None,
    *,
    actor_name: str | None = None,
    **details: Any,
) -> AuditEvent:
    """Write one audit event for `actor` (None: the system, or `actor_name`, e.g. "cli")
    and flush it; the caller commits it with the change it describes."""
    event = AuditEvent(
        staff_user_id=actor.id if actor is not None else None,
        actor=actor.email if actor is not None else (actor_name or "system"),
        action=action,
        target_type=target_type,
        target_id=None if target_id is None else str(target_id),
        details=details,
    )
    db.session.add(event)
    db.session.flush()
    return event
