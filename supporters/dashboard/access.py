"""Who may do what in the dashboard, checked in one place.

Every dashboard view declares the permission it needs with @requires; the
blueprint's before_request refuses a view that declares none. Objects are
fetched with `fetch()`, so an id in the address never bypasses the check.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from flask import abort, current_app, redirect, request, url_for
from flask_login import current_user

from supporters.extensions import db, login_manager
from supporters.models import StaffRole, StaffUser

#: view: read pages; write: change supporters, gifts, campaigns, articles;
#: export: download personal data; staff: manage staff accounts;
#: finance: see the payments' health and repair them from Stripe
PERMISSIONS = frozenset({"view", "write", "export", "staff", "finance"})
ROLE_PERMISSIONS: dict[StaffRole, frozenset[str]] = {
    StaffRole.ADMIN: frozenset({"view", "write", "export", "staff", "finance"}),
    StaffRole.FUNDRAISER: frozenset({"view", "write", "export", "finance"}),
    StaffRole.VIEWER: frozenset({"view"}),
}

F = TypeVar("F", bound=Callable[..., Any])
M = TypeVar("M")


def requires(permission: str) -> Callable[[F], F]:
    """Declare the permission a dashboard view needs."""
    assert permission in PERMISSIONS

    def mark(view: F) -> F:
        view.permission = permission  # type: ignore[attr-defined]
        return view

    return mark


def can(permission: str) -> bool:
    """True when the signed-in staff member has `permission` (for templates too)."""
    return current_user.is_authenticated and permission in ROLE_PERMISSIONS[current_user.role]


#: the member's own account page and its forms: open to someone who must first choose a
#: password (an invitation's temporary one) or set up two-factor sign-in
FIRST_THINGS = "dashboard.staff.me."
FIRST_PASSWORD = {"dashboard.staff.me.index", "dashboard.staff.me.change_password"}


def check_access() -> Any:
    """The blueprint's guard: signed in, active, and allowed this view; and, before any
    other page, a temporary password changed and two-factor sign-in set up where the
    role requires it (SUPPORTERS_STAFF_2FA_REQUIRED_FOR)."""
    if not current_user.is_authenticated:
        return login_manager.unauthorized()
    view = current_app.view_functions.get(request.endpoint or "")
    permission = getattr(view, "permission", None)
    if permission is None or not can(permission):
        abort(403)
    endpoint = request.endpoint or ""
    if current_user.must_change_password and endpoint not in FIRST_PASSWORD:
        return redirect(url_for("dashboard.staff.me.index"), 303)
    required = current_app.config.get("SUPPORTERS_STAFF_2FA_REQUIRED_FOR") or []
    if current_user.role.value in required and not current_user.two_factor_on and not endpoint.startswith(FIRST_THINGS):
        return redirect(url_for("dashboard.staff.me.index") + "#two-factor", 303)
    return None


def acting_staff() -> StaffUser:
    """The signed-in staff member, for the operations that audit what they do."""
    user: StaffUser = current_user._get_current_object()
    return user


def fetch(model: type[M], object_id: int) -> M:
    """The object with this id, or 404; only ever called behind check_access."""
    # Loaded afresh: an instance already in the session may carry loader options
    # (raiseload) from a list query, which this page must not inherit.
    found = db.session.get(model, object_id, populate_existing=True)
    if found is None:
        abort(404)
    return found
