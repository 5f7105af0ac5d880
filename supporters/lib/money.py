"""Money as integer minor units plus an ISO 4217 currency code.

Amounts never pass through ``float``: only ``str``, ``int`` and ``Decimal``.
Minor units are the units the Stripe API expects (cents, grosze, yen, fils).
Pure Python plus Babel; error reasons are plain English for callers to translate.
"""

from __future__ import annotations

import copy
import functools
import re
import unicodedata
from collections.abc import Callable
from decimal import Decimal

from babel import Locale
from babel.numbers import get_group_symbol, is_currency

# Stripe's zero- and three-decimal currencies. Everything else is two-decimal
# in Stripe's API, even where Babel displays no decimals (ISK, HUF, TWD).
#: the currencies without decimals (`minor_unit_exponent` 0)
ZERO_DECIMAL = frozenset("BIF CLP DJF GNF JPY KMF KRW MGA PYG RWF UGX VND VUV XAF XOF XPF".split())
#: the currencies with three decimals (`minor_unit_exponent` 3)
THREE_DECIMAL = frozenset("BHD JOD KWD OMR TND".split())

#: Largest amount parse_amount accepts, in minor units: a sanity bound, not a donation limit.
MAX_AMOUNT_MINOR = 10**15

_DIGITS = "0123456789"
_MINUS_SIGNS = "-\u2212"
# Characters that can only ever group thousands, mapped to one spelling each.
_GROUPING_ONLY = {" ": " ", "\u00a0": " ", "\u202f": " ", "\u2009": " ", "'": "'", "\u2019": "'"}
_ALLOWED = frozenset(_DIGITS + ".,' ")


class MoneyError(ValueError):
    """An amount or currency was refused; ``str(error)`` is the English reason.

    The reason is a sentence fit to show a donor next to the form field.
    ``template`` and ``params`` hold it unformatted (``%(name)s`` style), so a
    caller can translate with ``gettext(error.template, **error.params)``;
    ``pybabel extract -k MoneyError`` picks the templates up.
    """

    def __init__(self, template: str, **params: object) -> None:
        self.template = template
        self.params = params
        super().__init__(template % params if params else template)


def minor_unit_exponent(currency: str) -> int:
    """Return how many decimal places ``currency`` has in minor units (0, 2 or 3).

    Follows Stripe's lists of zero- and three-decimal currencies, and is 2 for
    every other currency. ``currency`` must be three uppercase ASCII letters
    and known to Babel, otherwise :class:`MoneyError` is raised.
    """
    if not isinstance(currency, str):
        raise MoneyError("%(currency)s is not a known currency code.", currency=str(currency))
    return _exponent(currency)


@functools.lru_cache(maxsize=256)
def _exponent(currency: str) -> int:
    # Cached: exports ask this for every amount, and Babel's check reads its whole
    # currency list each time. Invalid codes raise, and raising is never cached.
    if not (re.fullmatch(r"[A-Z]{3}", currency) and is_currency(currency)):
        raise MoneyError("%(currency)s is not a known currency code.", currency=currency)
    if currency in ZERO_DECIMAL:
        return 0
    if currency in THREE_DECIMAL:
        return 3
    return 2


def _decimals_error(currency: str, exponent: int) -> MoneyError:
    if exponent == 0:
        return MoneyError("%(currency)s amounts have no decimal places.", currency=currency)
    return MoneyError(
        "%(currency)s amounts have at most %(places)d decimal places.", currency=currency, places=exponent
    )


def _ungroup(int_part: str) -> str | None:
    """Digits of ``int_part`` if it is consistently grouped (or not grouped), else None.

    One separator character throughout; groups of three ("1,234,567") or
    Indian lakh/crore groups ("12,34,567"). A leading "0" group is refused so
    that "0,500" is never read as five hundred.
    """
    separators = set(int_part) - set(_DIGITS)
    if not separators:
        return int_part
    if len(separators) > 1:
        return None
    head, *middle, last = groups = int_part.split(separators.pop())
    western = 1 <= len(head) <= 3 and all(len(g) == 3 for g in groups[1:])
    indian = 1 <= len(head) <= 2 and all(len(g) == 2 for g in middle) and len(last) == 3
    return "".join(groups) if (western or indian) and head[0] != "0" else None


def parse_amount(text: str, currency: str) -> int:
    """Turn what a donor typed into a positive number of minor units, or raise MoneyError.

    Accepted: digits with an optional decimal part ("25", "25.50", "25,50",
    ".5"), grouped by spaces (incl. U+00A0, U+202F, U+2009), apostrophes
    (' and U+2019), "," or "." in groups of three or Indian lakh groups
    ("1 000,00", "1,000.00", "1.000,00", "1'000.00", "1,00,000.00").

    Which mark is the decimal separator:
    * "." and "," both present: the last one; the other groups thousands.
    * one of them, repeated ("1.000.000"): it groups thousands.
    * one of them, once: decimal, unless the number would be validly grouped
      by it ("1,000", "1.000", "12,345") -- then it groups thousands, because
      "1.000" is one thousand to a Polish donor and "1,000" to an English
      one. For three-decimal currencies (KWD, BHD...) "1.000" is genuinely
      ambiguous and is read as a decimal: 1.000 KWD.
    * spaces/apostrophes never mark decimals, and when present the "." or ","
      is the decimal mark ("1 000,000" is 1000.000, refused for PLN).

    Refused (MoneyError with a reason): empty input, signs, letters and
    currency symbols, exponents, NaN/infinity, inconsistent grouping
    ("1,00,0.5"), more decimals than the currency has (even zeros: "500.00"
    JPY), zero, and anything above MAX_AMOUNT_MINOR.
    """
    exponent = minor_unit_exponent(currency)
    if not isinstance(text, str):
        raise TypeError("parse_amount expects the text the donor typed")
    text = text.strip()
    if not text:
        raise MoneyError("Enter an amount.")
    if text[0] in _MINUS_SIGNS or text[-1] in _MINUS_SIGNS:
        raise MoneyError("The amount cannot be negative.")
    text = "".join(_GROUPING_ONLY.get(c, c) for c in text)
    malformed = (
        MoneyError("Enter a whole amount like 500.")
        if exponent == 0
        else MoneyError("Enter an amount like 25 or 25.50.")
    )
    if not set(text) <= _ALLOWED:
        if any(c.isalpha() or unicodedata.category(c) == "Sc" for c in text):
            raise MoneyError("Enter just the number, without letters or currency symbols.")
        raise malformed

    marks = [c for c in text if c in ".,"]
    if len(set(marks)) == 2:
        decimal_mark = marks[-1]
    elif len(marks) == 1 and (exponent == 3 or _ungroup(text) is None):
        decimal_mark = marks[0]
    else:
        decimal_mark = None
    if decimal_mark:
        int_part, _, fraction = text.partition(decimal_mark)
    else:
        int_part, fraction = text, ""
    digits = _ungroup(int_part)
    if digits is None or not (digits or fraction) or (fraction and not fraction.isdigit()):
        raise malformed
    if len(fraction) > exponent:
        raise _decimals_error(currency, exponent)

    digits = digits.lstrip("0")
    # Bail out before int() so huge inputs cost nothing (and never hit
    # Python's int-from-string digit limit).
    if len(digits) + exponent > len(str(MAX_AMOUNT_MINOR)):
        raise MoneyError("That amount is too large.")
    minor = int(digits or "0") * int(10**exponent) + int(fraction.ljust(exponent, "0") or "0")
    if minor == 0:
        raise MoneyError("The amount must be more than zero.")
    if minor > MAX_AMOUNT_MINOR:
        raise MoneyError("That amount is too large.")
    return minor


def _check_minor(amount_minor: int) -> None:
    if not isinstance(amount_minor, int) or isinstance(amount_minor, bool):
        raise TypeError(f"amount_minor must be an int, not {type(amount_minor).__name__}")


def to_decimal(amount_minor: int, currency: str) -> Decimal:
    """Return the exact Decimal for ``amount_minor``, with the currency's decimals.

    ``to_decimal(2550, "PLN") == Decimal("25.50")`` (exponent kept, so it
    prints as "25.50"); ``to_decimal(500, "JPY") == Decimal("500")``.
    """
    _check_minor(amount_minor)
    return Decimal(f"{amount_minor}E-{minor_unit_exponent(currency)}")


def plain(amount_minor: int, currency: str) -> str:
    """``amount_minor`` as plain decimal text in major units, for exports and machines:
    the same text as ``str(to_decimal(amount_minor, currency))`` ("25.50", "0.05",
    "500" JPY), made with integer arithmetic because exports write millions of them."""
    _check_minor(amount_minor)
    return plain_formatter(currency)(amount_minor)


@functools.lru_cache(maxsize=64)
def plain_formatter(currency: str) -> Callable[[int], str]:
    """`plain` for one currency, checked once: for a loop over many amounts of it."""
    exponent = minor_unit_exponent(currency)
    if exponent == 0:
        return str
    scale: int = 10**exponent
    pattern = f"%d.%0{exponent}d"

    def text(amount_minor: int) -> str:
        # one C-level format of (whole, part) for the usual case: exports call this millions of times
        if amount_minor >= 0:
            return pattern % divmod(amount_minor, scale)
        return "-" + pattern % divmod(-amount_minor, scale)

    return text


def to_minor(value: Decimal | int, currency: str) -> int:
    """Return ``value`` in minor units, exactly; never rounds.

    Raises MoneyError if ``value`` is not finite or is not a whole number of
    minor units (``Decimal("25.505")`` PLN). Trailing zeros are fine
    (``Decimal("500.00")`` JPY is 500). Floats are refused with TypeError.
    """
    if isinstance(value, bool) or not isinstance(value, (Decimal, int)):
        raise TypeError(f"value must be a Decimal or int, not {type(value).__name__}")
    exponent = minor_unit_exponent(currency)
    if isinstance(value, Decimal) and not value.is_finite():
        raise MoneyError("The amount must be a number.")
    numerator, denominator = value.as_integer_ratio()
    scaled = numerator * int(10**exponent)
    if scaled % denominator:
        raise _decimals_error(currency, exponent)
    return scaled // denominator


def _render(amount_minor: int, currency: str, locale: Locale | str, kind: str) -> str:
    _check_minor(amount_minor)
    exponent = minor_unit_exponent(currency)
    loc = Locale.parse(locale)
    pattern = copy.copy(loc.currency_formats["standard"] if kind == "currency" else loc.decimal_formats[None])
    pattern.frac_prec = (exponent, exponent)
    text = pattern.apply(
        to_decimal(amount_minor, currency), loc, currency=currency, currency_digits=False, group_separator=False
    )
    # Group digits ourselves: Babel strips quote pairs from its output, which
    # eats the ASCII "'" group separator Swiss locales use since CLDR 48
    # (Babel 2.19 renders 1234567 in de_CH as "1234567").
    group, (first, rest) = get_group_symbol(loc), pattern.grouping

    def regroup(match: re.Match[str]) -> str:
        digits, size, grouped = match.group(), first, ""
        while len(digits) > size:
            grouped, digits, size = group + digits[-size:] + grouped, digits[:-size], rest
        return digits + grouped

    return re.sub(r"\d+", regroup, text, count=1)


def format_amount(amount_minor: int, currency: str, locale: Locale | str = "en") -> str:
    """Display an amount with its currency the way ``locale`` writes money.

    Uses the locale's CLDR currency pattern and symbol via Babel, with exactly
    the currency's decimals: 2550 PLN is "25,50 zł" in pl and "PLN25.50" in
    en; 500 JPY is "¥500"; 1234 BHD is "BHD1.234".
    """
    return _render(amount_minor, currency, locale, "currency")


def format_amount_plain(amount_minor: int, currency: str, locale: Locale | str = "en") -> str:
    """Just the number, in ``locale``'s digit grouping and decimal mark, no symbol.

    Always shows exactly the currency's decimals (100000 PLN in pl is
    "1 000,00" with U+00A0). Meant to prefill an amount input; for positive
    amounts parse_amount reads it back to the same minor units.
    """
    return _render(amount_minor, currency, locale, "plain")
