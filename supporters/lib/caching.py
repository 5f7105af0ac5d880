"""Public responses: pages a CDN may keep, and the in-process caches behind them.

A view marked `@public(max_age=…)` is the same for every reader who asks for the
same address in the same language. Such a request never reads or writes the
session, so its answer carries no `Vary: Cookie` and no `Set-Cookie` (a signed-in
staff member's permanent session is not refreshed by it either), and it says
`Cache-Control: public` with the view's lifetimes. Its language comes from `?lang=`
or the browser's Accept-Language (then the answer says `Vary: Accept-Language`),
never from the language remembered in the session (supporters/lib/i18n.py).

One exception: a message flashed for the reader's next page (`flash()`) is shown,
which takes it out of the session; that answer is then `private, no-store` (with
the new cookie and `Vary: Cookie`) and bypasses the in-process caches
(`has_flashes()`). Any other change to the session on a public request makes its
answer private in the same way.

`TimedCache` is the per-process cache of such answers (the widget's data, the
article pages): a key is built only from the address's own values, bounded by the
caller (a slug that exists, a language among SUPPORTERS_LOCALES), never from a
header, a cookie or a query string.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable, Iterator
from typing import Any, Generic, TypeVar

from flask import Flask, Request, Response, current_app, g, request, session
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface, SessionMixin

F = TypeVar("F", bound=Callable[..., Any])
V = TypeVar("V")

#: what a shared cache may do with a public answer besides keeping it `max_age` seconds:
#: serve it this long after it went stale while it fetches a new one
STALE_WHILE_REVALIDATE = 30


def cache_control(max_age: int, s_maxage: int | None = None, immutable: bool = False) -> str:
    """The Cache-Control of a public answer: browsers keep it `max_age` seconds, shared caches
    `s_maxage` (default the same) and may serve it STALE_WHILE_REVALIDATE seconds longer
    while they fetch it again; an `immutable` one never changes at its address."""
    parts = ["public", f"max-age={max_age}"]
    if immutable:
        return ", ".join([*parts, "immutable"])
    if s_maxage is not None:
        parts.append(f"s-maxage={s_maxage}")
    return ", ".join([*parts, f"stale-while-revalidate={STALE_WHILE_REVALIDATE}"])


def public(max_age: int, s_maxage: int | None = None) -> Callable[[F], F]:
    """Mark a view whose answer is the same for every reader (see the module's docstring);
    its 200s and 304s say `cache_control(max_age, s_maxage)` unless the view set its own."""
    header = cache_control(max_age, s_maxage)

    def mark(view: F) -> F:
        view.public_cache = header  # type: ignore[attr-defined]
        return view

    return mark


def is_public_request() -> bool:
    """Whether this request is for a view marked `@public`."""
    view = current_app.view_functions.get(request.endpoint or "")
    return getattr(view, "public_cache", None) is not None


def has_flashes() -> bool:
    """Whether a message waits to be shown on this page (Flask keeps them in the session
    under `_flashes`; showing one changes the session, see `PublicAwareSessionInterface`)."""
    return "_flashes" in session


def language_from_header() -> None:
    """Note that this answer's language came from the Accept-Language header."""
    g.language_from_header = True


class PublicAwareSessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie session, except on a public request that left the session
    as it found it: no cookie (a permanent session would otherwise be refreshed with a
    Set-Cookie on every answer, cached ones included) and no `Vary: Cookie`.

    Flask marks the session "accessed" (hence `Vary: Cookie`) whenever anything so much
    as looks at it (Flask-Login's hook does on every request), so that mark says
    nothing here; what public views read of it is settled by construction instead (the
    language is never taken from it, a flashed message changes it).
    """

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        """An empty session for a request without the cookie (most public ones), without
        building the signing keys first."""
        if app.secret_key and not request.cookies.get(self.get_cookie_name(app)):
            return self.session_class()
        return super().open_session(app, request)

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        if is_public_request() and not session.modified:
            return
        super().save_session(app, session, response)


def _public_headers(response: Response) -> Response:
    view = current_app.view_functions.get(request.endpoint or "")
    header = getattr(view, "public_cache", None)
    if header is None:
        return response
    if session.modified:  # a flashed message shown: this reader's page, and their cookie
        response.headers["Cache-Control"] = "private, no-store"
        return response
    if g.get("language_from_header"):
        response.vary.add("Accept-Language")
    if response.status_code in (200, 304) and "Cache-Control" not in response.headers:
        response.headers["Cache-Control"] = header
    return response


def init_app(app: Flask) -> None:
    """Public answers say so (registered early, so it runs after the other hooks that
    might read the session); the session interface that leaves them without cookies."""
    app.session_interface = PublicAwareSessionInterface()
    app.after_request(_public_headers)


class TimedCache(Generic[V]):
    """Values kept for `ttl` seconds per key in this process, safe across threads.

    The caller bounds the keys (see the module's docstring); `clear()` forgets
    everything at once, for a change that may touch any entry. A value computed
    from what the database held before a change committed must not outlive the
    change's `clear()`: take `generation` before reading, and `put(…, since=…)`
    keeps the value only if no `clear()` came in between.
    """

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self.generation = 0
        self._entries: dict[Hashable, tuple[float, V]] = {}
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> V | None:
        """The value kept under `key`, or None when there is none or it expired."""
        hit = self._entries.get(key)
        if hit is None or hit[0] <= time.monotonic():
            return None
        return hit[1]

    def put(self, key: Hashable, value: V, since: int | None = None) -> V:
        """Keep `value` under `key` for the cache's lifetime, unless the cache was cleared
        after generation `since`; return it either way."""
        with self._lock:
            if since is None or since == self.generation:
                self._entries[key] = (time.monotonic() + self.ttl, value)
        return value

    def pop(self, key: Hashable) -> None:
        """Forget the value under `key`."""
        with self._lock:
            self._entries.pop(key, None)

    def clear(self) -> None:
        """Forget every value, and any value being computed now (see `put`)."""
        with self._lock:
            self.generation += 1
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[Hashable]:
        """The keys held (expired ones too, until they are put again or cleared)."""
        return iter(list(self._entries))
