"""Saved searches: a name for the supporters list's current filters, seen by the whole
team beside the filters; deleted by whoever saved it or an admin. Audited."""

from __future__ import annotations

from urllib.parse import urlencode

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select

from supporters.extensions import db
from supporters.lib import audit
from supporters.lib.errors import Refused
from supporters.models import SavedSearch, StaffRole, StaffUser
from supporters.people.queries import SupporterFilters

#: the longest name, in characters
NAME_MAX = 100
#: the longest query string kept (the list's own filters stay far below it)
QUERY_MAX = 2000


def saved_searches(page: str = "supporters") -> list[SavedSearch]:
    """The searches saved for the list `page`, by name."""
    return list(
        db.session.scalars(
            select(SavedSearch).where(SavedSearch.page == page).order_by(func.lower(SavedSearch.name), SavedSearch.id)
        )
    )


def save_search(actor: StaffUser, filters: SupporterFilters, name: str) -> SavedSearch:
    """Keep the supporters list's `filters` (their query string) under `name`, for the whole
    team; audited. Refuses (on the field `name`) an empty or too long name, a name another
    saved search has in any case (409), and a search with no filters (not on a field: the
    list offers no form then)."""
    name = " ".join((name or "").split())
    if not name:
        raise Refused(_l("Give the search a name."), field="name")
    if len(name) > NAME_MAX:
        raise Refused(_l("A name has at most %(max)s characters."), field="name", max=NAME_MAX)
    query = urlencode(filters.as_args())
    if not query:
        raise Refused(_l("Choose some filters first: this search would show every supporter."))
    if len(query) > QUERY_MAX:
        raise Refused(_l("These filters are too long to save."), field="name")
    taken = db.session.scalar(
        select(SavedSearch.id).where(SavedSearch.page == "supporters", func.lower(SavedSearch.name) == name.lower())
    )
    if taken is not None:
        raise Refused(_l("Another saved search is called “%(name)s”."), field="name", status=409, name=name)
    saved = SavedSearch(page="supporters", name=name, query=query, staff_user_id=actor.id)
    db.session.add(saved)
    db.session.flush()
    audit.record(actor, "saved_search.create", "saved_search", saved.id, name=name, query=query)
    return saved


def may_delete(actor: StaffUser, saved: SavedSearch) -> bool:
    """Whoever saved the search may delete it, and so may an admin."""
    return actor.role is StaffRole.ADMIN or (saved.staff_user_id is not None and saved.staff_user_id == actor.id)


def delete_search(actor: StaffUser, saved: SavedSearch) -> None:
    """Delete a saved search (refused, 403, to anyone but its author or an admin); audited
    with its name and filters."""
    if not may_delete(actor, saved):
        raise Refused(_l("Only whoever saved this search, or an admin, may delete it."), status=403)
    audit.record(actor, "saved_search.delete", "saved_search", saved.id, name=saved.name, query=saved.query)
    db.session.delete(saved)
    db.session.flush()
