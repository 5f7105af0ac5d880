"""The language an e-mail is written in, and the pages every e-mail links to in it."""

from __future__ import annotations

from babel import Locale, UnknownLocaleError
from flask import current_app

from supporters.lib.web import public_url


def mail_locale(language: str | None) -> str:
    """The configured locale to write to someone who reads `language` ("pl", "pl-PL"…).

    Falls back to the default locale for languages the app has no translation for,
    so an e-mail never mixes two languages.
    """
    supported: list[str] = current_app.config.get("SUPPORTERS_LOCALES") or ["en"]
    default = current_app.config.get("BABEL_DEFAULT_LOCALE") or supported[0]
    wanted = (language or "").strip().replace("-", "_")
    try:
        locale = Locale.parse(wanted) if wanted else None
    except (ValueError, UnknownLocaleError):
        locale = None
    if locale is not None:
        for candidate in (str(locale), locale.language):
            if candidate in supported:
                return candidate
    return default


def privacy_link(locale: str) -> str:
    """The privacy page in `locale`, on SUPPORTERS_PUBLIC_URL (in a request or not): every
    e-mail's footer links to it."""
    return public_url("core.privacy", lang=locale)
