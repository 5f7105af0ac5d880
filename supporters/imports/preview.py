"""The preview of an import: how many rows of each file are new, match a supporter, were
imported before or have an error, and one page of the rows themselves (errors first,
or one outcome). Nothing is written; the rows are read afresh for every page, so the
page costs the memory of one chunk of rows, whatever the file's size."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field

from supporters.imports.rows import ERROR, KNOWN, MATCH, NEW, Row, Source, checked_rows

#: what the preview's list may show
SHOWS = ("errors", "all", NEW, MATCH, KNOWN)


@dataclass
class Preview:
    """The counts of every row, and the rows of the page asked for."""

    supporters: Counter[str] = field(default_factory=Counter)
    gifts: Counter[str] = field(default_factory=Counter)
    #: rows with a note that is no error (a consent not imported, a row changed since)
    notes: int = 0
    consents: int = 0
    rows: list[Row] = field(default_factory=list)
    #: how many rows the list shows over all its pages, and which rows it shows
    shown: int = 0
    show: str = "all"

    @property
    def errors(self) -> int:
        return self.supporters[ERROR] + self.gifts[ERROR]

    def count(self, kind: str, outcome: str) -> int:
        return (self.supporters if kind == "supporter" else self.gifts)[outcome]


def preview_key(sha256: str, gifts_sha256: str | None, source: Source) -> str:
    """What a preview showed: the files' hashes and the mapping it read them with. An
    import commits only the preview staff saw: another file or mapping is another key."""
    mapping = source.mapping
    text = json.dumps(
        [sha256, gifts_sha256, mapping.supporter_columns, mapping.gift_columns, mapping.gifts_by], sort_keys=True
    )
    return hashlib.sha256(text.encode()).hexdigest()


def _shown(row: Row, show: str) -> bool:
    if show == "all":
        return True
    if show == "errors":
        return row.outcome == ERROR
    return row.outcome == show


def preview(source: Source, *, show: str = "all", offset: int = 0, limit: int = 100) -> Preview:
    """Check every row (writing nothing); count them, and keep `limit` rows of what
    `show` asks for, from `offset` on. `show="auto"`: the errors if there are any, else
    every row (`Preview.show` says which), in the same one pass over the files."""
    result = Preview()
    shows = ("errors", "all") if show == "auto" else (show,)
    pages: dict[str, list[Row]] = {name: [] for name in shows}
    shown = dict.fromkeys(shows, 0)
    chunks = checked_rows(source)
    for chunk in chunks:
        for row in chunk:
            (result.supporters if row.kind == "supporter" else result.gifts)[row.outcome] += 1
            if row.outcome != ERROR and row.messages:
                result.notes += 1
            if row.outcome in (NEW, MATCH) and "consent" in row.values:
                result.consents += 1
            for name in shows:
                if _shown(row, name):
                    if offset <= shown[name] < offset + limit:
                        pages[name].append(row)
                    shown[name] += 1
    result.show = shows[0] if len(shows) == 1 or result.errors else shows[1]
    result.rows, result.shown = pages[result.show], shown[result.show]
    return result
