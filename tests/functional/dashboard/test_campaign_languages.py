"""A campaign in each language (issue 12): its name, appeal and the few words beside its
suggested amounts, written by staff per language and shown to readers of that language
on the donation form, the widget and the receipt; left empty, the default language's."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from supporters.giving import lifecycle
from supporters.models import AuditEvent, Campaign, OutboxEmail
from supporters.widget import service as widget_service
from tests import factories
from tests.functional.dashboard.test_campaigns import form_data


@pytest.fixture(autouse=True)
def fresh_widget_cache() -> Iterator[None]:
    widget_service.clear_cache()
    yield
    widget_service.clear_cache()


@pytest.fixture
def campaign(db: Any) -> Campaign:
    row = Campaign(
        slug="general",
        name="Keep our research free",
        goal_currency="PLN",
        preset_amounts={"PLN": [2000, 5000]},
        appeal_heading="Support independent analysis",
        appeal_text="Our articles are free for everyone.",
    )
    db.session.add(row)
    db.session.flush()
    return row


def edit(client: Any, campaign: Campaign, **changes: Any) -> Any:
    data = form_data(
        slug=None,
        name=campaign.name,
        goal_amount="",
        presets_PLN="20, 50",
        presets_EUR="",
        default_frequency="one_time",
        appeal_heading=campaign.appeal_heading,
        appeal_text=campaign.appeal_text,
        starts_on="",
        ends_on="",
    )
    data.update(changes)
    return client.post(f"/dashboard/campaigns/{campaign.id}/edit", data=data)


POLISH = {
    "name_pl": "Niezależne analizy",
    "appeal_heading_pl": "Wesprzyj niezależne analizy",
    "appeal_text_pl": "Nasze teksty są dla wszystkich za darmo.",
    "notes_pl_PLN": "20 = dzień sprawdzania faktów\n50 = tydzień pracy redakcji",
    "notes_en_PLN": "20 = a day of fact-checking",
}


def test_staff_write_the_campaign_in_polish_and_readers_of_each_language_see_their_own(
    db: Any, client: Any, campaign: Campaign
) -> None:
    factories.sign_in(client, factories.staff("fundraiser"))
    response = edit(client, campaign, **POLISH)
    assert response.status_code == 303, response.get_data(as_text=True)[:2000]
    db.session.refresh(campaign)
    assert campaign.texts == {
        "pl": {
            "name": "Niezależne analizy",
            "appeal_heading": "Wesprzyj niezależne analizy",
            "appeal_text": "Nasze teksty są dla wszystkich za darmo.",
            "notes": {"PLN": {"2000": "dzień sprawdzania faktów", "5000": "tydzień pracy redakcji"}},
        },
        "en": {"notes": {"PLN": {"2000": "a day of fact-checking"}}},
    }
    (event,) = db.session.scalars(select(AuditEvent).filter_by(action="campaign.update"))
    assert "texts" in event.details["changed"]
    # the edit form shows what was saved, ready to save again unchanged
    page = client.get(f"/dashboard/campaigns/{campaign.id}").get_data(as_text=True)
    assert "Wesprzyj niezależne analizy" in page and "50 = tydzień pracy redakcji" in page

    polish = client.get("/donate/?lang=pl").get_data(as_text=True)
    assert "Wesprzyj niezależne analizy" in polish and "Nasze teksty są dla wszystkich za darmo." in polish
    assert "dzień sprawdzania faktów" in polish and "tydzień pracy redakcji" in polish
    english = client.get("/donate/?lang=en").get_data(as_text=True)
    assert "Support independent analysis" in english and "Wesprzyj" not in english
    assert "a day of fact-checking" in english and "tydzień" not in english

    assert widget_service.widget_config("general", "pl")["variants"][0]["heading"] == "Wesprzyj niezależne analizy"
    assert widget_service.widget_config("general", "en")["variants"][0]["heading"] == "Support independent analysis"


def test_the_receipt_names_the_campaign_in_the_donor_s_language(db: Any, campaign: Campaign) -> None:
    campaign.texts = {"pl": {"name": "Niezależne analizy"}}
    polish = factories.gift(factories.supporter(language="pl"), campaign_id=campaign.id)
    english = factories.gift(factories.supporter(language="en"), campaign_id=campaign.id)
    lifecycle.mark_paid(polish)
    lifecycle.mark_paid(english)
    db.session.commit()
    bodies = {e.to_address: e.body_text for e in db.session.scalars(select(OutboxEmail).filter_by(kind="receipt"))}
    assert "Niezależne analizy" in bodies[polish.supporter.email]
    assert "Keep our research free" in bodies[english.supporter.email]


def test_a_translation_left_empty_falls_back_to_the_default_language(db: Any, campaign: Campaign) -> None:
    campaign.texts = {"pl": {"appeal_heading": "  "}}
    assert campaign.text("appeal_heading", "pl") == "Support independent analysis"
    assert campaign.text("name", "de") == "Keep our research free"
    assert campaign.amount_note("PLN", 2000, "pl") == ""


@pytest.mark.parametrize(
    ("note", "says"),
    [
        ("25 = not one of them", "25 is not one of the suggested amounts"),
        ("twenty = a day", "write an amount"),
        ("20 =", "write an amount"),
        ("20 = " + "x" * 61, "at most 60 characters"),
    ],
)
def test_words_beside_an_amount_that_is_not_suggested_are_refused_at_their_line(
    db: Any, client: Any, campaign: Campaign, note: str, says: str
) -> None:
    factories.sign_in(client, factories.staff("fundraiser"))
    response = edit(client, campaign, notes_pl_PLN="50 = fine\n" + note)
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "Line 2:" in page and says in page
    db.session.refresh(campaign)
    assert not campaign.texts
