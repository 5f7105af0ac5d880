"""The audit log: who did what to which record, and when."""

from __future__ import annotations

from typing import Any

from flask_login import current_user

from .extensions import db
from .models import AuditEvent


def record(action: str, target_type: str | None = None, target_id: object = None, **details: Any) -> AuditEvent:
    """Write one audit event for the signed-in staff member (flushes; the caller commits
    with the change it describes, so the log and the change stand or fall together)."""
    user = current_user if getattr(current_user, "is_authenticated", False) else None
    event = AuditEvent(
        staff_user_id=user.id if user else None,
        actor=user.email if user else "system",
        action=action,
        target_type=target_type,
        target_id=None if target_id is None else str(target_id),
        details=details,
    )
    db.session.add(event)
    db.session.flush()
    return event
