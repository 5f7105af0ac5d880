"""Form helpers every domain shares: the field filters and validators, the country
list, choices as WTForms wants them, reading an id from text, and showing a refusal."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from typing import Any

from babel import Locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import ValidationError

from supporters.lib.errors import Refused
from supporters.lib.i18n import current_locale

#: two-letter codes CLDR names that are not countries (EU, UN, "Unknown Region"…)
#: or are only reserved in ISO 3166 (Ascension, Canary Islands…)
NOT_COUNTRIES = {"AC", "CP", "CQ", "DG", "EA", "EU", "EZ", "IC", "QO", "TA", "UN", "XA", "XB", "ZZ"}


#: an address name (slug) of an article or campaign: lowercase a-z, digits, single hyphens
SLUG_PATTERN = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")


def slug_shaped(_form: Any, field: Any) -> None:
    """Lowercase letters a-z, digits and single hyphens: safe in addresses, embeds and counters."""
    if field.data and not SLUG_PATTERN.match(field.data):
        raise ValidationError(
            _("Use lowercase letters a–z, digits and single hyphens, e.g. %(example)s.", example="winter-appeal")
        )


def strip(value: Any) -> Any:
    """Field filter: text without surrounding whitespace (anything else as it is)."""
    return value.strip() if isinstance(value, str) else value


def has_control_characters(text: str, allowed: str = "") -> bool:
    """True when `text` holds an invisible control character (or a lone surrogate) not in `allowed`."""
    return any(unicodedata.category(ch) in ("Cc", "Cs") and ch not in allowed for ch in text)


def no_control_characters(_form: Any, field: Any) -> None:
    """Refuse invisible control characters (NUL and friends) that no person types;
    a text area keeps its line breaks and tabs."""
    allowed = "\n\r\t" if isinstance(field, TextAreaField) else ""
    if isinstance(field.data, str) and has_control_characters(field.data, allowed):
        raise ValidationError(_l("This contains characters we cannot accept."))


def choices(pairs: Iterable[tuple[str, Any]]) -> list[SelectChoice]:
    """(value, label) pairs as WTForms' choices; labels may be lazy strings."""
    return [SelectChoice(value, label) for value, label in pairs]


def country_choices() -> list[tuple[str, str]]:
    """("", "Choose a country") and every country in the current language, sorted by name."""
    locale = Locale.parse(current_locale())
    names = {
        code: name
        for code, name in locale.territories.items()
        if len(code) == 2 and code.isalpha() and code not in NOT_COUNTRIES
    }
    return [("", str(_l("Choose a country"))), *sorted(names.items(), key=lambda item: item[1])]


def whole_number(raw: str | None, max_digits: int = 11) -> int | None:
    """The whole number written in `raw` (an id, a page), or None when it is not one
    of at most `max_digits` ASCII digits."""
    raw = (raw or "").strip()
    if raw.isascii() and raw.isdigit() and len(raw) <= max_digits:
        return int(raw)
    return None


def show_refusal(form: FlaskForm, refused: Refused) -> str | None:
    """Put a refusal's message next to the field it names; otherwise return it, for
    the top of the page."""
    field = form._fields.get(refused.field) if refused.field else None
    if field is None:
        return refused.message()
    field.errors = [*field.errors, refused.message()]
    return None
