"""Language choice and locale-aware formatting for templates.

The locale comes from `?lang=` in the URL (remembered in the session), else the
browser's Accept-Language, else the default. Only configured locales are chosen.
Public pages (supporters/lib/caching.py) neither remember nor read the session's
choice: they are the same for everyone who asks for the same address in the same
language, so a CDN can keep them.
"""

from __future__ import annotations

from babel.numbers import format_compact_currency
from flask import Flask, current_app, has_request_context, request, session
from flask_babel import format_number, get_locale
from markupsafe import Markup

from supporters.lib import caching, money


def select_locale() -> str:
    """The locale for this request (Flask-Babel's locale selector); outside a request (a
    CLI command refusing a file), the default one."""
    if not has_request_context():
        return str(current_app.config["BABEL_DEFAULT_LOCALE"])
    supported: list[str] = current_app.config["SUPPORTERS_LOCALES"]
    asked = language_asked()
    # widget responses (the beacon's too) never set a cookie
    public = caching.is_public_request() or request.blueprint == "widget"
    if asked:
        if not public:
            session["lang"] = asked
        return asked
    if not public:
        remembered = session.get("lang")
        if remembered in supported:
            return str(remembered)
    caching.language_from_header()
    return request.accept_languages.best_match(supported) or current_app.config["BABEL_DEFAULT_LOCALE"]


def language_asked() -> str | None:
    """The language this address asks for with `?lang=` (one of SUPPORTERS_LOCALES), if any:
    a public page keeps it in its own links, having no session to remember it in."""
    asked = request.args.get("lang", "").strip().lower()
    return asked if asked in current_app.config["SUPPORTERS_LOCALES"] else None


def current_locale() -> str:
    """The language of this request as a locale name ("en", "pl")."""
    return str(get_locale() or "en")


def format_money(amount_minor: int, currency: str) -> Markup:
    """Template filter: an amount in minor units, formatted for the current locale, in a
    `<span class="money">` that never breaks across lines ("140,00 zł" stays whole even
    where a narrow cell lets long words break anywhere; app.css)."""
    return Markup('<span class="money">{}</span>').format(money.format_amount(amount_minor, currency, current_locale()))


def format_money_short(amount_minor: int, currency: str) -> str:
    """Template filter: a rounded amount in the locale's short form ("50 tys. zł",
    "PLN50K"), for a chart's axis; never for an amount someone reads as exact."""
    return format_compact_currency(
        money.to_decimal(amount_minor, currency), currency, locale=current_locale(), fraction_digits=2
    )


def init_app(app: Flask) -> None:
    """Register the template helpers that depend on the locale."""
    app.jinja_env.filters["money"] = format_money
    app.jinja_env.filters["money_short"] = format_money_short
    app.jinja_env.filters["number"] = format_number  # 10,000 / 10 000, as the reader writes it

    @app.context_processor
    def locale_context() -> dict[str, object]:
        # a public page has no session to remember `?lang=` in: its own links keep it
        lang_link = language_asked() if has_request_context() and caching.is_public_request() else None
        return {"current_locale": current_locale(), "locales": app.config["SUPPORTERS_LOCALES"], "lang_link": lang_link}
