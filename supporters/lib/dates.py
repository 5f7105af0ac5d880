"""Days as the organisation counts them, and the one rule for a period typed backwards."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from flask import current_app
from flask_babel import gettext as _


def org_timezone() -> ZoneInfo:
    """The organisation's time zone (BABEL_DEFAULT_TIMEZONE): its days are the days staff filter by."""
    return ZoneInfo(current_app.config.get("BABEL_DEFAULT_TIMEZONE") or "UTC")


def org_today() -> date:
    """Today's date where the organisation is."""
    return datetime.now(org_timezone()).date()


def in_order(start: date | None, end: date | None) -> tuple[date | None, date | None, bool]:
    """A period as `(start, end, swapped)`: a period typed the wrong way round is read the
    right way round, and `swapped` says so, on every list that filters by dates."""
    if start and end and start > end:
        return end, start, True
    return start, end, False


def swapped_note() -> str:
    """What a list says when it read a period the right way round."""
    return _("The dates were the wrong way round; they were swapped.")
