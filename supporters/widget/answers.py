"""The widget config's answers, kept whole and given again before Flask runs.

Once its JSON and ETag are kept (`service.encoded_config`), most of what a widget
config request costs is Flask's own machinery: the request context, the hooks, the
session interface, a dozen headers set one by one. So each process also keeps the
answers Flask gave for that address, status, header list and body, and gives them
again, from a WSGI middleware in front of Flask, to requests that would get the same.

This module never makes an answer: every one it gives is one that Flask made, with
the view and every hook run (the security headers, Cache-Control, CORS, the ETag).
It keeps an answer under what the answer depends on, all of it bounded:

- the campaign and language (one of SUPPORTERS_LOCALES, `service.language`, the
  view's rule), and only while the service keeps the config the answer was made
  from: the same 30 s, forgotten by the same `service.clear_cache()`;
- whether that language came from the Accept-Language header (the answer then says
  `Vary: Accept-Language`);
- GET or HEAD; without `If-None-Match`, or with exactly the config's ETag (the 304);
- the URL scheme (production sends HSTS on https).

Any other request goes to Flask, and its answer is not kept: another method, path
or query string than `lang=<letters>`; a cookie (the session: a flashed message, a
remembered sign-in); a body (its size limit); another conditional header (another
ETag, `If-Match`, `If-Modified-Since`, `Range`…); a host the app does not serve
(refused by core/hosts.py, which runs first). Nothing taken from the request itself
(its host, its Origin, its other headers) is in a kept answer: the config is
readable from any origin (`Access-Control-Allow-Origin: *`), so the answer is the
same for all of them. Only `Date` is made again for each answer given.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from flask import Flask
from werkzeug.http import http_date

from supporters.core.hosts import REFUSED
from supporters.widget import service, views

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

#: the only query string given a kept answer: `?lang=` and up to eight letters
#: (widget.js sends the page's language, ours or not)
LANG_QUERY = re.compile(r"lang=([a-z]{0,8})")
#: request headers whose presence makes an answer differ from the kept ones, or may
COOKIE_OR_CONDITION = (
    "HTTP_COOKIE",
    "HTTP_IF_MATCH",
    "HTTP_IF_MODIFIED_SINCE",
    "HTTP_IF_UNMODIFIED_SINCE",
    "HTTP_IF_RANGE",
    "HTTP_RANGE",
    "HTTP_TRANSFER_ENCODING",
)
Headers = tuple[tuple[str, str], ...]
#: (campaign, language, language from the header?, method, scheme)
Key = tuple[str, str, bool, str, str]


@dataclass(frozen=True)
class Answer:
    """One answer as Flask gave it; its Date, if it has one, is made again each time, in its place."""

    status: str
    headers: Headers
    body: bytes
    #: where the Date header goes among `headers` (None: the answer has none)
    date_at: int | None

    def give(self, start_response: StartResponse) -> Iterable[bytes]:
        headers = list(self.headers)
        if self.date_at is not None:
            headers.insert(self.date_at, ("Date", http_date()))
        start_response(self.status, headers)
        return [self.body] if self.body else []


@dataclass(frozen=True)
class Kept:
    """The answers made from one kept config: the full one and the 304 to its ETag."""

    config: service.Config
    etag_header: str
    full: Answer | None = None
    not_modified: Answer | None = None


class KeptConfigAnswers:
    """WSGI middleware: the widget config's kept answers, and everything else to Flask."""

    def __init__(self, app: Flask, wsgi_app: WSGIApplication) -> None:
        self.app = app
        self.wsgi_app = wsgi_app
        self.prefix, self.suffix = views.CONFIG_PATH.split("<slug>")
        self.kept: dict[Key, Kept] = {}

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        key = self.key(environ)
        if key is None:
            return self.wsgi_app(environ, start_response)
        kept = self.kept.get(key)
        condition = environ.get("HTTP_IF_NONE_MATCH")
        if kept is not None and kept.config is service.kept_config(key[0], key[1]):
            if condition is None and kept.full is not None:
                return kept.full.give(start_response)
            if condition == kept.etag_header and kept.not_modified is not None:
                return kept.not_modified.give(start_response)
        return self.ask_flask(key, condition, environ, start_response)

    def key(self, environ: WSGIEnvironment) -> Key | None:
        """What a kept answer to this request depends on; None for a request Flask must answer."""
        method = environ["REQUEST_METHOD"]
        path: str = environ.get("PATH_INFO", "")
        if method not in ("GET", "HEAD") or not (path.startswith(self.prefix) and path.endswith(self.suffix)):
            return None
        slug = path[len(self.prefix) : len(path) - len(self.suffix)]
        scheme = environ["wsgi.url_scheme"]
        if not service.SLUG.match(slug) or scheme not in ("http", "https") or environ.get(REFUSED):
            return None
        if environ.get("CONTENT_LENGTH") not in (None, "", "0") or any(name in environ for name in COOKIE_OR_CONDITION):
            return None
        query = environ.get("QUERY_STRING", "")
        asked = None
        if query:
            letters = LANG_QUERY.fullmatch(query)
            if letters is None:
                return None
            asked = letters[1]
        locales = self.app.config["SUPPORTERS_LOCALES"]
        lang, from_header = service.language(
            asked if asked in locales else None, environ.get("HTTP_ACCEPT_LANGUAGE"), locales
        )
        return slug, lang, from_header, method, scheme

    def ask_flask(
        self, key: Key, condition: str | None, environ: WSGIEnvironment, start_response: StartResponse
    ) -> Iterable[bytes]:
        """Flask's answer, kept when it is the one every such request gets."""
        started: list[tuple[str, list[tuple[str, str]]]] = []

        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            started.append((status, headers))
            return start_response(status, headers, exc_info)

        answer = self.wsgi_app(environ, start)
        config = service.kept_config(key[0], key[1])
        if not started or config is None:
            return answer
        status, headers = started[-1]
        etag_header = f'"{config.etag}"'
        if not _keepable(status, headers, key, condition, etag_header):
            return answer
        try:
            body = b"".join(answer)
        finally:
            close = getattr(answer, "close", None)
            if close is not None:
                close()
        names = [name.lower() for name, _value in headers]
        date_at = names.index("date") if "date" in names else None
        made = Answer(status, tuple(header for header in headers if header[0].lower() != "date"), body, date_at)
        kept = self.kept.get(key)
        if kept is None or kept.config is not config:
            kept = Kept(config, etag_header)
        self.kept[key] = replace(kept, not_modified=made) if condition else replace(kept, full=made)
        return [body] if body else []


def _keepable(status: str, headers: list[tuple[str, str]], key: Key, condition: str | None, etag_header: str) -> bool:
    """Whether Flask's answer is the view's, made from the config kept now (its ETag), for
    the language the key names (its Vary), and holds nothing of one reader's (no cookie)."""
    expected = 304 if condition else 200
    if condition not in (None, etag_header) or int(status[:3]) != expected:
        return False
    values: dict[str, list[str]] = {}
    for name, value in headers:
        values.setdefault(name.lower(), []).append(value)
    vary = {part.strip().lower() for value in values.get("vary", []) for part in value.split(",")}
    return (
        values.get("etag") == [etag_header]
        and "set-cookie" not in values
        and "cookie" not in vary
        and ("accept-language" in vary) == key[2]
    )


def init_app(app: Flask) -> None:
    """Put the kept answers in front of Flask: the innermost middleware, so that the host
    check (and ProxyFix, behind a proxy) has run on what it sees."""
    answers = KeptConfigAnswers(app, app.wsgi_app)
    app.extensions["widget_answers"] = answers
    app.wsgi_app = answers  # type: ignore[method-assign]
