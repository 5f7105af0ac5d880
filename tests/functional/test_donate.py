"""The donation form at /donate/, as the donor meets it.

What the form shows, what a link can prefill, what a submission records, every
reason it may refuse (each shown next to its field, nothing written), the way
back from checkout, CSRF and rate limits, and the offline test-payment page.

The test app pays through the offline gateway: starting a gift makes a local
checkout URL (/pay/test/<session id>) without any network call.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from flask import Flask
from flask_migrate import upgrade
from sqlalchemy import func, select
from werkzeug.datastructures import MultiDict

from supporters.extensions import db as _db
from supporters.giving import checkout, lifecycle
from supporters.models import (
    Campaign,
    Consent,
    ConsentRequest,
    Gift,
    GiftKind,
    GiftStatus,
    PlanInterval,
    PlanStatus,
    RecurringPlan,
    Supporter,
    utcnow,
)
from supporters.payments.offline import TEST_CARDS
from tests import factories
from tests.conftest import MIGRATIONS, make_app

# --- Reading the page as a browser would -------------------------------------


@dataclass
class Control:
    """One form control: <input>, <select> (with its options) or <textarea>."""

    tag: str
    attrs: dict[str, str | None]
    options: list[dict[str, str | None]] = field(default_factory=list)
    text: str = ""

    @property
    def id(self) -> str | None:
        return self.attrs.get("id")

    @property
    def name(self) -> str | None:
        return self.attrs.get("name")

    @property
    def type(self) -> str:
        return (self.attrs.get("type") or "text") if self.tag == "input" else self.tag

    @property
    def checked(self) -> bool:
        return "checked" in self.attrs


class _DonationFormParser(HTMLParser):
    """Collects the controls and labels inside <form class="donate-form">."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.controls: list[Control] = []
        self.labels: list[dict[str, str | None]] = []
        self._in_form = False
        self._select: Control | None = None
        self._textarea: Control | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "form" and "donate-form" in (values.get("class") or ""):
            self._in_form = True
        if not self._in_form:
            return
        if tag == "input":
            self.controls.append(Control(tag, values))
        elif tag == "select":
            self._select = Control(tag, values)
            self.controls.append(self._select)
        elif tag == "option" and self._select is not None:
            self._select.options.append(values)
        elif tag == "textarea":
            self._textarea = Control(tag, values)
            self.controls.append(self._textarea)
        elif tag == "label":
            self.labels.append(values)

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._in_form = False
        elif tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None

    def handle_data(self, data: str) -> None:
        if self._textarea is not None:
            self._textarea.text += data


@dataclass
class DonationPage:
    """The donation form on a page: its controls, labels and errors."""

    source: str
    controls: list[Control]
    labels: list[dict[str, str | None]]

    def control(self, control_id: str) -> Control:
        found = [c for c in self.controls if c.id == control_id]
        assert found, f"no control with id {control_id!r} in the form"
        return found[0]

    def value(self, name: str) -> str | None:
        """The value a browser would submit for `name` (None when it submits nothing)."""
        values = self.submitted().getlist(name)
        return values[0] if values else None

    def checked(self, name: str) -> str | None:
        found = [c.attrs.get("value") for c in self.controls if c.name == name and c.checked]
        return found[0] if found else None

    def choices(self, name: str) -> list[str | None]:
        return [c.attrs.get("value") for c in self.controls if c.name == name and c.type == "radio"]

    def errors(self, field_id: str) -> list[str]:
        """The messages shown next to the field (<ul id="<field>-error">)."""
        match = re.search(rf'<ul class="field-errors" id="{re.escape(field_id)}-error">(.*?)</ul>', self.source, re.S)
        return [html.unescape(m).strip() for m in re.findall(r"<li>(.*?)</li>", match.group(1), re.S)] if match else []

    def submitted(self) -> MultiDict[str, str]:
        """What the browser sends when the donor presses the button without changing anything."""
        data: MultiDict[str, str] = MultiDict()
        for control in self.controls:
            name = control.name
            if not name or "disabled" in control.attrs:
                continue
            if control.type in ("radio", "checkbox"):
                if control.checked:
                    data.add(name, control.attrs.get("value") or "on")
            elif control.tag == "select":
                chosen = [o for o in control.options if "selected" in o] or control.options[:1]
                if chosen:
                    data.add(name, chosen[0].get("value") or "")
            elif control.tag == "textarea":
                # Browsers drop the one line break that follows <textarea>.
                text = control.text
                data.add(name, text[2:] if text.startswith("\r\n") else text.removeprefix("\n"))
            elif control.type not in ("submit", "button", "image", "reset", "file"):
                data.add(name, control.attrs.get("value") or "")
        return data


def parse_page(source: str) -> DonationPage:
    parser = _DonationFormParser()
    parser.feed(source)
    parser.close()
    return DonationPage(source, parser.controls, parser.labels)


# --- Builders ----------------------------------------------------------------

APPEAL_HEADING = "Keep our analyses free"
APPEAL_TEXT = "Readers like you pay for every report we publish."


def seed_campaigns() -> Campaign:
    """The general campaign (PLN presets 20 and 50 zł, an appeal) and a spring one."""
    general = Campaign(
        slug="general",
        name="General support",
        goal_currency="PLN",
        preset_amounts={"PLN": [2000, 5000]},
        appeal_heading=APPEAL_HEADING,
        appeal_text=APPEAL_TEXT,
    )
    spring = Campaign(
        slug="spring",
        name="Spring appeal",
        goal_currency="PLN",
        preset_amounts={"PLN": [3000, 7000]},
        appeal_heading="The spring appeal",
        appeal_text="Help us through the spring.",
    )
    _db.session.add_all([general, spring])
    _db.session.flush()
    return general


def valid_form(**changes: Any) -> dict[str, str]:
    """A complete one-time gift of 50 zł to the general campaign; None in `changes` drops a field."""
    data: dict[str, Any] = {
        "frequency": "one_time",
        "amount_choice": "5000",
        "custom_amount": "",
        "currency": "PLN",
        "shown_currency": "PLN",
        "email": "ada@example.org",
        "name": "Ada Lovelace",
        "country": "",
        "dedication_kind": "",
        "campaign": "general",
        "submission_id": "3f2a9c1d0b4e4f6a8c7d5e3b1a2f4c6d",
    }
    data.update(changes)
    return {key: value for key, value in data.items() if value is not None}


def count(model: type) -> int:
    return int(_db.session.scalar(select(func.count()).select_from(model)) or 0)


def all_gifts() -> list[Gift]:
    _db.session.expire_all()
    return list(_db.session.scalars(select(Gift).order_by(Gift.id)))


@pytest.fixture
def campaign(db: Any) -> Campaign:
    return seed_campaigns()


# --- What the form shows -----------------------------------------------------


def test_the_form_shows_the_campaign_appeal_and_its_preset_amounts(client: Any, campaign: Campaign) -> None:
    response = client.get("/donate/")

    assert response.status_code == 200
    page = parse_page(response.get_data(as_text=True))
    assert APPEAL_HEADING in page.source and APPEAL_TEXT in page.source
    assert page.choices("amount_choice") == ["2000", "5000", "other"]
    assert "PLN20.00" in page.source and "PLN50.00" in page.source
    assert page.value("campaign") == "general"
    assert page.value("currency") == "PLN" and page.value("shown_currency") == "PLN"


def test_every_visible_control_has_a_visible_label(client: Any, campaign: Campaign) -> None:
    page = parse_page(client.get("/donate/").get_data(as_text=True))

    labelled = {label.get("for"): label for label in page.labels}
    visible = [c for c in page.controls if c.type != "hidden"]
    assert len(visible) > 10
    for control in visible:
        assert control.id, f"{control.name} has no id to label"
        assert control.id in labelled, f"{control.name} ({control.id}) has no <label for=...>"
        assert "visually-hidden" not in (labelled[control.id].get("class") or ""), f"{control.id}'s label is hidden"


def test_the_form_says_it_is_in_test_mode(client: Any, campaign: Campaign) -> None:
    page = client.get("/donate/").get_data(as_text=True)

    assert 'class="test-banner"' in page
    assert "Test mode." in page and "no real money moves" in page


def test_each_form_gets_its_own_submission_id(client: Any, campaign: Campaign) -> None:
    first = parse_page(client.get("/donate/").get_data(as_text=True)).value("submission_id")
    second = parse_page(client.get("/donate/").get_data(as_text=True)).value("submission_id")

    assert first and second and first != second


def test_an_amount_in_the_link_that_is_a_preset_checks_that_preset(client: Any, campaign: Campaign) -> None:
    page = parse_page(client.get("/donate/?amount=50").get_data(as_text=True))

    assert page.checked("amount_choice") == "5000"
    assert page.value("custom_amount") == ""


def test_an_amount_in_the_link_that_is_no_preset_fills_in_other_amount(client: Any, campaign: Campaign) -> None:
    page = parse_page(client.get("/donate/?amount=37,50").get_data(as_text=True))

    assert page.checked("amount_choice") == "other"
    assert page.value("custom_amount") == "37.50"


def test_without_an_amount_in_the_link_the_second_preset_is_suggested(client: Any, campaign: Campaign) -> None:
    page = parse_page(client.get("/donate/?amount=not-a-number").get_data(as_text=True))

    assert page.checked("amount_choice") == "5000"


def test_frequency_in_the_link_is_checked(client: Any, campaign: Campaign) -> None:
    page = parse_page(client.get("/donate/?frequency=monthly").get_data(as_text=True))

    assert page.checked("frequency") == "monthly"


def test_currency_in_the_link_is_chosen_with_that_currencys_presets(client: Any, campaign: Campaign) -> None:
    page = parse_page(client.get("/donate/?currency=eur&amount=50").get_data(as_text=True))

    assert page.value("currency") == "EUR" and page.value("shown_currency") == "EUR"
    # The campaign names no EUR amounts: the default 10, 25, 50 and 100 are suggested.
    assert page.choices("amount_choice") == ["1000", "2500", "5000", "10000", "other"]
    assert page.checked("amount_choice") == "5000"
    assert "€50.00" in page.source


def test_campaign_in_the_link_shows_that_campaign(client: Any, campaign: Campaign) -> None:
    page = parse_page(client.get("/donate/?campaign=spring").get_data(as_text=True))

    assert page.value("campaign") == "spring"
    assert "The spring appeal" in page.source
    assert page.choices("amount_choice") == ["3000", "7000", "other"]


def test_an_unknown_campaign_in_the_link_falls_back_to_the_general_one(client: Any, campaign: Campaign) -> None:
    response = client.get("/donate/?campaign=no-such-campaign")

    assert response.status_code == 200
    page = parse_page(response.get_data(as_text=True))
    assert page.value("campaign") == "general"
    assert APPEAL_HEADING in page.source


def test_attribution_in_the_link_lands_in_hidden_fields(client: Any, campaign: Campaign) -> None:
    query = {
        "src": "https://example.org/analyses/budget-2026?x=1",
        "article": "budget-2026",
        "variant": "banner-b",
        "utm_source": "newsletter",
        "utm_medium": "email",
        "utm_campaign": "spring-2026",
    }
    page = parse_page(client.get("/donate/?" + urlencode(query)).get_data(as_text=True))

    for name, value in query.items():
        assert page.control(name).type == "hidden"
        assert page.value(name) == value


def test_hostile_attribution_is_escaped(client: Any, campaign: Campaign) -> None:
    hostile = '"><script>alert(1)</script>'
    response = client.get("/donate/?" + urlencode({"src": hostile, "utm_source": hostile}))

    source = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "<script>alert(1)" not in source
    assert "&#34;&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in source
    page = parse_page(source)
    assert page.value("src") == hostile and page.value("utm_source") == hostile


def test_over_long_attribution_is_truncated_never_refused(client: Any, campaign: Campaign) -> None:
    query = {
        "src": "https://example.org/" + "a" * 5000,
        "article": "b" * 500,
        "variant": "c" * 500,
        "utm_source": "d" * 500,
        "utm_medium": "e" * 500,
        "utm_campaign": "f" * 500,
    }
    response = client.get("/donate/?" + urlencode(query))

    assert response.status_code == 200
    page = parse_page(response.get_data(as_text=True))
    assert page.value("src") == query["src"][:2000]
    assert page.value("article") == "b" * 200
    assert page.value("variant") == "c" * 64
    for name in ("utm_source", "utm_medium", "utm_campaign"):
        assert page.value(name) == query[name][:100]


# --- Starting a gift ---------------------------------------------------------


def test_a_valid_one_time_gift_is_recorded_pending_and_sent_to_checkout(client: Any, campaign: Campaign) -> None:
    response = client.post("/donate/", data=valid_form(email=" Grace@Example.ORG ", name="Grace Hopper"))

    assert response.status_code == 303
    location = response.headers["Location"]
    assert location.startswith("/pay/test/cs_offline_")
    [gift] = all_gifts()
    assert gift.status is GiftStatus.PENDING
    assert gift.kind is GiftKind.ONE_TIME and gift.recurring_plan_id is None
    assert (gift.amount_minor, gift.currency, gift.amount_base_minor) == (5000, "PLN", 5000)
    assert gift.campaign_id == campaign.id
    assert gift.covers_fee is False
    assert gift.stripe_checkout_session_id == location.rsplit("/", 1)[1]
    assert gift.checkout_url == location
    supporter = _db.session.get(Supporter, gift.supporter_id)
    assert supporter is not None
    assert (supporter.email, supporter.email_normalised, supporter.name) == (
        "Grace@Example.ORG",
        "grace@example.org",
        "Grace Hopper",
    )


def test_a_known_supporter_is_found_by_normalised_email(client: Any, campaign: Campaign) -> None:
    known = factories.supporter(email="ada@example.org", name="Ada Lovelace")

    response = client.post("/donate/", data=valid_form(email=" Ada@Example.ORG ", name="Somebody Else"))

    assert response.status_code == 303
    [gift] = all_gifts()
    assert gift.supporter_id == known.id
    assert count(Supporter) == 1
    # Anyone can type an address into the form: a known supporter's name is not overwritten.
    assert _db.session.get(Supporter, known.id).name == "Ada Lovelace"  # type: ignore[union-attr]


def test_attribution_is_recorded_on_the_gift(client: Any, campaign: Campaign) -> None:
    attribution = {
        "src": "https://example.org/analyses/budget-2026",
        "article": "budget-2026",
        "variant": "banner-b",
        "utm_source": "newsletter",
        "utm_medium": "email",
        "utm_campaign": "spring-2026",
    }

    assert client.post("/donate/", data=valid_form(**attribution)).status_code == 303

    [gift] = all_gifts()
    assert gift.source_url == attribution["src"]
    assert gift.source_article == "budget-2026"
    assert gift.source_variant == "banner-b"
    assert (gift.utm_source, gift.utm_medium, gift.utm_campaign) == ("newsletter", "email", "spring-2026")


def test_over_long_attribution_is_truncated_on_the_gift(client: Any, campaign: Campaign) -> None:
    response = client.post("/donate/", data=valid_form(src="https://example.org/" + "a" * 3000, variant="v" * 100))

    assert response.status_code == 303
    [gift] = all_gifts()
    assert gift.source_url is not None and len(gift.source_url) == 2000
    assert gift.source_variant == "v" * 64


@pytest.mark.parametrize(("frequency", "interval"), [("monthly", PlanInterval.MONTH), ("yearly", PlanInterval.YEAR)])
def test_a_regular_gift_starts_an_incomplete_plan(
    client: Any, campaign: Campaign, frequency: str, interval: PlanInterval
) -> None:
    response = client.post("/donate/", data=valid_form(frequency=frequency))

    assert response.status_code == 303
    [gift] = all_gifts()
    assert gift.kind is GiftKind.RECURRING
    plan = _db.session.get(RecurringPlan, gift.recurring_plan_id)
    assert plan is not None
    assert plan.status is PlanStatus.INCOMPLETE
    assert plan.interval is interval
    assert (plan.amount_minor, plan.currency, plan.supporter_id, plan.campaign_id) == (
        5000,
        "PLN",
        gift.supporter_id,
        campaign.id,
    )


@pytest.mark.parametrize(
    ("typed", "minor"),
    [("25,50", 2550), ("25.50", 2550), ("1 000", 100000), ("1\u00a0000,00", 100000), ("37", 3700), (" 12,5 ", 1250)],
)
def test_a_custom_amount_is_read_the_way_donors_write_it(
    client: Any, campaign: Campaign, typed: str, minor: int
) -> None:
    response = client.post("/donate/", data=valid_form(amount_choice="other", custom_amount=typed))

    assert response.status_code == 303
    [gift] = all_gifts()
    assert gift.amount_minor == minor


def test_a_typed_amount_wins_over_the_checked_preset(client: Any, campaign: Campaign) -> None:
    assert client.post("/donate/", data=valid_form(amount_choice="2000", custom_amount="42")).status_code == 303

    [gift] = all_gifts()
    assert gift.amount_minor == 4200


def test_covering_the_fee_adds_the_estimated_fee_to_the_gift(client: Any, campaign: Campaign) -> None:
    response = client.post("/donate/", data=valid_form(covers_fee="y"))

    assert response.status_code == 303
    [gift] = all_gifts()
    fee = checkout.estimate_fee(5000, "PLN")
    assert fee > 0
    assert gift.amount_minor == 5000 + fee
    assert gift.covers_fee is True


def test_ticking_the_newsletter_records_a_request_with_the_wording_shown_and_no_consent(
    client: Any, campaign: Campaign
) -> None:
    page = parse_page(client.get("/donate/").get_data(as_text=True))
    label = re.search(r'<label for="newsletter">(.*?)</label>', page.source, re.S)
    assert label is not None
    wording = html.unescape(label.group(1)).strip()

    assert client.post("/donate/", data=valid_form(newsletter="y")).status_code == 303

    [gift] = all_gifts()
    [request] = _db.session.scalars(select(ConsentRequest)).all()
    assert (request.supporter_id, request.purpose, request.gift_id) == (gift.supporter_id, "newsletter", gift.id)
    assert request.wording == wording
    assert request.source == "donation form"
    # Double opt-in: only the address, through its e-mailed link, records the consent
    # (tests/functional/test_newsletter_optin.py).
    assert count(Consent) == 0


def test_without_the_newsletter_ticked_no_consent_is_recorded(client: Any, campaign: Campaign) -> None:
    assert client.post("/donate/", data=valid_form()).status_code == 303

    assert (count(Consent), count(ConsentRequest)) == (0, 0)
    assert (count(Gift), count(Supporter)) == (1, 1), "the gift and its supporter were recorded, only not a consent"


def test_the_same_form_sent_twice_makes_one_gift_and_the_same_checkout(client: Any, campaign: Campaign) -> None:
    first = client.post("/donate/", data=valid_form(newsletter="y"))
    second = client.post("/donate/", data=valid_form(newsletter="y"))

    assert first.status_code == second.status_code == 303
    assert first.headers["Location"] == second.headers["Location"]
    assert len(all_gifts()) == 1
    assert count(Supporter) == 1
    assert count(ConsentRequest) == 1


def test_the_same_form_with_a_changed_amount_is_a_second_gift(client: Any, campaign: Campaign) -> None:
    first = client.post("/donate/", data=valid_form(amount_choice="5000"))
    second = client.post("/donate/", data=valid_form(amount_choice="2000"))

    assert first.status_code == second.status_code == 303
    assert first.headers["Location"] != second.headers["Location"]
    assert [gift.amount_minor for gift in all_gifts()] == [5000, 2000]


def test_the_same_form_sent_after_the_gift_succeeded_goes_to_the_thank_you_page(
    client: Any, campaign: Campaign
) -> None:
    client.post("/donate/", data=valid_form())
    [gift] = all_gifts()
    gift.status = GiftStatus.SUCCEEDED
    gift.paid_at = utcnow()
    _db.session.commit()

    again = client.post("/donate/", data=valid_form())

    assert again.status_code == 303
    assert again.headers["Location"] == f"/donate/thanks?session_id={gift.stripe_checkout_session_id}"
    assert len(all_gifts()) == 1


# --- Every reason the form may refuse ----------------------------------------

REFUSALS = [
    pytest.param(
        {"amount_choice": "other", "custom_amount": "1,99"},
        "custom_amount",
        "The smallest gift we can accept online is PLN2.00.",
        id="below-stripe-minimum-pln",
    ),
    pytest.param(
        {"currency": "EUR", "shown_currency": "EUR", "amount_choice": "other", "custom_amount": "0,49"},
        "custom_amount",
        "The smallest gift we can accept online is €0.50.",
        id="below-stripe-minimum-eur",
    ),
    pytest.param(
        {"amount_choice": "other", "custom_amount": "10 000,01"},
        "custom_amount",
        "The largest gift we can accept online is PLN10,000.00. "
        "For a larger gift, please contact us about a bank transfer.",
        id="above-maximum",
    ),
    pytest.param(
        {"amount_choice": "other", "custom_amount": "-5"},
        "custom_amount",
        "The amount cannot be negative.",
        id="negative",
    ),
    pytest.param(
        {"amount_choice": "other", "custom_amount": "0"},
        "custom_amount",
        "The amount must be more than zero.",
        id="zero",
    ),
    pytest.param(
        {"amount_choice": "other", "custom_amount": "1e3"},
        "custom_amount",
        "Enter just the number, without letters or currency symbols.",
        id="exponent",
    ),
    pytest.param(
        {"amount_choice": "other", "custom_amount": "abc"},
        "custom_amount",
        "Enter just the number, without letters or currency symbols.",
        id="letters",
    ),
    # A comma before exactly three digits groups thousands ("1,000" is one thousand),
    # so "25,505" is read as 25 505 zł and refused as too large, not as too precise.
    pytest.param(
        {"amount_choice": "other", "custom_amount": "25,505"},
        "custom_amount",
        "The largest gift we can accept online is PLN10,000.00.",
        id="three-decimals-read-as-thousands",
    ),
    pytest.param(
        {"amount_choice": "other", "custom_amount": "25,5055"},
        "custom_amount",
        "PLN amounts have at most 2 decimal places.",
        id="too-many-decimals",
    ),
    pytest.param(
        {"amount_choice": "other", "custom_amount": "1 000,505"},
        "custom_amount",
        "PLN amounts have at most 2 decimal places.",
        id="grouped-with-too-many-decimals",
    ),
    pytest.param(
        {"amount_choice": "other", "custom_amount": ""},
        "custom_amount",
        "Choose an amount or enter your own.",
        id="other-without-amount",
    ),
    pytest.param({"amount_choice": None}, "custom_amount", "Choose an amount or enter your own.", id="no-amount"),
    pytest.param({"email": None}, "email", "Enter your e-mail address, so we can send a receipt.", id="missing-email"),
    pytest.param({"email": "ada@"}, "email", "Enter a valid e-mail address.", id="invalid-email"),
    pytest.param({"email": "ada.example.org"}, "email", "Enter a valid e-mail address.", id="email-without-at"),
    pytest.param({"name": None}, "name", "Enter your name.", id="missing-name"),
    pytest.param({"name": "N" * 201}, "name", "Field cannot be longer than 200 characters.", id="name-too-long"),
    pytest.param(
        {"comment": "c" * 501}, "comment", "Field cannot be longer than 500 characters.", id="comment-too-long"
    ),
    pytest.param({"name": "Ada\x00Lovelace"}, "name", "This contains characters we cannot accept.", id="nul-in-name"),
    pytest.param({"city": "War\x07saw"}, "city", "This contains characters we cannot accept.", id="bell-in-city"),
    pytest.param(
        {"dedication_kind": "memory"},
        "dedication",
        "Enter the name of the person you dedicate the gift to.",
        id="dedication-without-name",
    ),
]


@pytest.mark.parametrize(("changes", "field_id", "message"), REFUSALS)
def test_a_refused_form_says_why_next_to_the_field_and_writes_nothing(
    client: Any, campaign: Campaign, changes: dict[str, Any], field_id: str, message: str
) -> None:
    response = client.post("/donate/", data=valid_form(**changes))

    assert response.status_code == 400
    page = parse_page(response.get_data(as_text=True))
    assert any(shown.startswith(message) for shown in page.errors(field_id)), page.errors(field_id)
    control = page.control(field_id)
    assert control.attrs.get("aria-invalid") == "true"
    assert f"{field_id}-error" in (control.attrs.get("aria-describedby") or "").split()
    assert "Please check the form" in page.source and f'href="#{field_id}"' in page.source
    assert (count(Gift), count(Supporter), count(RecurringPlan), count(Consent), count(ConsentRequest)) == (0,) * 5


def test_a_refused_form_keeps_what_the_donor_typed(client: Any, campaign: Campaign) -> None:
    form = valid_form(
        email="ada@",
        amount_choice="other",
        custom_amount="25,50",
        comment="For the library",
        src="https://example.org/a",
    )

    page = parse_page(client.post("/donate/", data=form).get_data(as_text=True))

    for name in ("email", "name", "custom_amount", "comment", "src", "submission_id", "campaign"):
        assert page.value(name) == form[name]
    assert page.checked("amount_choice") == "other"


def test_an_unknown_currency_is_refused(client: Any, campaign: Campaign) -> None:
    response = client.post("/donate/", data=valid_form(currency="XXX", shown_currency="XXX"))

    assert response.status_code == 400
    page = parse_page(response.get_data(as_text=True))
    assert page.errors("currency") == ["Not a valid choice."]
    assert count(Gift) == 0


def test_an_unknown_frequency_is_refused(client: Any, campaign: Campaign) -> None:
    response = client.post("/donate/", data=valid_form(frequency="weekly"))

    assert response.status_code == 400
    page = parse_page(response.get_data(as_text=True))
    assert page.errors("frequency") == ["Not a valid choice."]
    # A radio group is described by its error through its fieldset.
    assert re.search(r'<fieldset[^>]*id="frequency"[^>]*aria-describedby="frequency-error"', page.source)
    assert count(Gift) == 0


@pytest.mark.parametrize(
    ("changes", "field_id"),
    [
        ({"currency": "XXX", "shown_currency": "XXX"}, "currency"),
        ({"country": "XX"}, "country"),
        ({"dedication_kind": "roast", "dedication": "Bob"}, "dedication_kind"),
    ],
)
def test_a_refused_select_is_marked_invalid_and_described_by_its_error(
    client: Any, campaign: Campaign, changes: dict[str, str], field_id: str
) -> None:
    response = client.post("/donate/", data=valid_form(**changes))

    assert response.status_code == 400
    page = parse_page(response.get_data(as_text=True))
    assert page.errors(field_id) == ["Not a valid choice."]
    control = page.control(field_id)
    assert control.attrs.get("aria-invalid") == "true"
    assert f"{field_id}-error" in (control.attrs.get("aria-describedby") or "").split()


def test_a_name_of_only_spaces_is_refused(client: Any, campaign: Campaign) -> None:
    response = client.post("/donate/", data=valid_form(name="   "))

    assert response.status_code == 400
    assert parse_page(response.get_data(as_text=True)).errors("name") == ["Enter your name."]
    assert count(Gift) == 0


def test_the_country_list_offers_only_countries(client: Any, campaign: Campaign) -> None:
    page = parse_page(client.get("/donate/").get_data(as_text=True))
    offered = {option.get("value") for option in page.control("country").options}
    assert {"PL", "DE", "UA", ""} <= offered

    assert offered.isdisjoint({"EU", "EZ", "UN", "QO", "ZZ", "XA", "XB"})
    assert client.post("/donate/", data=valid_form(country="ZZ")).status_code == 400


def test_a_hostile_shown_currency_is_escaped_in_the_error_message(client: Any, campaign: Campaign) -> None:
    response = client.post("/donate/", data=valid_form(shown_currency="<script>alert(1)</script>"))

    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "<script>alert(1)" not in page
    assert count(Gift) == 0
    assert (
        "The suggested amounts were in &lt;script&gt;alert(1)&lt;/script&gt;. Please choose an amount in PLN."
    ) in page


def test_a_preset_chosen_in_another_currency_shows_that_currencys_presets(client: Any, campaign: Campaign) -> None:
    # The donor saw the PLN presets, checked 50 zł, then switched the currency to EUR.
    response = client.post("/donate/", data=valid_form(currency="EUR", shown_currency="PLN", amount_choice="5000"))

    assert response.status_code == 400
    page = parse_page(response.get_data(as_text=True))
    assert page.errors("custom_amount") == ["The suggested amounts were in PLN. Please choose an amount in EUR."]
    assert page.value("currency") == "EUR" and page.value("shown_currency") == "EUR"
    assert page.choices("amount_choice") == ["1000", "2500", "5000", "10000", "other"]
    assert page.checked("amount_choice") is None
    assert count(Gift) == 0

    # Choosing one of the EUR presets now starts the gift in EUR.
    again = page.submitted()
    again["amount_choice"] = "2500"
    assert client.post("/donate/", data=again).status_code == 303
    [gift] = all_gifts()
    assert (gift.amount_minor, gift.currency) == (2500, "EUR")


# --- After checkout ----------------------------------------------------------


def start_gift(client: Any, **changes: Any) -> Gift:
    response = client.post("/donate/", data=valid_form(**changes))
    assert response.status_code == 303
    return all_gifts()[-1]


def test_thanks_for_an_unknown_session_is_a_clear_404(client: Any, campaign: Campaign) -> None:
    response = client.get("/donate/thanks?session_id=cs_offline_unknown")

    assert response.status_code == 404
    page = response.get_data(as_text=True)
    assert "We could not find this gift. If you were charged, your receipt is on its way by e-mail." in page


def test_thanks_while_the_payment_is_unconfirmed_says_processing_and_refreshes(client: Any, campaign: Campaign) -> None:
    gift = start_gift(client)

    page = client.get(f"/donate/thanks?session_id={gift.stripe_checkout_session_id}").get_data(as_text=True)

    assert "Processing your gift" in page
    assert '<meta http-equiv="refresh" content="3">' in page
    assert "PLN50.00" in page


@pytest.mark.parametrize("frequency", ["one_time", "monthly"])
def test_thanks_while_a_payment_that_settles_later_is_processing_says_it_is_on_its_way(
    client: Any, campaign: Campaign, frequency: str
) -> None:
    gift = start_gift(client, frequency=frequency)
    assert lifecycle.mark_processing(gift)
    _db.session.commit()

    page = client.get(f"/donate/thanks?session_id={gift.stripe_checkout_session_id}").get_data(as_text=True)

    assert "Your payment is on its way" in page and "Processing your gift" not in page
    assert "we will e-mail your receipt as soon as the money arrives" in page
    assert 'data-gift-status="processing"' in page
    assert '<meta http-equiv="refresh" content="30">' in page
    assert ("Your next gifts will be taken the same way" in page) is (frequency == "monthly")
    assert "Try again" not in page


def test_a_processing_payment_that_fails_shows_the_failure(client: Any, campaign: Campaign) -> None:
    gift = start_gift(client)
    lifecycle.mark_processing(gift)
    lifecycle.mark_failed(gift)
    _db.session.commit()

    page = client.get(f"/donate/thanks?session_id={gift.stripe_checkout_session_id}").get_data(as_text=True)

    assert "The payment did not go through" in page and "on its way" not in page


@pytest.mark.parametrize(
    ("frequency", "wording"),
    [
        ("one_time", '<span class="money">PLN50.00</span>, once'),
        ("monthly", '<span class="money">PLN50.00</span> every month'),
    ],
)
def test_thanks_after_success_shows_the_amount_and_receipt_number(
    client: Any, campaign: Campaign, frequency: str, wording: str
) -> None:
    gift = start_gift(client, frequency=frequency)
    gift.status = GiftStatus.SUCCEEDED
    gift.paid_at = utcnow()
    gift.receipt_number = lifecycle.receipt_number(gift)
    _db.session.commit()

    page = client.get(f"/donate/thanks?session_id={gift.stripe_checkout_session_id}").get_data(as_text=True)

    assert "Thank you!" in page
    assert wording in page
    assert f"number {gift.receipt_number}" in page
    assert "General support" in page
    assert 'http-equiv="refresh"' not in page


def test_thanks_after_a_failed_payment_offers_a_prefilled_retry(client: Any, campaign: Campaign) -> None:
    gift = start_gift(
        client,
        frequency="monthly",
        amount_choice="other",
        custom_amount="37,50",
        src="https://example.org/analyses/x",
        article="x",
    )
    gift.status = GiftStatus.FAILED
    _db.session.commit()

    page = client.get(f"/donate/thanks?session_id={gift.stripe_checkout_session_id}").get_data(as_text=True)

    assert "The payment did not go through" in page
    link = re.search(r'<a class="button" href="([^"]+)">Try again</a>', page)
    assert link is not None
    retry = html.unescape(link.group(1))
    assert urlsplit(retry).path == "/donate/"
    query = {key: values[0] for key, values in parse_qs(urlsplit(retry).query).items()}
    assert query == {
        "amount": "37.50",
        "currency": "PLN",
        "frequency": "monthly",
        "campaign": "general",
        "src": "https://example.org/analyses/x",
        "article": "x",
    }
    form = parse_page(client.get(retry).get_data(as_text=True))
    assert form.checked("frequency") == "monthly"
    assert (form.checked("amount_choice"), form.value("custom_amount")) == ("other", "37.50")
    assert form.value("src") == "https://example.org/analyses/x"


def test_cancelling_checkout_returns_to_the_prefilled_form_with_a_message(client: Any, campaign: Campaign) -> None:
    gift = start_gift(client, amount_choice="2000", frequency="yearly")

    response = client.get(f"/donate/cancelled?session_id={gift.stripe_checkout_session_id}")

    assert response.status_code == 303
    target = response.headers["Location"]
    assert urlsplit(target).path == "/donate/"
    page = parse_page(client.get(target).get_data(as_text=True))
    assert "You left the payment page. Nothing was charged; you can try again below." in page.source
    assert page.checked("amount_choice") == "2000"
    assert page.checked("frequency") == "yearly"
    assert page.value("campaign") == "general"
    # The message is shown once.
    again = client.get(target)
    assert "You left the payment page" not in again.get_data(as_text=True)
    assert again.status_code == 200 and parse_page(again.get_data(as_text=True)).value("campaign") == "general"


def test_cancelling_an_unknown_checkout_returns_to_the_form(client: Any, campaign: Campaign) -> None:
    response = client.get("/donate/cancelled?session_id=cs_offline_unknown")

    assert response.status_code == 303
    assert response.headers["Location"] == "/donate/"


@pytest.mark.parametrize(
    ("method", "path", "data", "status", "shows"),
    [
        ("get", "/donate/?campaign=gen%00eral", None, 200, APPEAL_HEADING),
        ("post", "/donate/", valid_form(campaign="gen\x00eral"), 303, "/pay/test/cs_offline_"),
        ("get", "/donate/thanks?session_id=cs%00x", None, 404, "We could not find this gift."),
        ("get", "/donate/cancelled?session_id=cs%00x", None, 303, "/donate/"),
        # NUL in the path itself: no page has one (the app answers 404 before any view)
        ("get", "/pay/test/cs%00x", None, 404, "<h1>Page not found</h1>"),
    ],
    ids=["form-campaign", "start-campaign", "thanks", "cancelled", "offline-page"],
)
def test_a_nul_character_in_a_link_is_never_a_server_error(
    client: Any, campaign: Campaign, method: str, path: str, data: dict[str, str] | None, status: int, shows: str
) -> None:
    response = getattr(client, method)(path, data=data)

    assert response.status_code in (200, 303, 404)
    # What the page itself answers (the general campaign's form, the checkout, the thank-you page's own 404).
    assert response.status_code == status
    answer = response.headers.get("Location", "") if status == 303 else response.get_data(as_text=True)
    assert shows in answer
    # The same link without its NUL leads to a page that is there, not to the router's "no page here".
    without_nul = data and {key: value.replace("\x00", "") for key, value in data.items()}
    clean = getattr(client, method)(path.replace("%00", ""), data=without_nul)
    assert "There is no page at this address" not in clean.get_data(as_text=True), clean.status_code


# --- The offline test-payment page --------------------------------------------


def test_the_offline_payment_page_offers_the_three_test_cards(client: Any, campaign: Campaign) -> None:
    gift = start_gift(client)

    response = client.get(gift.checkout_url)

    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert 'Pay <span class="money">PLN50.00</span>' in page
    for number in TEST_CARDS:
        assert f'value="{number}"' in page
    assert "4242 4242 4242 4242" in page
    assert f"/donate/cancelled?session_id={gift.stripe_checkout_session_id}" in page


def test_the_offline_payment_page_refuses_an_unknown_card(client: Any, campaign: Campaign) -> None:
    gift = start_gift(client)

    response = client.post(gift.checkout_url, data={"card": "4111111111111111"})

    assert response.status_code == 400
    assert "Choose one of the test cards." in response.get_data(as_text=True)
    assert all_gifts()[0].status is GiftStatus.PENDING


def test_the_offline_payment_page_of_a_paid_gift_goes_to_thanks(client: Any, campaign: Campaign) -> None:
    gift = start_gift(client)
    gift.status = GiftStatus.SUCCEEDED
    gift.paid_at = utcnow()
    _db.session.commit()

    response = client.get(gift.checkout_url)

    assert response.status_code == 303
    assert response.headers["Location"] == f"/donate/thanks?session_id={gift.stripe_checkout_session_id}"


def test_the_offline_payment_page_of_an_unknown_session_is_404(client: Any, campaign: Campaign) -> None:
    response = client.get("/pay/test/cs_offline_unknown")

    assert response.status_code == 404
    assert "This payment page does not exist or has expired." in response.get_data(as_text=True)


# --- CSRF and rate limits (each on an app of its own) ------------------------


@pytest.fixture
def build_app(databases: Any) -> Iterator[Callable[..., Flask]]:
    """Builds an app on a fresh, migrated database with the campaigns seeded.

    Use it at once: the rate limiter is one object shared by every app in the
    process, and building another app re-configures it (see the report).
    """
    built: list[Flask] = []

    def build(**overrides: Any) -> Flask:
        application = make_app(databases.create(), **overrides)
        with application.app_context():
            upgrade(directory=MIGRATIONS)
            seed_campaigns()
            _db.session.commit()
        built.append(application)
        return application

    yield build
    for application in built:
        with application.app_context():
            _db.engine.dispose()


def gifts_in(application: Flask) -> int:
    with application.app_context():
        return int(_db.session.scalar(select(func.count(Gift.id))) or 0)


def test_without_a_csrf_token_the_form_is_refused_with_a_clear_page(build_app: Callable[..., Flask]) -> None:
    application = build_app(WTF_CSRF_ENABLED=True)
    client = application.test_client()

    response = client.post("/donate/", data=valid_form())

    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "<h1>Bad request</h1>" in page and "The CSRF token is missing." in page
    assert gifts_in(application) == 0


def test_with_the_csrf_token_from_the_page_the_gift_starts(build_app: Callable[..., Flask]) -> None:
    application = build_app(WTF_CSRF_ENABLED=True)
    client = application.test_client()
    form = parse_page(client.get("/donate/").get_data(as_text=True)).submitted()
    assert form.get("csrf_token")
    form["email"], form["name"] = "ada@example.org", "Ada Lovelace"

    response = client.post("/donate/", data=form)

    assert response.status_code == 303
    assert response.headers["Location"].startswith("/pay/test/")
    assert gifts_in(application) == 1


def test_a_forged_csrf_token_is_refused(build_app: Callable[..., Flask]) -> None:
    application = build_app(WTF_CSRF_ENABLED=True)
    client = application.test_client()
    client.get("/donate/")

    response = client.post("/donate/", data=valid_form(csrf_token="forged"))

    assert response.status_code == 400
    assert "The CSRF token is invalid." in response.get_data(as_text=True)
    assert gifts_in(application) == 0


LIMITS = {"DONATE_LIMIT_PER_IP": "3 per hour", "DONATE_LIMIT_PER_EMAIL": "2 per hour"}
LIMITED_MESSAGE = re.compile(r"Several gifts were started from .* please wait a while before trying again\.", re.S)


def test_the_third_gift_for_one_email_within_the_hour_is_refused(build_app: Callable[..., Flask]) -> None:
    client = build_app(RATELIMIT_ENABLED=True, ENVIRON=LIMITS).test_client()

    statuses = [
        client.post("/donate/", data=valid_form(submission_id=f"s{n}", email=email)).status_code
        for n, email in enumerate(["ada@example.org", " ADA@example.org"])
    ]
    third = client.post("/donate/", data=valid_form(submission_id="s3", email="Ada@Example.org"))

    assert statuses == [303, 303]
    assert third.status_code == 429
    page = third.get_data(as_text=True)
    assert LIMITED_MESSAGE.search(page)
    # the form comes back as it was sent, saying when to try again (issue 12)
    assert "Please wait before trying again" in page and re.search(r"try again in about \d+ minutes?, at ", page)
    assert 'value="Ada@Example.org"' in page and 'value="Ada Lovelace"' in page
    assert 'class="donate-form"' in page


def test_refused_forms_do_not_count_against_the_limits(build_app: Callable[..., Flask]) -> None:
    client = build_app(RATELIMIT_ENABLED=True, ENVIRON=LIMITS).test_client()

    refused = [
        client.post("/donate/", data=valid_form(submission_id=f"bad{n}", name=None)).status_code for n in range(5)
    ]
    started = [client.post("/donate/", data=valid_form(submission_id=f"ok{n}")).status_code for n in range(2)]

    assert refused == [400] * 5
    assert started == [303, 303]


def test_the_fourth_gift_from_one_address_within_the_hour_is_refused(build_app: Callable[..., Flask]) -> None:
    application = build_app(RATELIMIT_ENABLED=True, ENVIRON=LIMITS)
    client = application.test_client()

    responses = [
        client.post("/donate/", data=valid_form(submission_id=f"s{n}", email=f"donor{n}@example.org")) for n in range(4)
    ]

    assert [response.status_code for response in responses] == [303, 303, 303, 429]
    assert LIMITED_MESSAGE.search(responses[-1].get_data(as_text=True))
    assert gifts_in(application) == 3


def test_a_blank_looking_country_choice_is_treated_as_none(client: Any, campaign: Campaign) -> None:
    """Found by the fuzz on PostgreSQL: "\\x1e" is whitespace to Python, so the optional
    select let it through, and the database's country check refused it with a 500."""
    response = client.post("/donate/", data=valid_form(country="\x1e"))
    assert response.status_code == 303
    assert count(Gift) == 1
