"""Dashboard campaigns: the list with what each raised, creating and changing campaigns
and their appeal variants, validation, the audit trail, and hostile texts shown as text."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest
from sqlalchemy import select

from supporters.campaigns import operations as service
from supporters.lib.errors import Refused
from supporters.models import AppealVariant, AuditEvent, Campaign, Frequency, GiftStatus
from supporters.widget import service as widget_service
from tests import factories

HOSTILE = '"><script>alert(1)</script><img src=x onerror=alert(2)> \u202eevil\u202c ' + "x" * 150


@pytest.fixture(autouse=True)
def fresh_widget_cache() -> Iterator[None]:
    widget_service.clear_cache()
    yield
    widget_service.clear_cache()


@pytest.fixture
def campaign(db: Any) -> Campaign:
    row = Campaign(
        slug="baltic",
        name="Baltic programme",
        goal_minor=100_000,
        goal_currency="PLN",
        preset_amounts={"PLN": [2000, 5000]},
        appeal_heading="Fund the Baltic desk",
        appeal_text="Plain words",
        variants=[AppealVariant(key="a", heading="Heading A", text="Text A")],
    )
    db.session.add(row)
    db.session.flush()
    return row


def form_data(**changes: Any) -> dict[str, str]:
    data = {
        "slug": "winter-appeal",
        "name": "Winter appeal",
        "goal_amount": "50 000",
        "goal_currency": "PLN",
        "presets_PLN": "20, 50, 100",
        "presets_EUR": "5; 10,50",
        "presets_USD": "",
        "default_frequency": "monthly",
        "appeal_heading": "Keep us writing",
        "appeal_text": "Line one\r\nLine two",
        "starts_on": "2026-01-01",
        "ends_on": "2026-03-31",
        "active": "y",
    }
    data.update(changes)
    return {key: value for key, value in data.items() if value is not None}


def audit_events(db: Any, action: str) -> list[AuditEvent]:
    return list(db.session.scalars(select(AuditEvent).filter_by(action=action)))


# --- the list ---------------------------------------------------------------------------------------------------


def test_the_list_shows_goal_raised_net_of_refunds_and_distinct_supporters(
    db: Any, client: Any, campaign: Campaign
) -> None:
    person = factories.supporter()
    factories.paid_gift(person, campaign_id=campaign.id, amount_minor=10_000, amount_base_minor=10_000)
    refunded = factories.paid_gift(person, campaign_id=campaign.id, amount_minor=4_000, amount_base_minor=4_000)
    refunded.refunded_minor = 1_000
    refunded.status = GiftStatus.PARTIALLY_REFUNDED
    factories.paid_gift(campaign_id=campaign.id, amount_minor=1_000, currency="EUR", amount_base_minor=4_300)
    factories.gift(campaign_id=campaign.id, amount_minor=99_900, amount_base_minor=99_900)  # pending: not counted
    db.session.flush()
    factories.sign_in(client, factories.staff("viewer"))

    page = client.get("/dashboard/campaigns/").get_data(as_text=True)

    assert "Baltic programme" in page and "PLN1,000.00" in page  # the goal
    assert "PLN173.00" in page  # 100 + (40 - 10) + 43
    assert service.campaign_totals([campaign.id])[campaign.id] == service.CampaignTotals(17_300, 2)
    assert 'value="17"' in page  # 17 % of the goal on the bar


def test_raised_and_supporters_are_what_the_widget_shows(db: Any, client: Any, campaign: Campaign) -> None:
    for amount in (2_000, 3_050):
        factories.paid_gift(campaign_id=campaign.id, amount_minor=amount, amount_base_minor=amount)
    totals = service.campaign_totals([campaign.id])[campaign.id]
    progress = client.get("/widget/config/baltic.json?lang=en").get_json()["progress"]
    assert progress["supporters"] == totals.supporters == 2
    assert progress["raised_label"] == "PLN50" and totals.raised_minor == 5_050
    assert progress["percent"] == round(100 * totals.raised_minor / campaign.goal_minor)


def test_a_viewer_sees_the_campaign_read_only_and_cannot_save(db: Any, client: Any, campaign: Campaign) -> None:
    factories.sign_in(client, factories.staff("viewer"))
    page = client.get(f"/dashboard/campaigns/{campaign.id}").get_data(as_text=True)
    assert "Fund the Baltic desk" in page and "20, 50" in page
    assert "disabled" in page and "Save campaign" not in page and "Add variant" not in page
    assert client.post(f"/dashboard/campaigns/{campaign.id}/edit", data=form_data()).status_code == 403
    assert client.get("/dashboard/campaigns/new").status_code == 403


# --- creating and changing --------------------------------------------------------------------------------------


def test_creating_a_campaign_saves_every_field_audits_it_and_commits(db: Any, client: Any, fundraiser: Any) -> None:
    response = client.post("/dashboard/campaigns/new", data=form_data())

    created = db.session.scalars(select(Campaign).filter_by(slug="winter-appeal")).one()
    assert response.status_code == 303 and response.headers["Location"] == f"/dashboard/campaigns/{created.id}"
    assert created.name == "Winter appeal" and created.goal_minor == 5_000_000 and created.goal_currency == "PLN"
    assert created.preset_amounts == {"PLN": [2000, 5000, 10000], "EUR": [500, 1050]}
    assert created.default_frequency == Frequency.MONTHLY and created.active
    assert created.appeal_text == "Line one\nLine two"
    assert (created.starts_on, created.ends_on) == (date(2026, 1, 1), date(2026, 3, 31))
    [event] = audit_events(db, "campaign.create")
    assert event.staff_user_id == fundraiser.id and event.actor == fundraiser.email
    assert (event.target_type, event.target_id) == ("campaign", str(created.id))
    assert event.details == {"slug": "winter-appeal", "name": "Winter appeal"}


def test_the_new_campaign_is_in_the_widget_at_once(db: Any, client: Any, fundraiser: Any) -> None:
    assert client.get("/widget/config/winter-appeal.json").status_code == 404  # now cached as "no such campaign"
    client.post("/dashboard/campaigns/new", data=form_data())
    config = client.get("/widget/config/winter-appeal.json").get_json()
    assert [p["amount"] for p in config["presets"]["PLN"]] == ["20.00", "50.00", "100.00"]


def test_updating_a_campaign_audits_the_changed_fields_and_clears_the_widget_cache(
    db: Any, client: Any, fundraiser: Any, campaign: Campaign
) -> None:
    assert client.get("/widget/config/baltic.json").get_json()["variants"][0]["heading"] == "Heading A"
    data = form_data(
        slug=None,
        name="Baltic desk",
        goal_amount="1000",
        presets_PLN="20, 50",
        presets_EUR="",
        default_frequency="one_time",
        appeal_heading="Fund the Baltic desk",
        appeal_text="Plain words",
        starts_on="",
        ends_on="",
    )
    response = client.post(f"/dashboard/campaigns/{campaign.id}/edit", data=data)

    assert response.status_code == 303
    assert campaign.name == "Baltic desk" and campaign.slug == "baltic"
    [event] = audit_events(db, "campaign.update")
    assert event.details["slug"] == "baltic"
    assert event.details["changed"] == {"name": ["Baltic programme", "Baltic desk"]}
    variant = campaign.variants[0]
    client.post(
        f"/dashboard/campaigns/{campaign.id}/variants/update",
        data={
            "variant_id": variant.id,
            f"variant-{variant.id}-heading": "Heading changed",
            f"variant-{variant.id}-text": "",
            f"variant-{variant.id}-weight": "2",
            f"variant-{variant.id}-active": "y",
        },
    )
    assert client.get("/widget/config/baltic.json").get_json()["variants"][0]["heading"] == "Heading changed"


def test_saving_without_changes_writes_no_audit_event(
    db: Any, client: Any, fundraiser: Any, campaign: Campaign
) -> None:
    data = form_data(
        slug=None,
        name="Baltic programme",
        goal_amount="1000",
        presets_PLN="20, 50",
        presets_EUR="",
        default_frequency="one_time",
        appeal_heading="Fund the Baltic desk",
        appeal_text="Plain words",
        starts_on="",
        ends_on="",
    )
    assert client.post(f"/dashboard/campaigns/{campaign.id}/edit", data=data).status_code == 303
    assert audit_events(db, "campaign.update") == []
    # a save that changes something is audited under that very action
    changed = {**data, "name": "Baltic desk"}
    assert client.post(f"/dashboard/campaigns/{campaign.id}/edit", data=changed).status_code == 303
    [event] = audit_events(db, "campaign.update")
    assert event.details["changed"] == {"name": ["Baltic programme", "Baltic desk"]}


def test_suggested_amounts_in_other_currencies_are_kept(
    db: Any, client: Any, fundraiser: Any, campaign: Campaign
) -> None:
    campaign.preset_amounts = {"PLN": [2000], "GBP": [500]}
    db.session.flush()
    client.post(f"/dashboard/campaigns/{campaign.id}/edit", data=form_data(slug=None, presets_PLN="30", presets_EUR=""))
    assert campaign.preset_amounts == {"PLN": [3000], "GBP": [500]}


@pytest.mark.parametrize(
    "changes,message",
    [
        ({"slug": ""}, "Enter the campaign's address name."),
        ({"slug": "Winter Appeal"}, "Use lowercase letters a–z, digits and single hyphens"),
        ({"slug": "winter--appeal"}, "Use lowercase letters a–z, digits and single hyphens"),
        ({"slug": "a" * 65}, "Field cannot be longer than 64 characters."),
        ({"name": "  "}, "Enter the campaign's name."),
        ({"goal_amount": "-5"}, "The amount cannot be negative."),
        ({"goal_amount": "lots"}, "Enter just the number, without letters or currency symbols."),
        ({"goal_currency": "XXX"}, "Not a valid choice."),
        ({"presets_PLN": "20, 50, abc"}, "“abc”: Enter just the number, without letters or currency symbols."),
        ({"presets_PLN": "<b>9</b>"}, "“&lt;b&gt;9&lt;/b&gt;”: Enter just the number"),
        ({"presets_PLN": "1; 20"}, "Each amount must be between PLN2.00 and PLN10,000.00."),
        ({"presets_PLN": "20; 50000"}, "Each amount must be between PLN2.00 and PLN10,000.00."),
        ({"presets_EUR": "1, 2, 3, 4, 5, 6, 7, 8, 9"}, "Give at most 8 amounts."),
        ({"default_frequency": "weekly"}, "Not a valid choice."),
        ({"appeal_heading": "h" * 201}, "Field cannot be longer than 200 characters."),
        ({"appeal_text": "t" * 1001}, "Field cannot be longer than 1000 characters."),
        ({"appeal_text": "bell\x07"}, "This contains characters we cannot accept."),
        ({"starts_on": "2026-02-30"}, "Not a valid date value."),
        ({"starts_on": "2026-03-01", "ends_on": "2026-02-01"}, "The end date cannot be before the start date."),
    ],
)
def test_invalid_campaigns_are_refused_with_a_message(
    db: Any, client: Any, fundraiser: Any, changes: dict[str, str], message: str
) -> None:
    response = client.post("/dashboard/campaigns/new", data=form_data(**changes))
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    assert db.session.scalars(select(Campaign)).first() is None
    assert audit_events(db, "campaign.create") == []


def test_a_slug_in_use_is_refused(db: Any, client: Any, fundraiser: Any, campaign: Campaign) -> None:
    response = client.post("/dashboard/campaigns/new", data=form_data(slug="baltic"))
    assert response.status_code == 400
    assert "There is already a campaign with the address baltic." in response.get_data(as_text=True)


def test_an_invalid_update_is_refused_and_changes_nothing(
    db: Any, client: Any, fundraiser: Any, campaign: Campaign
) -> None:
    response = client.post(
        f"/dashboard/campaigns/{campaign.id}/edit", data=form_data(slug=None, name="Changed", presets_PLN="0")
    )
    assert response.status_code == 400
    assert "The amount must be more than zero." in response.get_data(as_text=True)
    db.session.refresh(campaign)
    assert campaign.name == "Baltic programme"


def test_presets_are_read_back_as_typed(app: Any) -> None:
    from supporters.campaigns.staff_campaigns import parse_presets, presets_text

    with app.test_request_context("/?lang=pl"):
        assert parse_presets("20, 25,50; 1 000\n100", "PLN") == [2000, 2550, 100_000, 10_000]
        assert parse_presets("20, 20, ", "PLN") == [2000]
        assert parse_presets("  ", "PLN") == []
        assert parse_presets(presets_text([2000, 2550, 100_000], "PLN"), "PLN") == [2000, 2550, 100_000]


# --- variants ---------------------------------------------------------------------------------------------------


def test_adding_changing_and_removing_variants_is_audited(
    db: Any, client: Any, fundraiser: Any, campaign: Campaign
) -> None:
    url = f"/dashboard/campaigns/{campaign.id}"
    response = client.post(
        f"{url}/variants",
        data={
            "new-variant-key": "urgent",
            "new-variant-heading": "Now",
            "new-variant-text": "Please",
            "new-variant-weight": "3",
            "new-variant-active": "y",
        },
    )
    assert response.status_code == 303
    urgent = next(v for v in campaign.variants if v.key == "urgent")
    assert (urgent.heading, urgent.text, urgent.weight, urgent.active) == ("Now", "Please", 3, True)

    response = client.post(
        f"{url}/variants/update",
        data={
            "variant_id": urgent.id,
            f"variant-{urgent.id}-heading": "Now!",
            f"variant-{urgent.id}-text": "Please",
            f"variant-{urgent.id}-weight": "5",
        },
    )
    assert response.status_code == 303
    assert (urgent.heading, urgent.weight, urgent.active) == ("Now!", 5, False)

    assert client.post(f"{url}/variants/remove", data={"variant_id": urgent.id}).status_code == 303
    assert [v.key for v in campaign.variants] == ["a"]

    [created] = audit_events(db, "variant.create")
    [updated] = audit_events(db, "variant.update")
    [removed] = audit_events(db, "variant.delete")
    assert created.details == {"campaign": "baltic", "key": "urgent", "weight": 3, "active": True}
    assert updated.details["changed"] == {"heading": ["Now", "Now!"], "weight": [3, 5], "active": [True, False]}
    assert removed.details == {"campaign": "baltic", "key": "urgent"}
    assert {e.staff_user_id for e in (created, updated, removed)} == {fundraiser.id}


@pytest.mark.parametrize(
    "changes,message",
    [
        ({"new-variant-key": ""}, "Enter a key, e.g. urgent."),
        ({"new-variant-key": "Big Key"}, "Use lowercase letters a–z, digits and single hyphens"),
        ({"new-variant-key": "a"}, "This campaign already has a variant a."),
        ({"new-variant-heading": ""}, "Enter the heading."),
        ({"new-variant-weight": "0"}, "Enter a whole number from 1 to 100."),
        ({"new-variant-weight": "101"}, "Enter a whole number from 1 to 100."),
        ({"new-variant-weight": ""}, "Enter a whole number from 1 to 100."),
        ({"new-variant-text": "t" * 1001}, "Field cannot be longer than 1000 characters."),
    ],
)
def test_invalid_variants_are_refused_with_a_message(
    db: Any, client: Any, fundraiser: Any, campaign: Campaign, changes: dict[str, str], message: str
) -> None:
    data = {"new-variant-key": "b", "new-variant-heading": "B", "new-variant-text": "", "new-variant-weight": "1"}
    data.update(changes)
    response = client.post(f"/dashboard/campaigns/{campaign.id}/variants", data=data)
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    assert [v.key for v in campaign.variants] == ["a"]


def test_a_variant_of_another_campaign_cannot_be_changed_through_this_one(
    db: Any, client: Any, fundraiser: Any, campaign: Campaign
) -> None:
    other = Campaign(
        slug="other", name="Other", goal_currency="PLN", variants=[AppealVariant(key="x", heading="Theirs", text="")]
    )
    db.session.add(other)
    db.session.flush()
    foreign = other.variants[0]
    url = f"/dashboard/campaigns/{campaign.id}/variants"
    assert client.post(f"{url}/update", data={"variant_id": foreign.id}).status_code == 404
    assert client.post(f"{url}/remove", data={"variant_id": foreign.id}).status_code == 404
    assert client.post(f"{url}/remove", data={"variant_id": "x"}).status_code == 400
    assert [v.key for v in other.variants] == ["x"]
    # the same addresses do reach this campaign's own variant
    own = campaign.variants[0]
    assert client.post(f"{url}/update", data={"variant_id": own.id}).status_code == 400  # found, but no heading sent
    assert client.post(f"{url}/remove", data={"variant_id": own.id}).status_code == 303
    assert campaign.variants == []


# --- hostile texts ----------------------------------------------------------------------------------------------


def test_hostile_campaign_and_appeal_texts_are_shown_as_text_everywhere(
    db: Any, client: Any, fundraiser: Any, app: Any
) -> None:
    response = client.post(
        "/dashboard/campaigns/new",
        data=form_data(name=HOSTILE[:200], appeal_heading=HOSTILE[:200], appeal_text=HOSTILE),
    )
    assert response.status_code == 303
    created = db.session.scalars(select(Campaign).filter_by(slug="winter-appeal")).one()
    client.post(
        f"/dashboard/campaigns/{created.id}/variants",
        data={
            "new-variant-key": "evil",
            "new-variant-heading": HOSTILE[:200],
            "new-variant-text": HOSTILE,
            "new-variant-weight": "1",
            "new-variant-active": "y",
        },
    )

    admin = app.test_client()
    factories.sign_in(admin, factories.staff("admin"))
    pages = [
        (client, "/dashboard/campaigns/"),
        (client, f"/dashboard/campaigns/{created.id}"),
        (client, "/dashboard/articles/new"),
        (admin, "/dashboard/audit/"),
    ]
    for reader, url in pages:
        page = reader.get(url).get_data(as_text=True)
        assert "<script>alert" not in page and "<img src=x" not in page and "onerror=alert(2)>" not in page, url
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page, url
        assert "\u202eevil" in page, url

    config = client.get("/widget/config/winter-appeal.json")
    assert config.mimetype == "application/json" and config.headers["X-Content-Type-Options"] == "nosniff"
    data = json.loads(config.get_data(as_text=True))
    assert data["variants"][0]["heading"] == HOSTILE[:200]  # the very text, for the card's textContent
    assert data["variants"][0]["text"] == HOSTILE


def test_a_slug_or_key_taken_at_the_last_moment_is_refused_not_a_crash(
    db: Any, app: Any, campaign: Campaign, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy import insert

    values = service.CampaignValues(
        name="N",
        goal_minor=None,
        goal_currency="PLN",
        preset_amounts={},
        default_frequency=Frequency.ONE_TIME,
        appeal_heading="",
        appeal_text="",
        starts_on=None,
        ends_on=None,
        active=True,
    )
    with app.test_request_context():
        monkeypatch.setattr(service, "slug_taken", lambda slug: False)  # another request saved it after our check
        with pytest.raises(Refused):
            service.create_campaign(None, "baltic", values)
        db.session.execute(
            insert(AppealVariant).values(
                campaign_id=campaign.id, key="late", heading="H", text="", weight=1, active=True
            )
        )
        with pytest.raises(Refused):
            service.add_variant(None, campaign, "late", service.VariantValues("H", "", 1, True))
        assert sorted(db.session.scalars(select(AppealVariant.key).filter_by(campaign_id=campaign.id))) == ["a", "late"]
        assert db.session.scalars(select(Campaign)).all() == [campaign]
