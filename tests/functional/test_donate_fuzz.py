"""Hostile input to the donation form: whatever arrives, the form answers calmly.

Every submission either starts exactly one pending gift within the online limits
(303 to the checkout) or is refused (400) having written nothing; a link to the
form always shows the form. Never a server error, never unescaped markup.

Each example starts from a valid form and spoils some of its fields: hostile
text (control characters, NUL, right-to-left marks, emoji, SQL, HTML and template
snippets, up to 5000 characters), numbers written every which way, values outside
the choices, fields left out and fields sent twice.
"""

from __future__ import annotations

import itertools
import os
import unicodedata
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from werkzeug.datastructures import MultiDict
from werkzeug.test import EnvironBuilder

from supporters.core.request_sizes import DEFAULT_LIMIT
from supporters.extensions import db as _db
from supporters.giving import checkout
from supporters.models import (
    Campaign,
    Consent,
    ConsentRequest,
    Gift,
    GiftStatus,
    RecurringPlan,
    Supporter,
    normalise_email,
)
from tests.functional.test_donate import seed_campaigns

# --- Hostile text --------------------------------------------------------------

SNIPPETS = [
    "'; DROP TABLE gift; --",
    "' OR '1'='1",
    "1; SELECT pg_sleep(10)",
    "\\",
    "%",
    "_",
    "%00",
    "\x00",
    "\x00\x00",
    "<script>alert(1)</script>",
    '"><script>alert(1)</script>',
    "'><img src=x onerror=alert(1)>",
    "javascript:alert(1)",
    "</textarea><script>x</script>",
    "<!--",
    "]]>",
    "{{ 7*7 }}",
    "{% debug %}",
    "${7*7}",
    "%(amount)s",
    "%s%s%n",
    "{0}",
    "\u202e\u2066evil\u2069",
    "\u200f\u200e",
    "\ufeff",
    "\u200b",
    "\u00ad",
    "\r\n\r\nSet-Cookie: a=b",
    "\x1b[31m",
    "\x7f",
    "\x85",
    "\u2028\u2029",
    "🙂💸👩‍👩‍👧",
    "\U0001f600" * 30,
    "Zażółć gęślą jaźń",
    "Łukasz Żak",
    "عبد الله",
    "שלום",
    "日本語",
    "Ω≈ç√∫",
    "ﷺ",
    "A\u0301\u0301\u0301",
    "../../etc/passwd",
    "NaN",
    "Infinity",
    "-Infinity",
    "None",
    "null",
    "true",
    "[]",
    "{}",
    "0",
    "-0",
]

control_and_format = st.characters(categories=["Cc", "Cf", "Zs", "Zl", "Zp", "Mn", "So", "Sc"])
hostile_text = st.one_of(
    st.text(max_size=30),
    st.text(control_and_format, max_size=30),
    st.sampled_from(SNIPPETS),
    st.builds("".join, st.lists(st.one_of(st.sampled_from(SNIPPETS), st.text(max_size=5)), min_size=2, max_size=6)),
    # Huge: a short piece repeated up to 5000 characters.
    st.builds(lambda piece, times: (piece * times)[:5000], st.text(min_size=1, max_size=6), st.integers(200, 5000)),
)

# --- Numbers written every which way ------------------------------------------

GROUPS = ["", ",", ".", " ", "\u00a0", "\u202f", "\u2009", "'", "\u2019", "_"]


def _written(value: Decimal, places: int, group: str, mark: str, prefix: str, suffix: str) -> str:
    whole, _, fraction = f"{abs(value):.{places}f}".partition(".")
    grouped = f"{int(whole):,}".replace(",", group) if group else whole
    return f"{prefix}{'-' if value < 0 else ''}{grouped}{mark + fraction if fraction else ''}{suffix}"


written_numbers = st.builds(
    _written,
    st.decimals(min_value=-(10**8), max_value=10**8, allow_nan=False, places=3),
    st.integers(0, 4),
    st.sampled_from(GROUPS),
    st.sampled_from([".", ","]),
    st.sampled_from(["", "", " ", "+", "zł ", "€", "PLN", "0", "00"]),
    st.sampled_from(["", "", " ", " zł", "€", "-", "e3", "."]),
)
numbers = st.one_of(
    written_numbers,
    st.integers(-(10**30), 10**30).map(str),
    st.floats().map(str),
    st.floats().map(repr),
    st.decimals().map(str),
    st.decimals(allow_nan=False, allow_infinity=False).map(lambda d: f"{d:e}"),
    st.text("0123456789.,  '-+eE", max_size=25),
    st.text(st.characters(categories=["Nd", "No", "Nl"]), min_size=1, max_size=8),  # ٣, ３, ², Ⅻ
)

# --- Valid values (each example starts from a valid form) ---------------------

CURRENCIES = ["PLN", "EUR", "USD"]
PRESETS = {("general", "PLN"): ["2000", "5000"], ("spring", "PLN"): ["3000", "7000"]}
DEFAULT_PRESETS = ["1000", "2500", "5000", "10000"]


def _valid_amount(currency: str) -> st.SearchStrategy[str]:
    whole = st.integers(checkout.STRIPE_MINIMUMS[currency] // 100 + 1, 10_000)
    return st.one_of(
        whole.map(str),
        whole.map(lambda n: f"{n:,}".replace(",", " ")),
        st.builds(lambda n, cents: f"{min(n, 9_999)},{cents:02d}", whole, st.integers(0, 99)),
        st.builds(lambda n, cents: f"{min(n, 9_999)}.{cents:02d}", whole, st.integers(0, 99)),
    )


@st.composite
def valid_forms(draw: st.DrawFn) -> dict[str, list[str]]:
    campaign = draw(st.sampled_from(["general", "spring", ""]))
    currency = draw(st.sampled_from(CURRENCIES))
    presets = PRESETS.get((campaign or "general", currency), DEFAULT_PRESETS)
    typed = draw(st.booleans())
    form = {
        "frequency": draw(st.sampled_from(["one_time", "monthly", "yearly"])),
        "currency": currency,
        "shown_currency": currency,
        "amount_choice": draw(st.sampled_from([*presets, "other"])) if typed else draw(st.sampled_from(presets)),
        "custom_amount": draw(_valid_amount(currency)) if typed else "",
        "email": draw(
            st.one_of(
                st.emails(),
                st.sampled_from(
                    ["ada@example.org", " Ada@Example.ORG ", "łukasz@example.pl", "o'brien+gift@example.co.uk"]
                ),
            )
        ),
        "name": draw(
            st.one_of(
                st.sampled_from(["Ada Lovelace", "Łukasz Żak", "عبد الله", "李小龍", "O'Brien"]),
                st.text(st.characters(categories=["L", "Zs", "Pd"]), min_size=1, max_size=200).filter(str.strip),
            )
        ),
        "country": draw(st.sampled_from(["", "PL", "DE", "UA"])),
        "address_line1": draw(st.sampled_from(["", "ul. Długa 5/7"])),
        "address_line2": "",
        "postal_code": draw(st.sampled_from(["", "00-950"])),
        "city": draw(st.sampled_from(["", "Warszawa"])),
        "anonymous": draw(st.sampled_from(["", "y"])),
        "dedication_kind": "",
        "dedication": "",
        "comment": draw(st.sampled_from(["", "Dziękuję!", "For the library\r\nand the archive"])),
        "newsletter": draw(st.sampled_from(["", "y"])),
        "covers_fee": draw(st.sampled_from(["", "y"])),
        "campaign": campaign,
        "src": draw(st.sampled_from(["", "https://example.org/analyses/budget?utm_source=x"])),
        "article": draw(st.sampled_from(["", "budget-2026"])),
        "variant": draw(st.sampled_from(["", "banner-b"])),
        "utm_source": "",
        "utm_medium": "",
        "utm_campaign": "",
    }
    if draw(st.booleans()):
        form["dedication_kind"], form["dedication"] = draw(st.sampled_from(["honour", "memory"])), "Grandma Irena"
    return {name: [value] for name, value in form.items() if value != ""}


# --- Spoiling a valid form ------------------------------------------------------

# Spliced into an otherwise valid value: the likeliest attack, as it passes every check
# that is not about characters.
SPLICED = [
    "\x00",
    "\x00",
    "\x00",
    "\u202e",
    "\u200f",
    "\ufeff",
    "\r\n",
    "\x1b",
    "\x7f",
    "\x85",
    "\u2028",
    "'",
    '"',
    "<",
    "%",
    "\\",
    "🙂",
]

HOSTILE_VALUES: dict[str, st.SearchStrategy[str]] = {
    "frequency": st.one_of(st.sampled_from(["one_time", "monthly", "yearly", "weekly", "ONE_TIME", ""]), hostile_text),
    "amount_choice": st.one_of(
        st.sampled_from(["other", "2000", "5000", "1000", "10000", "3000", "0", "-5000", "99999999999999999999"]),
        numbers,
        hostile_text,
    ),
    "custom_amount": st.one_of(numbers, numbers, hostile_text),
    "currency": st.one_of(st.sampled_from(["PLN", "EUR", "USD", "pln", "XXX", "JPY", "GBP", "KWD", ""]), hostile_text),
    "shown_currency": st.one_of(st.sampled_from(["PLN", "EUR", "USD", "XXX", ""]), hostile_text),
    "email": st.one_of(
        st.emails(),
        hostile_text,
        st.builds(lambda a, b: f"{a}@{b}", hostile_text, st.sampled_from(["example.org", "", "x"])),
    ),
    "name": hostile_text,
    "country": st.one_of(st.sampled_from(["PL", "pl", "XX", "ZZ", "EU", "POL", ""]), hostile_text),
    "address_line1": hostile_text,
    "address_line2": hostile_text,
    "postal_code": hostile_text,
    "city": hostile_text,
    "anonymous": st.one_of(st.sampled_from(["y", "false", "0", ""]), hostile_text),
    "dedication_kind": st.one_of(st.sampled_from(["honour", "memory", "roast", ""]), hostile_text),
    "dedication": hostile_text,
    "comment": hostile_text,
    "newsletter": st.one_of(st.sampled_from(["y", "false", ""]), hostile_text),
    "covers_fee": st.one_of(st.sampled_from(["y", "false", ""]), hostile_text),
    "campaign": st.one_of(st.sampled_from(["general", "spring", "nope", "GENERAL", "general " * 20]), hostile_text),
    "src": hostile_text,
    "article": hostile_text,
    "variant": hostile_text,
    "utm_source": hostile_text,
    "utm_medium": hostile_text,
    "utm_campaign": hostile_text,
    "submission_id": hostile_text,
}
FIELDS = list(HOSTILE_VALUES)


def _occurrences(values: st.SearchStrategy[str]) -> st.SearchStrategy[list[str]]:
    """Usually one value; sometimes the field is missing, sometimes it is sent two or three times."""
    return st.one_of(
        st.lists(values, min_size=1, max_size=1),
        st.lists(values, min_size=1, max_size=1),
        st.just([]),
        st.lists(values, min_size=2, max_size=3),
    )


_serial = itertools.count()


def _spliced(valid: str) -> st.SearchStrategy[str]:
    return st.builds(lambda ch, at: valid[:at] + ch + valid[at:], st.sampled_from(SPLICED), st.integers(0, len(valid)))


@st.composite
def submissions(draw: st.DrawFn) -> MultiDict[str, str]:
    form = draw(valid_forms())
    for name in draw(st.sets(st.sampled_from(FIELDS), max_size=6)):
        valid = (form.get(name) or [""])[0]
        form[name] = draw(
            st.one_of(_occurrences(HOSTILE_VALUES[name]), st.lists(_spliced(valid), min_size=1, max_size=1))
        )
    return MultiDict([(name, value) for name, values in form.items() for value in values])


# --- The properties ---------------------------------------------------------------


def _counts() -> tuple[int, ...]:
    return tuple(
        int(_db.session.scalar(select(func.count()).select_from(model)) or 0)
        for model in (Gift, Supporter, RecurringPlan, Consent, ConsentRequest)
    )


def _no_injected_markup(page: str) -> None:
    # The page has exactly one script of its own and no images; anything the donor sent is escaped.
    assert page.count("<script") == 1, "unescaped markup from the request reached the page"
    assert "<img" not in page and "<svg" not in page, "unescaped markup from the request reached the page"


def _fits(gift: Gift) -> None:
    """Every string stored on the gift fits its column and carries no control characters
    (SQLite does not enforce VARCHAR lengths; PostgreSQL would refuse)."""
    for column in Gift.__table__.columns:
        value = getattr(gift, column.key)
        length = getattr(column.type, "length", None)
        if isinstance(value, str) and length:
            assert len(value) <= length, f"{column.key} is {len(value)} long"
    for name in ("source_url", "source_article", "source_variant", "utm_source", "utm_medium", "utm_campaign"):
        value = getattr(gift, name)
        assert value is None or not any(unicodedata.category(ch) == "Cc" for ch in value), name


#: DONATE_FUZZ_EXAMPLES=5000 fuzzes longer; the GET fuzz runs 2/5 as many.
EXAMPLES = max(500, int(os.environ.get("DONATE_FUZZ_EXAMPLES", "500")))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture
def campaign(db: Any) -> Campaign:
    return seed_campaigns()


@FUZZ
@given(form=submissions())
def test_any_submission_starts_one_valid_gift_or_is_refused_having_written_nothing(
    client: Any, campaign: Campaign, app: Any, form: MultiDict[str, str]
) -> None:
    # Every example is a form of its own (a repeat would rightly find the first gift again):
    # the first submission_id sent starts with a serial number.
    form = form.copy()
    first, *more = form.getlist("submission_id") or [""]
    form.setlist("submission_id", [f"fuzz{next(_serial):06d}-{first}", *more])
    before = _counts()
    # A body over the form's size limit is refused whole, before any field is read.
    too_large = int(EnvironBuilder(method="POST", data=form).get_environ()["CONTENT_LENGTH"]) > DEFAULT_LIMIT

    response = client.post("/donate/", data=form)

    assert response.status_code < 500
    assert response.status_code in ((413,) if too_large else (303, 400)), response.status_code
    event(f"POST answered {response.status_code}")
    after = _counts()
    if response.status_code == 413:
        assert after == before, "a refused form wrote something"
        assert "Too much data" in response.get_data(as_text=True)
        return
    if response.status_code == 400:
        assert after == before, "a refused form wrote something"
        page = response.get_data(as_text=True)
        assert "Please check the form" in page
        _no_injected_markup(page)
        return
    assert after[0] == before[0] + 1, "a started gift must be exactly one new gift"
    assert after[3] == before[3], "a ticked box is a request, not a consent (double opt-in)"
    assert after[4] - before[4] in (0, 1)
    _db.session.expire_all()
    gift = _db.session.scalars(select(Gift).order_by(Gift.id.desc()).limit(1)).one()
    assert gift.status is GiftStatus.PENDING
    location = response.headers["Location"]
    assert location.startswith("/pay/test/cs_offline_")
    assert gift.checkout_url == location
    currency = gift.currency
    assert currency in app.config["SUPPORTERS_CURRENCIES"]
    low, high = checkout.minimum_gift(currency), checkout.maximum_gift(currency)
    assert low <= gift.amount_minor <= high + checkout.estimate_fee(high, currency)
    if not gift.covers_fee:
        assert gift.amount_minor <= high
    assert (gift.recurring_plan_id is not None) == (form.get("frequency") in ("monthly", "yearly"))
    supporter = _db.session.get(Supporter, gift.supporter_id)
    assert supporter is not None
    assert supporter.email_normalised == normalise_email(form["email"])
    _fits(gift)


# --- Links to the form ------------------------------------------------------------------

QUERY_NAMES = [
    "amount",
    "currency",
    "frequency",
    "campaign",
    "src",
    "article",
    "variant",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "lang",
    "session_id",
    "x",
]
query_values = st.one_of(
    numbers,
    hostile_text,
    st.sampled_from(["50", "37,50", "EUR", "eur", "monthly", "spring", "pl"]).flatmap(
        lambda v: st.one_of(st.just(v), _spliced(v))
    ),
)


@st.composite
def query_strings(draw: st.DrawFn) -> str:
    pairs = draw(st.lists(st.tuples(st.sampled_from(QUERY_NAMES), query_values), max_size=8))
    encoded = "&".join(f"{quote(name)}={quote(value, safe='')}" for name, value in pairs)
    # Sometimes raw junk: broken percent-escapes, bytes that are no UTF-8, stray separators.
    junk = draw(st.sampled_from(["", "", "&&=&", "%", "%zz", "%ff%fe", "amount=%E2%80%AE50", ";;", "==", "src=%00"]))
    return encoded + ("&" + junk if junk else "")


@settings(max_examples=EXAMPLES * 2 // 5, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(query=query_strings())
def test_any_link_to_the_form_shows_the_form(client: Any, campaign: Campaign, query: str) -> None:
    before = _counts()

    response = client.get("/donate/", query_string=query)

    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert 'class="donate-form"' in page
    _no_injected_markup(page)
    assert _counts() == before
