"""Article pages kept rendered in this process for a short while.

Every reader of an article gets the same page in their language, so it is rendered
at most once per PAGE_TTL_SECONDS per process and language, and whenever an article,
its tags or a campaign changes, the pages are forgotten once that change is
committed (any writer: the dashboard, the importer, a campaign's edit), so the
process that made the change shows it at once, the others within the TTL.

The key is (slug, language, whether the address asked for the language with
`?lang=`: the page's own links then keep it); only published articles are kept, so
nothing a reader types (a made-up slug, a query string, a header) adds an entry.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import current_app, has_app_context
from sqlalchemy import event
from sqlalchemy.orm import Session

from supporters.lib.caching import TimedCache
from supporters.models import Article, ArticleTag, Campaign

#: how long a rendered article page is reused before it is rendered again
PAGE_TTL_SECONDS = 30
_EXTENSION = "article_pages"
_STALE = "article_pages_stale"
#: what an article's page shows: when one of these changes, the pages are forgotten
_SHOWN = (Article, ArticleTag, Campaign)


@dataclass(frozen=True)
class Page:
    """A rendered page and its entity tag."""

    body: bytes
    etag: str


def page_cache() -> TimedCache[Page]:
    """This app's rendered article pages (one cache per app: tests build several)."""
    cache: TimedCache[Page] = current_app.extensions.setdefault(_EXTENSION, TimedCache(PAGE_TTL_SECONDS))
    return cache


def article_page(slug: str, lang: str, lang_in_url: bool, render: Callable[[str], str | None]) -> Page | None:
    """The page of the published article `slug` in `lang` (the request's locale), from
    the cache or `render(slug)`; None when there is no such article (nothing kept)."""
    cache = page_cache()
    key = (slug, lang, lang_in_url)
    page = cache.get(key)
    if page is not None:
        return page
    generation = cache.generation
    html = render(slug)
    if html is None:
        return None
    body = html.encode()
    return cache.put(key, Page(body, hashlib.sha256(body).hexdigest()[:32]), since=generation)


@event.listens_for(Session, "after_flush")
def _note_changes(session: Session, _context: Any) -> None:
    if any(isinstance(row, _SHOWN) for rows in (session.new, session.dirty, session.deleted) for row in rows):
        session.info[_STALE] = True


@event.listens_for(Session, "after_commit")
def _forget_pages(session: Session) -> None:
    if session.info.pop(_STALE, False) and has_app_context():
        cache = current_app.extensions.get(_EXTENSION)
        if cache is not None:
            cache.clear()
