"""The language an e-mail is written in, and the pages every e-mail links to in it."""

from __future__ import annotations

from typing import Any

from babel import Locale, UnknownLocaleError
from flask import current_app, render_template
from flask_babel import force_locale

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


def donor_page_link(locale: str) -> str:
    """The donor's own page (/my, where they sign in) in `locale`: in every e-mail's footer,
    unless the e-mail carries a signed link straight to the donor's gift or plan
    (`donors.links.manage_url`)."""
    return public_url("donors.ask_page", lang=locale)


def render_email(template: str, locale: str, subject: Any, supporter_name: str, **context: Any) -> tuple[str, str, str]:
    """Subject, plain text and HTML of `email/<template>.txt|.html` in `locale`, with what
    every e-mail shows (the organisation's name, the greeting's name, the privacy link, the
    donor's page: `donor_link` in `context` replaces the plain link to it).
    `subject` is a lazy string whose "%(org)s" is the organisation's name; values in
    `context` that depend on the language are made by the caller for `locale`."""
    org_name = current_app.config.get("SUPPORTERS_ORG_NAME", "")
    with force_locale(locale):
        full = {
            "lang": locale,
            "org_name": org_name,
            "supporter_name": supporter_name.strip(),
            "privacy_link": privacy_link(locale),
            "donor_link": donor_page_link(locale),
            **context,
        }
        return (
            str(subject) % {"org": org_name},
            render_template(f"email/{template}.txt", **full),
            render_template(f"email/{template}.html", **full),
        )
