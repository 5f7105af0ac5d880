"""The app's request class: query strings without NUL characters; and ids in addresses.

PostgreSQL refuses NUL (U+0000) in a text parameter, so a NUL typed into a
filter's address (``?q=%00``, ``?person=%00``…) was a server error as soon as
the value reached a query, and every view had to remember to strip it. No
person types a NUL and no address means one, so `request.args` (and
`request.values`, built from it) never holds one: it is dropped from every key
and value before any view reads them.

Only NUL goes. It is the one character the database cannot store, and the one
that means "end of text" to the C code under many tools (a value could read
differently to two of them). The other control characters are stored fine and
are left as sent: tab and line breaks keep their meaning; the whitespace among
them (vertical tab, form feed, U+001C-U+001F) still separates words where a view
splits on whitespace, where dropping it would join two words into one; and the
views' own checks still see, and report, anything odd ("the status “\x01” is
not valid") rather than act on a value silently changed.

Form fields are not touched: forms check every field and say which one holds
characters they cannot accept (`no_control_characters`), which beats saving
something other than what was typed.
"""

from __future__ import annotations

import codecs
from typing import Any
from urllib.parse import parse_qsl

from flask import Request as FlaskRequest
from flask import current_app, has_request_context, url_for
from werkzeug.datastructures import MultiDict
from werkzeug.routing import IntegerConverter, Map, ValidationError
from werkzeug.utils import cached_property

from supporters.lib.forms import MAX_ID

NUL = "\x00"
PERCENT_ENCODE = "supporters.percent_encode"


def _percent_encode(error: UnicodeError) -> tuple[str, int]:
    """Decoding error handler: bytes that are no UTF-8 become %XX escapes."""
    assert isinstance(error, UnicodeDecodeError)
    return "".join(f"%{byte:02X}" for byte in error.object[error.start : error.end]), error.end


codecs.register_error(PERCENT_ENCODE, _percent_encode)


class Request(FlaskRequest):
    """Flask's request, whose query arguments hold no NUL character."""

    @cached_property
    def args(self) -> MultiDict[str, str]:
        raw = self.query_string
        try:
            # Flask's own parsing; this property then caches what it returns in its place.
            args = super().args
        except UnicodeDecodeError:
            # Bytes that are no UTF-8 sent unescaped (browsers escape them): Werkzeug
            # raises, and even the error page, which reads ?lang=, fails. Keep them
            # percent-encoded, as Werkzeug keeps an escaped "%FF".
            args = self.parameter_storage_class(
                parse_qsl(raw.decode("utf-8", PERCENT_ENCODE), keep_blank_values=True, errors=PERCENT_ENCODE)
            )
        # Nearly every address holds no NUL: one substring search, and nothing is rebuilt.
        if b"%00" not in raw and b"\x00" not in raw:
            return args
        return _without_nul(args)


def _without_nul(args: MultiDict[str, str]) -> MultiDict[str, str]:
    """`args` with NUL removed from every key and value: same class, same order, every value kept."""
    if not any(NUL in key or any(NUL in value for value in values) for key, values in args.lists()):
        return args
    return type(args)((key.replace(NUL, ""), value.replace(NUL, "")) for key, value in args.items(multi=True))


class IdConverter(IntegerConverter):
    """`<int:…>` in a route: an id, in ASCII digits, no larger than any row's (MAX_ID).

    Werkzeug's own converter takes any length and, through `\\d`, digits of every
    script; an id past what the column holds reached the query and was a database
    error ("integer out of range" on PostgreSQL, an OverflowError on SQLite), where
    the answer is that there is no such page: 404.
    """

    regex = r"[0-9]+"

    def __init__(
        self, map: Map, fixed_digits: int = 0, min: int | None = None, max: int | None = MAX_ID, signed: bool = False
    ) -> None:
        super().__init__(map, fixed_digits=fixed_digits, min=min, max=max, signed=signed)

    def to_python(self, value: str) -> Any:
        if len(value) > len(str(self.max if self.max is not None else MAX_ID)):
            raise ValidationError()
        return super().to_python(value)


def public_url(endpoint: str, **values: Any) -> str:
    """The absolute address of `endpoint` as readers reach it: SUPPORTERS_PUBLIC_URL
    and the route's path, never the request's Host or X-Forwarded-Host header (one
    forged header must not reach a link that is cached or sent to someone else)."""
    base = str(current_app.config["SUPPORTERS_PUBLIC_URL"]).rstrip("/")
    if has_request_context():
        return base + url_for(endpoint, **values)
    # The worker and the CLI (a payment found by `flask stripe reconcile` queues its
    # e-mails there) have no request: build the path as a request to the public URL would.
    with current_app.test_request_context(base_url=base):
        return base + url_for(endpoint, **values)
