"""What is kept from other rows, rebuilt from them: giving totals (from gifts), search
keys (from supporters' names and e-mails) and newsletter flags (from the consent log).

Flush listeners keep all three in step (models/giving.py, models/supporter.py);
rows written behind the ORM (SQL by hand, a bulk load) bypass them, and this puts
things right. `flask derived rebuild` and the benchmark loader call it.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from supporters.models import giving, supporter


@dataclass(frozen=True)
class Rebuilt:
    """What had drifted from its source."""

    totals: bool
    search_keys: bool
    newsletter_flags: int


def rebuild(connection: sa.Connection) -> Rebuilt:
    """Recompute all three in the caller's transaction (commit it: all or none).

    On PostgreSQL the sources are locked against writes until then (seconds per
    million gifts): a gift paid between reading the gifts and replacing the totals
    would otherwise be left out.
    """
    if connection.dialect.name == "postgresql":
        connection.execute(sa.text("LOCK TABLE gift, supporter, consent IN SHARE MODE"))
    return Rebuilt(
        totals=giving.rebuild(connection),
        search_keys=supporter.rebuild_search_keys(connection),
        newsletter_flags=supporter.rebuild_newsletter_flags(connection),
    )
