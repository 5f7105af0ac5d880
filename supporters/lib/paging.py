"""Page numbers from the address, read the same way on every list."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from flask_babel import gettext as _

from supporters.extensions import db
from supporters.lib.forms import whole_number

#: no list has more pages than this (50 million rows at 50 a page); a longer number is a typing slip
MAX_PAGE = 999_999


def page_number(args: Mapping[str, str], notes: list[str] | None = None) -> int:
    """The `page` argument as a page number (1 when missing or not a page); when
    `notes` is given, an ignored value is noted there for the page to show."""
    raw = (args.get("page") or "").strip()
    if not raw:
        return 1
    page = whole_number(raw, maximum=MAX_PAGE)
    if page is not None and 1 <= page <= MAX_PAGE:
        return page
    if notes is not None:
        notes.append(_("Ignored the page “%(value)s”: showing the first page.", value=raw[:40]))
    return 1


def page_count(total: int, per_page: int) -> int:
    """How many pages `total` rows fill, at least one."""
    return max(1, -(-total // per_page))


def count_up_to(statement: sa.Select[Any], cap: int) -> int | None:
    """How many rows `statement` selects when they are at most `cap`, else None. The
    database stops after cap + 1 of them: past a few thousand, "more than" says as much
    as the exact figure, which would mean reading every matching row on every page."""
    counted = db.session.scalar(
        sa.select(sa.func.count()).select_from(statement.order_by(None).limit(cap + 1).subquery())
    )
    return None if (counted or 0) > cap else int(counted or 0)
