"""Specification of supporters.lib.money: amounts are integer minor units + ISO 4217 code."""

import re
import subprocess
import sys
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from supporters.lib import money
from supporters.lib.money import (
    MAX_AMOUNT_MINOR,
    MoneyError,
    format_amount,
    format_amount_plain,
    minor_unit_exponent,
    parse_amount,
    to_decimal,
    to_minor,
)

NBSP, NNBSP = "\u00a0", "\u202f"
PROPERTY = settings(max_examples=300, deadline=None)


# --- Currencies -------------------------------------------------------------


@pytest.mark.parametrize(
    ("currency", "exponent"),
    [
        ("PLN", 2),
        ("EUR", 2),
        ("USD", 2),
        ("GBP", 2),
        ("CHF", 2),
        # Stripe's zero-decimal currencies
        ("JPY", 0),
        ("KRW", 0),
        ("VND", 0),
        ("CLP", 0),
        ("UGX", 0),
        ("XOF", 0),
        # Stripe's three-decimal currencies
        ("KWD", 3),
        ("BHD", 3),
        ("JOD", 3),
        ("OMR", 3),
        ("TND", 3),
        # Babel displays these without decimals, but Stripe's API amounts are in hundredths
        ("ISK", 2),
        ("HUF", 2),
        ("TWD", 2),
    ],
)
def test_minor_unit_exponent_follows_stripe(currency, exponent):
    assert minor_unit_exponent(currency) == exponent


@pytest.mark.parametrize("currency", ["pln", "PL", "PLNX", "", "XYZ", "ZZZ", "P1N", None, 985])
def test_unknown_or_malformed_currency_codes_are_refused(currency):
    with pytest.raises(MoneyError, match="not a known currency code"):
        minor_unit_exponent(currency)


def test_every_function_checks_the_currency():
    for call in (
        lambda: parse_amount("25", "XYZ"),
        lambda: format_amount(2500, "XYZ"),
        lambda: format_amount_plain(2500, "XYZ"),
        lambda: to_decimal(2500, "XYZ"),
        lambda: to_minor(Decimal(25), "XYZ"),
    ):
        with pytest.raises(MoneyError):
            call()


# --- Parsing what donors type ----------------------------------------------

ACCEPTED = [
    # (typed, currency, minor units)
    ("25", "PLN", 2500),
    ("25.50", "PLN", 2550),
    ("25,50", "PLN", 2550),
    ("25,5", "EUR", 2550),
    ("0.01", "USD", 1),
    (".50", "USD", 50),
    ("25.", "EUR", 2500),
    ("007", "GBP", 700),
    (" 1 000,00 ", "PLN", 100000),
    ("1 000", "PLN", 100000),
    (f"1{NBSP}000,00", "PLN", 100000),
    (f"1{NNBSP}234{NNBSP}567,89", "EUR", 123456789),
    ("1,000.00", "USD", 100000),
    ("1.000,00", "EUR", 100000),
    ("1.234.567,89", "EUR", 123456789),
    ("1,234,567", "USD", 123456700),
    ("1'000.00", "CHF", 100000),
    ("1\u2019000.50", "CHF", 100050),
    ("1'000,50", "CHF", 100050),
    ("1,00,000.00", "INR", 10000000),
    ("12,34,567", "INR", 123456700),
    ("\t25\n", "GBP", 2500),
    # a single separator followed by three digits groups thousands...
    ("1,000", "USD", 100000),
    ("1.000", "PLN", 100000),
    ("12.345", "EUR", 1234500),
    # ...but not when it cannot be a thousands group
    ("1000,000", "KWD", 1000000),
    # zero-decimal currencies
    ("500", "JPY", 500),
    ("1,000", "JPY", 1000),
    ("1.000.000", "KRW", 1000000),
    ("1 000", "JPY", 1000),
    # three-decimal currencies: a single separator is always decimal
    ("1.000", "KWD", 1000),
    ("1,000", "KWD", 1000),
    ("1.234", "BHD", 1234),
    ("25.5", "KWD", 25500),
    ("1,000.000", "KWD", 1000000),
    ("1 000,000", "KWD", 1000000),
    # the largest accepted amount
    ("10 000 000 000 000,00", "PLN", MAX_AMOUNT_MINOR),
]


@pytest.mark.parametrize(("typed", "currency", "minor"), ACCEPTED)
def test_accepted_inputs(typed, currency, minor):
    assert parse_amount(typed, currency) == minor


REFUSED = [
    # (typed, currency, fragment of the reason)
    ("", "PLN", "Enter an amount."),
    ("   ", "PLN", "Enter an amount."),
    (NBSP, "PLN", "Enter an amount."),
    ("-5", "PLN", "cannot be negative"),
    ("5-", "PLN", "cannot be negative"),
    ("- 5", "PLN", "cannot be negative"),
    ("\u22125", "PLN", "cannot be negative"),
    ("+5", "PLN", "like 25 or 25.50"),
    ("0", "PLN", "more than zero"),
    ("0,00", "PLN", "more than zero"),
    ("000", "JPY", "more than zero"),
    ("NaN", "EUR", "without letters"),
    ("inf", "EUR", "without letters"),
    ("Infinity", "EUR", "without letters"),
    ("1e3", "EUR", "without letters"),
    ("1E3", "EUR", "without letters"),
    ("25 zł", "PLN", "without letters"),
    ("$25", "USD", "currency symbols"),
    ("€25", "EUR", "currency symbols"),
    ("PLN 25", "PLN", "without letters"),
    ("٢٥", "EUR", "like 25 or 25.50"),  # Arabic-Indic digits are not supported
    ("1,00,0.5", "PLN", "like 25 or 25.50"),
    ("1.5.5", "PLN", "like 25 or 25.50"),
    ("1,000.00,5", "USD", "like 25 or 25.50"),
    ("1.000,000.00", "USD", "like 25 or 25.50"),
    ("1,0000", "USD", "at most 2 decimal places"),
    ("1 000 .00", "PLN", "like 25 or 25.50"),
    ("1  000", "PLN", "like 25 or 25.50"),
    ("1 00", "PLN", "like 25 or 25.50"),
    ("1'000 000", "CHF", "like 25 or 25.50"),
    ("1,000 000", "USD", "like 25 or 25.50"),
    ("25.50.", "PLN", "like 25 or 25.50"),
    (".", "PLN", "like 25 or 25.50"),
    (",", "PLN", "like 25 or 25.50"),
    ("'", "CHF", "like 25 or 25.50"),
    ("12 ,50", "PLN", "like 25 or 25.50"),
    ("(25)", "USD", "like 25 or 25.50"),
    ("25/2", "USD", "like 25 or 25.50"),
    ("1.234,505", "PLN", "PLN amounts have at most 2 decimal places."),
    ("25,5050", "EUR", "EUR amounts have at most 2 decimal places."),
    ("0,500", "PLN", "at most 2 decimal places"),  # never five hundred
    ("500.5", "JPY", "JPY amounts have no decimal places."),
    ("500.00", "JPY", "JPY amounts have no decimal places."),
    ("500,5", "JPY", "no decimal places"),
    ("1.0000", "KWD", "KWD amounts have at most 3 decimal places."),
    ("x", "JPY", "without letters"),
    ("+", "JPY", "Enter a whole amount like 500."),
    ("10 000 000 000 000,01", "PLN", "too large"),
    ("1" + "0" * 16, "JPY", "too large"),
    ("9" * 5000, "PLN", "too large"),
]


@pytest.mark.parametrize(("typed", "currency", "reason"), REFUSED)
def test_refused_inputs_explain_why(typed, currency, reason):
    with pytest.raises(MoneyError) as refused:
        parse_amount(typed, currency)
    assert reason in str(refused.value)


def test_polish_decimal_comma_is_accepted():
    assert parse_amount("25,50", "PLN") == 2550


def test_polish_thousands_dot_means_one_thousand():
    assert parse_amount("1.000", "PLN") == 100000


def test_single_dot_with_three_digits_is_thousands_even_after_a_small_amount():
    # The documented price of reading "1.000" as one thousand.
    assert parse_amount("25.505", "PLN") == 2550500


def test_english_thousands_comma_means_one_thousand():
    assert parse_amount("1,000", "GBP") == 100000


def test_single_separator_with_three_digits_is_decimal_for_three_decimal_currencies():
    assert parse_amount("1.000", "KWD") == parse_amount("1,000", "KWD") == 1000


def test_with_both_marks_the_last_one_is_the_decimal_separator():
    assert parse_amount("1,234.56", "USD") == parse_amount("1.234,56", "USD") == 123456


def test_spaces_and_apostrophes_only_ever_group_thousands():
    assert parse_amount("1 000,000", "KWD") == 1000000
    with pytest.raises(MoneyError, match="at most 2 decimal places"):
        parse_amount("1 000,000", "PLN")


def test_a_leading_zero_group_is_never_thousands():
    with pytest.raises(MoneyError, match="no decimal places"):
        parse_amount("0,500", "JPY")


def test_zero_decimal_currencies_refuse_any_decimals():
    with pytest.raises(MoneyError, match=r"^JPY amounts have no decimal places\.$"):
        parse_amount("500.5", "JPY")


def test_indian_lakh_grouping_is_accepted():
    assert parse_amount("1,00,00,000.00", "INR") == 1000000000


def test_parse_amount_refuses_non_text():
    with pytest.raises(TypeError):
        parse_amount(25, "PLN")


def test_refusals_carry_a_translatable_template_and_parameters():
    with pytest.raises(MoneyError) as refused:
        parse_amount("1.0000", "KWD")
    error = refused.value
    assert error.template == "%(currency)s amounts have at most %(places)d decimal places."
    assert error.params == {"currency": "KWD", "places": 3}
    assert error.template % error.params == str(error)
    assert isinstance(error, ValueError)


def test_fixed_reasons_have_no_parameters():
    with pytest.raises(MoneyError) as refused:
        parse_amount("-1", "EUR")
    assert refused.value.template == str(refused.value) == "The amount cannot be negative."
    assert refused.value.params == {}


# --- Formatting -------------------------------------------------------------


@pytest.mark.parametrize(
    ("minor", "currency", "locale", "expected"),
    [
        (2550, "PLN", "pl", f"25,50{NBSP}zł"),
        (500, "JPY", "en", "¥500"),
        (123456, "EUR", "de", f"1.234,56{NBSP}€"),
        (123456, "USD", "en", "$1,234.56"),
        # Swiss grouping apostrophe survives (Babel itself drops it in pairs)
        (123456789, "CHF", "de_CH", f"CHF{NBSP}1'234'567.89"),
        (-2550, "USD", "en", "-$25.50"),
    ],
)
def test_format_amount_uses_the_locales_currency_format(minor, currency, locale, expected):
    assert format_amount(minor, currency, locale) == expected


@pytest.mark.parametrize(
    ("minor", "currency", "number"),
    [(2550, "PLN", "25.50"), (1234, "BHD", "1.234"), (1000000, "KWD", "1,000.000")],
)
def test_format_amount_shows_exactly_the_currencys_decimals(minor, currency, number):
    text = format_amount(minor, currency, "en")
    assert currency in text and text.endswith(number)


def test_format_amount_shows_decimals_babel_would_hide():
    # Babel shows HUF without decimals; our HUF amounts are in fillér.
    assert format_amount(12345, "HUF", "hu") == f"123,45{NBSP}Ft"


def test_format_amount_defaults_to_english():
    assert format_amount(2550, "USD") == "$25.50"


@pytest.mark.parametrize(
    ("minor", "currency", "locale", "expected"),
    [
        (100000, "PLN", "pl", f"1{NBSP}000,00"),
        (100000, "EUR", "de", "1.000,00"),
        (100000, "EUR", "fr", f"1{NNBSP}000,00"),
        (123456789, "CHF", "de_CH", "1'234'567.89"),
        (10000000, "INR", "en_IN", "1,00,000.00"),
        (1000, "JPY", "en", "1,000"),
        (1234, "KWD", "en", "1.234"),
        (1, "KWD", "pl", "0,001"),
        (2500, "PLN", "en", "25.00"),
    ],
)
def test_format_amount_plain_is_just_the_localised_number(minor, currency, locale, expected):
    assert format_amount_plain(minor, currency, locale) == expected


@pytest.mark.parametrize("bad", [25.5, Decimal("25.50"), "2550", True])
def test_formatting_needs_integer_minor_units(bad):
    with pytest.raises(TypeError):
        format_amount(bad, "PLN")


# --- Decimal conversions ----------------------------------------------------


@pytest.mark.parametrize(
    ("minor", "currency", "value"),
    [
        (2550, "PLN", "25.50"),
        (500, "JPY", "500"),
        (1234, "BHD", "1.234"),
        (1, "KWD", "0.001"),
        (0, "EUR", "0.00"),
        (-2550, "EUR", "-25.50"),
    ],
)
def test_to_decimal_keeps_the_currencys_decimals(minor, currency, value):
    result = to_decimal(minor, currency)
    assert result == Decimal(value) and str(result) == value


def test_to_minor_accepts_trailing_zeros_but_never_rounds():
    assert to_minor(Decimal("500.00"), "JPY") == 500
    assert to_minor(Decimal("25.5"), "PLN") == 2550
    assert to_minor(25, "PLN") == 2500
    with pytest.raises(MoneyError, match="at most 2 decimal places"):
        to_minor(Decimal("25.505"), "PLN")
    with pytest.raises(MoneyError, match="no decimal places"):
        to_minor(Decimal("0.5"), "JPY")


@pytest.mark.parametrize("value", [Decimal("NaN"), Decimal("sNaN"), Decimal("Infinity"), Decimal("-Infinity")])
def test_to_minor_refuses_non_finite_values(value):
    with pytest.raises(MoneyError):
        to_minor(value, "EUR")


@pytest.mark.parametrize("value", [25.5, "25.50", True, None])
def test_to_minor_refuses_floats_and_other_types(value):
    with pytest.raises(TypeError):
        to_minor(value, "EUR")


def test_conversions_are_exact_beyond_decimal_context_precision():
    huge = 10**40 + 1
    assert to_minor(to_decimal(huge, "KWD"), "KWD") == huge


def test_money_module_needs_neither_flask_nor_stripe():
    # Load money.py on its own: the supporters package itself may import Flask.
    code = (
        "import importlib.util, sys; "
        f"spec = importlib.util.spec_from_file_location('money', {money.__file__!r}); "
        "spec.loader.exec_module(importlib.util.module_from_spec(spec)); "
        "assert not {'flask', 'flask_babel', 'stripe'} & set(sys.modules)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# --- Properties ---------------------------------------------------------------

CURRENCIES = st.sampled_from(["PLN", "EUR", "USD", "GBP", "JPY", "KWD", "CHF"])
# en_IN is included: Indian lakh grouping ("1,00,000.00") is supported.
LOCALES = st.sampled_from(["en", "pl", "de", "fr", "de_CH", "en_IN"])


@PROPERTY
@given(amount=st.integers(1, 10**12), currency=CURRENCIES, locale=LOCALES)
def test_prefilled_amounts_parse_back_to_the_same_amount(amount, currency, locale):
    assert parse_amount(format_amount_plain(amount, currency, locale), currency) == amount


@PROPERTY
@given(amount=st.integers(), currency=CURRENCIES)
def test_decimal_conversions_round_trip(amount, currency):
    assert to_minor(to_decimal(amount, currency), currency) == amount


@PROPERTY
@given(digits=st.integers(1, 10**12), currency=CURRENCIES)
def test_plain_whole_numbers_are_whole_major_units(digits, currency):
    assert parse_amount(str(digits), currency) == digits * 10 ** minor_unit_exponent(currency)


def _check_parse_contract(text, currency):
    try:
        minor = parse_amount(text, currency)
    except MoneyError as refused:
        assert str(refused)
        return
    assert type(minor) is int and 0 < minor <= MAX_AMOUNT_MINOR
    # No digit is invented, dropped or reordered: only zeros are padded.
    assert re.sub(r"\D", "", text).strip("0") == str(minor).strip("0")


@PROPERTY
@given(text=st.text(), currency=CURRENCIES)
def test_any_text_is_parsed_or_refused_with_a_reason(text, currency):
    _check_parse_contract(text, currency)


@PROPERTY
@given(text=st.text(alphabet="0123456789.,' -+e" + NBSP + NNBSP, max_size=20), currency=CURRENCIES)
def test_any_amount_like_text_is_parsed_or_refused_with_a_reason(text, currency):
    _check_parse_contract(text, currency)


@given(st.integers(min_value=-(10**15), max_value=10**15), st.sampled_from(["PLN", "JPY", "BHD", "EUR", "KRW"]))
def test_plain_text_is_what_the_decimal_prints(amount: int, currency: str) -> None:
    assert money.plain(amount, currency) == str(money.to_decimal(amount, currency))
