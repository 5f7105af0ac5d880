"""Small builders of valid rows; tests change only what they are about."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any

from supporters.extensions import db
from supporters.models import Gift, GiftStatus, RecurringPlan, Supporter

_numbers = itertools.count(1)


def supporter(**fields: Any) -> Supporter:
    number = next(_numbers)
    values: dict[str, Any] = {"email": f"person{number}@example.org", "name": f"Person {number}"}
    values.update(fields)
    row = Supporter(**values)
    db.session.add(row)
    db.session.flush()
    return row


def gift(owner: Supporter | None = None, **fields: Any) -> Gift:
    owner = owner or supporter()
    values: dict[str, Any] = {
        "supporter_id": owner.id,
        "amount_minor": 5000,
        "currency": "PLN",
        "amount_base_minor": 5000,
    }
    values.update(fields)
    row = Gift(**values)
    db.session.add(row)
    db.session.flush()
    return row


def paid_gift(owner: Supporter | None = None, paid_at: datetime | None = None, **fields: Any) -> Gift:
    row = gift(owner, **fields)
    row.status = GiftStatus.SUCCEEDED
    row.paid_at = paid_at or datetime.now(UTC)
    db.session.flush()
    return row


def plan(owner: Supporter | None = None, **fields: Any) -> RecurringPlan:
    owner = owner or supporter()
    values: dict[str, Any] = {"supporter_id": owner.id, "amount_minor": 3000, "currency": "PLN", "interval": "month"}
    values.update(fields)
    row = RecurringPlan(**values)
    db.session.add(row)
    db.session.flush()
    return row


STAFF_PASSWORD = "correct horse battery staple"


def staff(role: str = "admin", email: str | None = None, active: bool = True) -> Any:
    """A staff account whose password is STAFF_PASSWORD."""
    from supporters.models import StaffRole, StaffUser

    user = StaffUser(email=email or f"{role}{next(_numbers)}@example.org", role=StaffRole(role), active=active)
    user.set_password(STAFF_PASSWORD)
    db.session.add(user)
    db.session.flush()
    return user


def sign_in(client: Any, user: Any) -> Any:
    """Sign `user` in through the real login form; returns the response."""
    return client.post("/login", data={"email": user.email, "password": STAFF_PASSWORD})
