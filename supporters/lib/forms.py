"""Form helpers every domain shares: the base form, the field filters and validators,
the country list, choices as WTForms wants them, reading an id from text, and showing
a refusal."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from typing import Any

from babel import Locale
from flask import request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.form import _Auto  # the default of formdata: "read the request"
from werkzeug.datastructures import CombinedMultiDict, MultiDict
from wtforms import FileField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import ValidationError

from supporters.lib.errors import Refused
from supporters.lib.i18n import current_locale

#: two-letter codes CLDR names that are not countries (EU, UN, "Unknown Region"…)
#: or are only reserved in ISO 3166 (Ascension, Canary Islands…)
NOT_COUNTRIES = {"AC", "CP", "CQ", "DG", "EA", "EU", "EZ", "IC", "QO", "TA", "UN", "XA", "XB", "ZZ"}


#: the largest id a row can have: ids are INTEGER columns, 32-bit on PostgreSQL (SQLite's
#: are 64-bit); a larger number in an address or a filter names no row, and would be a
#: database error if it reached a query
MAX_ID = 2**31 - 1

#: the methods whose body a form reads (Flask-WTF's own list)
SUBMIT_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


class Form(FlaskForm):
    """The base of every form of the app: Flask-WTF's, reading a submission more narrowly.

    Flask-WTF hands a form every file part of the request among its values, so a text
    field sent as a file part got a file object where it expects text (a server error
    in the first validator that measures it), and it reads a JSON body as the form
    when there is no form body. Here a field reads the form's text values; only a
    file field reads file parts, of its own name; a JSON body is no submission of a
    form (none of ours is sent as JSON). A text field sent as a file is then simply
    missing, and says so like any other missing field.
    """

    class Meta(FlaskForm.Meta):
        def wrap_formdata(self, form: Any, formdata: Any) -> Any:
            if formdata is not _Auto:
                return formdata
            if request.method not in SUBMIT_METHODS:
                return None
            file_fields = [name for name, field in form._fields.items() if isinstance(field, FileField)]
            files = MultiDict([(name, part) for name in file_fields for part in request.files.getlist(name)])
            if files:
                return CombinedMultiDict((files, request.form))
            return request.form or None


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


#: the characters of categories Cc (controls) and Cs (lone surrogates), as one pattern
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def has_control_characters(text: str, allowed: str = "") -> bool:
    """True when `text` holds an invisible control character (or a lone surrogate) not in `allowed`."""
    if not allowed:  # the pattern is the two categories: a file's every cell is checked fast
        return _CONTROL.search(text) is not None
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


def whole_number(raw: str | None, maximum: int = MAX_ID) -> int | None:
    """The whole number written in `raw` (an id, a page), or None when it is not one of
    ASCII digits only, from 0 up to `maximum` (by default the largest id a row can have).

    Only 0-9: `str.isdigit()` also accepts "²" and "፩", which `int()` refuses, and
    `int()` reads "٣" and "３", which no staff member means as an id.
    """
    raw = (raw or "").strip()
    if not raw or len(raw) > len(str(maximum)) or not raw.isascii() or not raw.isdigit():
        return None
    number = int(raw)
    return number if number <= maximum else None


def show_refusal(form: FlaskForm, refused: Refused) -> str | None:
    """Put a refusal's message next to the field it names; otherwise return it, for
    the top of the page."""
    field = form._fields.get(refused.field) if refused.field else None
    if field is None:
        return refused.message()
    field.errors = [*field.errors, refused.message()]
    return None
