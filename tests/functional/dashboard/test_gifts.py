"""Dashboard gifts: the filtered list and its export, one gift's story, refunds with a
confirmation step through a fake gateway, offline gifts, and hostile texts shown as text."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from supporters.extensions import db
from supporters.giving import lifecycle
from supporters.giving.stripe_events import process_event
from supporters.models import (
    AuditEvent,
    Campaign,
    Gift,
    GiftMethod,
    GiftStatus,
    OutboxEmail,
    StripeEvent,
    Supporter,
)
from tests import factories
from tests.fakes import FakeGateway

HOSTILE = '"><script>alert(1)</script><img src=x onerror=alert(2)> \u202eevil\u202c ' + "x" * 120
RTL = "مؤسسة الداعمين"


def stripe_gift(amount: int = 5000, **fields: Any) -> Gift:
    """A one-time gift paid through Stripe, counted in its supporter's totals."""
    from supporters.giving import lifecycle

    values: dict[str, Any] = {
        "stripe_payment_intent_id": f"pi_{factories._numbers.__next__()}",
        "amount_minor": amount,
        "amount_base_minor": amount,
    }
    values.update(fields)
    gift = factories.gift(**values)
    lifecycle.mark_paid(gift)
    # Committed (inside the test's outer transaction) as a real request would find it:
    # a refused request rolls back its own work only.
    db.session.commit()
    return gift


def at(days_ago: int) -> datetime:
    return datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0) - timedelta(days=days_ago)


def page(client: Any, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    return response.get_data(as_text=True)


# --- The list ----------------------------------------------------------------------------


def test_gift_list_shows_newest_first_with_supporter_amount_status_and_source(
    client: Any, db: Any, fundraiser: Any
) -> None:
    campaign = Campaign(slug="winter", name="Winter appeal", goal_currency="PLN")
    db.session.add(campaign)
    db.session.flush()
    ewa = factories.supporter(name="Ewa Older")
    jan = factories.supporter(name="Jan Newer")
    factories.paid_gift(ewa, paid_at=at(10), amount_minor=2500)
    factories.paid_gift(jan, paid_at=at(1), amount_minor=12345, campaign_id=campaign.id, source_article="baltic-grid")
    html = page(client, "/dashboard/gifts/")
    assert html.index("Jan Newer") < html.index("Ewa Older")
    assert "PLN123.45" in html and "PLN25.00" in html
    assert "Winter appeal" in html and "baltic-grid" in html and "paid" in html
    assert "2 gifts" in html


def test_filters_status_several_at_once(client: Any, db: Any, fundraiser: Any) -> None:
    factories.gift(amount_minor=1111)  # pending
    factories.paid_gift(amount_minor=2222)
    failed = factories.gift(amount_minor=3333)
    failed.status = GiftStatus.FAILED
    db.session.flush()
    html = page(client, "/dashboard/gifts/?status=pending&status=failed")
    assert "PLN11.11" in html and "PLN33.33" in html and "PLN22.22" not in html


def test_filters_dates_by_paid_date_or_made_date_for_unpaid_gifts(client: Any, db: Any, fundraiser: Any) -> None:
    factories.paid_gift(amount_minor=1111, paid_at=datetime(2026, 3, 10, 12, tzinfo=UTC))
    factories.paid_gift(amount_minor=2222, paid_at=datetime(2026, 4, 10, 12, tzinfo=UTC))
    unpaid = factories.gift(amount_minor=3333)
    unpaid.created_at = datetime(2026, 3, 20, 12, tzinfo=UTC)
    # Made in March, paid in April: its date is April.
    late = factories.paid_gift(amount_minor=4444, paid_at=datetime(2026, 4, 2, 12, tzinfo=UTC))
    late.created_at = datetime(2026, 3, 5, 12, tzinfo=UTC)
    db.session.flush()
    html = page(client, "/dashboard/gifts/?date_from=2026-03-01&date_to=2026-03-31")
    assert "PLN11.11" in html and "PLN33.33" in html
    assert "PLN22.22" not in html and "PLN44.44" not in html


def test_date_to_includes_the_whole_day_in_the_organisations_time_zone(client: Any, db: Any, fundraiser: Any) -> None:
    # 23:30 UTC on 31 March is already 1 April in Warsaw.
    factories.paid_gift(amount_minor=1111, paid_at=datetime(2026, 3, 31, 21, 30, tzinfo=UTC))
    factories.paid_gift(amount_minor=2222, paid_at=datetime(2026, 3, 31, 23, 30, tzinfo=UTC))
    html = page(client, "/dashboard/gifts/?date_to=2026-03-31")
    assert "PLN11.11" in html and "PLN22.22" not in html


def test_filters_campaign_method_kind_and_source_article(client: Any, db: Any, fundraiser: Any) -> None:
    campaign = Campaign(slug="c1", name="One", goal_currency="PLN")
    db.session.add(campaign)
    db.session.flush()
    factories.paid_gift(amount_minor=1111, campaign_id=campaign.id, source_article="a-1")
    factories.paid_gift(amount_minor=2222, method=GiftMethod.BANK_TRANSFER)
    factories.paid_gift(amount_minor=3333, source_article="a-2")
    html = page(client, f"/dashboard/gifts/?campaign={campaign.id}")
    assert "PLN11.11" in html and "PLN22.22" not in html
    html = page(client, "/dashboard/gifts/?method=bank_transfer")
    assert "PLN22.22" in html and "PLN11.11" not in html
    html = page(client, "/dashboard/gifts/?article=a-2")
    assert "PLN33.33" in html and "PLN11.11" not in html
    html = page(client, "/dashboard/gifts/?kind=recurring")
    assert "No gifts match these filters." in html


def test_amount_filter_applies_within_the_chosen_currency(client: Any, db: Any, fundraiser: Any) -> None:
    factories.paid_gift(amount_minor=2000, currency="PLN")
    factories.paid_gift(amount_minor=10000, currency="PLN")
    factories.paid_gift(amount_minor=5000, currency="EUR", amount_base_minor=None)
    html = page(client, "/dashboard/gifts/?currency=PLN&amount_min=50&amount_max=1 000,00")
    assert "PLN100.00" in html and "PLN20.00" not in html and "€50.00" not in html
    html = page(client, "/dashboard/gifts/?currency=EUR&amount_min=10")
    assert "€50.00" in html and "PLN100.00" not in html


def test_amount_without_a_currency_is_ignored_with_a_note(client: Any, db: Any, fundraiser: Any) -> None:
    factories.paid_gift(amount_minor=2000)
    html = page(client, "/dashboard/gifts/?amount_min=50")
    assert "choose a currency to filter by amount" in html
    assert "PLN20.00" in html


@pytest.mark.parametrize(
    "query",
    [
        "status=bogus",
        "date_from=31/12/2026",
        "date_to=0001-01-01",
        "campaign=abc",
        "campaign=99999999999999999999",
        "method=paypal",
        "kind=weekly",
        "currency=XYZ",
        "currency=pln&amount_min=-5",
        "currency=PLN&amount_max=1e9",
        "currency=PLN&amount_min=1.5555",
        "article=" + "a" * 300,
        "article=a%01b",
        "page=0",
        "page=-1",
        "page=abc",
        "page=99999999999999",
        "status=%01",
        "date_from=2026-02-30",
    ],
)
def test_invalid_filters_are_ignored_with_a_note_never_an_error(
    client: Any, db: Any, fundraiser: Any, query: str
) -> None:
    factories.paid_gift(amount_minor=2000)
    response = client.get(f"/dashboard/gifts/?{query}")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "gift-filter-notes" in html
    assert "PLN20.00" in html


def test_dates_the_wrong_way_round_are_swapped(client: Any, db: Any, fundraiser: Any) -> None:
    factories.paid_gift(amount_minor=1111, paid_at=datetime(2026, 3, 10, 12, tzinfo=UTC))
    html = page(client, "/dashboard/gifts/?date_from=2026-03-31&date_to=2026-03-01")
    assert "PLN11.11" in html and "swapped" in html


def test_fifty_gifts_to_a_page(client: Any, db: Any, fundraiser: Any) -> None:
    person = factories.supporter()
    for number in range(51):
        factories.paid_gift(person, paid_at=at(number), amount_minor=10000 + number)
    first = page(client, "/dashboard/gifts/")
    assert first.count('class="gift-status') == 50 and "PLN100.00" in first and "page 1 of 2" in first
    second = page(client, "/dashboard/gifts/?page=2")
    assert second.count('class="gift-status') == 1 and "PLN100.50" in second
    assert "PLN100.00" not in second


def test_filters_survive_into_page_links_and_the_export_link(client: Any, db: Any, fundraiser: Any) -> None:
    person = factories.supporter()
    for number in range(51):
        factories.paid_gift(person, paid_at=at(number))
    html = page(client, "/dashboard/gifts/?status=succeeded&currency=PLN")
    assert "/dashboard/gifts/?page=2&amp;status=succeeded&amp;currency=PLN" in html
    assert 'method="post" action="/dashboard/gifts/export.csv?status=succeeded&amp;currency=PLN"' in html


def test_hostile_names_and_texts_are_shown_as_text_in_the_list(client: Any, db: Any, fundraiser: Any) -> None:
    person = factories.supporter(name=HOSTILE)
    factories.paid_gift(person, source_article=HOSTILE[:200])
    factories.paid_gift(factories.supporter(name=RTL))
    html = page(client, "/dashboard/gifts/")
    assert "<script>alert(1)" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert f"<bdi>{RTL}</bdi>" in html


# --- Export ----------------------------------------------------------------------------


def test_export_streams_the_filtered_gifts_and_is_audited(client: Any, db: Any, fundraiser: Any) -> None:
    campaign = Campaign(slug="winter", name="Winter", goal_currency="PLN")
    db.session.add(campaign)
    db.session.flush()
    person = factories.supporter(name='=HYPERLINK("http://evil")', email="ewa@example.org")
    gift = stripe_gift(12345, supporter_id=person.id, campaign_id=campaign.id, source_article="baltic")
    factories.gift(amount_minor=999)  # pending: filtered out
    response = client.post("/dashboard/gifts/export.csv?status=succeeded")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert len(rows) == 1
    row = rows[0]
    assert row["id"] == str(gift.id) and row["amount"] == "123.45" and row["currency"] == "PLN"
    assert row["amount_base"] == "123.45" and row["refunded"] == "0.00" and row["status"] == "succeeded"
    assert row["supporter_name"].startswith("'=") and row["supporter_email"] == "ewa@example.org"
    assert row["campaign"] == "winter" and row["source_article"] == "baltic"
    assert (
        row["receipt_number"] == gift.receipt_number
        and row["stripe_payment_intent_id"] == gift.stripe_payment_intent_id
    )
    assert row["paid_at_utc"].endswith("Z")
    event = db.session.scalars(select(AuditEvent).filter_by(action="gifts.export")).one()
    assert event.details["filters"] == {"status": ["succeeded"]}


def test_export_with_bom_for_spreadsheets(client: Any, db: Any, fundraiser: Any) -> None:
    factories.paid_gift()
    body = client.post("/dashboard/gifts/export.csv", data={"bom": "1"}).get_data(as_text=True)
    assert body.startswith("\ufeffid,")


# --- One gift ---------------------------------------------------------------------------


def test_detail_shows_money_ids_receipt_and_history_in_time_order(client: Any, db: Any, fundraiser: Any) -> None:
    gift = stripe_gift(
        5000, stripe_charge_id="ch_abc", stripe_checkout_session_id="cs_abc", fee_minor=105, net_minor=4895
    )
    base = datetime(2026, 1, 1, tzinfo=UTC)
    db.session.add_all(
        [
            StripeEvent(
                id="evt_2",
                type="payment_intent.succeeded",
                payload={},
                received_at=base + timedelta(minutes=2),
                outcome=f"gift {gift.id} unchanged (succeeded)",
                gift_id=gift.id,
            ),
            StripeEvent(
                id="evt_1",
                type="checkout.session.completed",
                payload={},
                received_at=base,
                outcome=f"gift {gift.id} succeeded",
                gift_id=gift.id,
            ),
            StripeEvent(
                id="evt_other",
                type="payment_intent.succeeded",
                payload={},
                received_at=base,
                outcome=f"gift {gift.id} succeeded",
            ),  # names the gift, linked to none
            AuditEvent(
                actor="someone@example.org",
                action="gift.note",
                target_type="gift",
                target_id=str(gift.id),
                created_at=base + timedelta(minutes=1),
                details={"why": "checked"},
            ),
        ]
    )
    db.session.flush()
    html = page(client, f"/dashboard/gifts/{gift.id}")
    assert (
        gift.receipt_number in html and "ch_abc" in html and "cs_abc" in html and gift.stripe_payment_intent_id in html
    )
    assert "PLN1.05" in html and "PLN48.95" in html
    assert html.index("evt_1") < html.index("gift.note") < html.index("evt_2")
    assert "evt_other" not in html
    # Offline, Stripe never saw the payment: no link to its dashboard.
    assert "dashboard.stripe.com" not in html


def test_detail_links_to_stripes_test_dashboard_when_stripe_is_used(
    client: Any, db: Any, fundraiser: Any, gateway: FakeGateway
) -> None:
    gateway.offline = False
    gift = stripe_gift(stripe_payment_intent_id="pi_real123")
    html = page(client, f"/dashboard/gifts/{gift.id}")
    assert 'href="https://dashboard.stripe.com/test/payments/pi_real123"' in html


def test_hostile_texts_are_shown_as_text_on_the_gift_page(client: Any, db: Any, fundraiser: Any) -> None:
    person = factories.supporter(name=HOSTILE, email="x@example.org")
    gift = factories.paid_gift(
        person,
        comment=HOSTILE[:500],
        dedication=HOSTILE[:200],
        dedication_kind="memory",
        offline_reference=HOSTILE[:200],
        source_url=HOSTILE,
        source_article=RTL,
    )
    db.session.add(
        AuditEvent(
            actor="a@example.org",
            action="gift.refund",
            target_type="gift",
            target_id=str(gift.id),
            details={"note": HOSTILE},
        )
    )
    db.session.flush()
    html = page(client, f"/dashboard/gifts/{gift.id}")
    assert "<script>alert(1)" not in html and "<img src=x" not in html
    assert html.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 4
    assert RTL in html


# --- Refunds -------------------------------------------------------------------------------


def test_refund_form_offers_what_remains_refundable(client: Any, db: Any, fundraiser: Any) -> None:

    gift = stripe_gift(5000)
    lifecycle.apply_refund_total(gift, 1500)
    html = page(client, f"/dashboard/gifts/{gift.id}/refund")
    assert 'value="35.00"' in html and 'value="1500"' in html


def test_refund_asks_to_confirm_before_anything_is_refunded(
    client: Any, db: Any, fundraiser: Any, gateway: FakeGateway
) -> None:
    person = factories.supporter(name="Ewa Zielińska")
    gift = stripe_gift(5000, supporter_id=person.id)
    response = client.post(
        f"/dashboard/gifts/{gift.id}/refund",
        data={"amount": "20", "reason": "requested_by_customer", "seen_refunded": "0"},
    )
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    asked = 'Refund <span class="money">PLN20.00</span> of <span class="money">PLN50.00</span> to Ewa Zielińska?'
    assert asked in html and "This cannot be undone." in html
    assert 'name="confirm" value="yes"' in html
    assert gateway.refunds == [] and gift.refunded_minor == 0


def test_confirmed_refund_goes_through_the_gateway_and_the_webhooks_own_rule(
    client: Any, db: Any, fundraiser: Any, gateway: FakeGateway
) -> None:
    gift = stripe_gift(5000)
    supporter = db.session.get(Supporter, gift.supporter_id)
    assert supporter.lifetime_total_minor == 5000
    response = client.post(
        f"/dashboard/gifts/{gift.id}/refund",
        data={"amount": "20,00", "reason": "duplicate", "seen_refunded": "0", "confirm": "yes"},
    )
    assert response.status_code == 303 and response.headers["Location"].endswith(f"/dashboard/gifts/{gift.id}")
    assert gateway.refunds == [(gift.stripe_payment_intent_id, 2000, "duplicate", f"gift-{gift.id}-refund-2000")]
    db.session.refresh(gift)
    db.session.refresh(supporter)
    assert gift.status is GiftStatus.PARTIALLY_REFUNDED and gift.refunded_minor == 2000 and gift.refunded_at
    assert supporter.lifetime_total_minor == 3000
    event = db.session.scalars(select(AuditEvent).filter_by(action="gift.refund")).one()
    assert event.target_id == str(gift.id) and event.actor == fundraiser.email
    assert event.details["amount_minor"] == 2000 and event.details["reason"] == "duplicate"
    assert "Refunded PLN20.00" in page(client, f"/dashboard/gifts/{gift.id}")

    # The rest, then Stripe's own charge.refunded finds nothing left to do.
    response = client.post(
        f"/dashboard/gifts/{gift.id}/refund",
        data={"amount": "30", "reason": "other", "note": "asked by phone", "seen_refunded": "2000", "confirm": "yes"},
    )
    assert response.status_code == 303
    assert gateway.refunds[-1] == (gift.stripe_payment_intent_id, 3000, "asked by phone", f"gift-{gift.id}-refund-5000")
    db.session.refresh(gift)
    db.session.refresh(supporter)
    assert gift.status is GiftStatus.REFUNDED and supporter.lifetime_total_minor == 0 and supporter.gift_count == 0
    outcome = process_event(
        {
            "id": "evt_refunded",
            "type": "charge.refunded",
            "livemode": False,
            "data": {
                "object": {
                    "object": "charge",
                    "id": "ch_late",
                    "payment_intent": gift.stripe_payment_intent_id,
                    "amount_refunded": 5000,
                }
            },
        }
    )
    assert outcome == f"gift {gift.id} unchanged (refunded)"


def test_a_second_identical_submit_refunds_once(client: Any, db: Any, fundraiser: Any, gateway: FakeGateway) -> None:
    gift = stripe_gift(5000)
    data = {"amount": "10", "reason": "requested_by_customer", "seen_refunded": "0", "confirm": "yes"}
    first = client.post(f"/dashboard/gifts/{gift.id}/refund", data=data)
    second = client.post(f"/dashboard/gifts/{gift.id}/refund", data=data)
    assert first.status_code == 303 and second.status_code == 303
    assert len(gateway.refunds) == 1
    db.session.refresh(gift)
    assert gift.refunded_minor == 1000
    assert "already made" in page(client, f"/dashboard/gifts/{gift.id}")
    assert db.session.scalar(select(func.count()).select_from(AuditEvent).filter_by(action="gift.refund")) == 1


def test_a_form_left_open_while_someone_else_refunded_is_refused(
    client: Any, db: Any, fundraiser: Any, gateway: FakeGateway
) -> None:

    gift = stripe_gift(5000)
    lifecycle.apply_refund_total(gift, 1000)
    response = client.post(
        f"/dashboard/gifts/{gift.id}/refund",
        data={"amount": "25", "reason": "requested_by_customer", "seen_refunded": "0", "confirm": "yes"},
    )
    assert response.status_code == 409
    assert "refunded in the meantime" in response.get_data(as_text=True)
    assert gateway.refunds == []


@pytest.mark.parametrize(
    ("amount", "reason", "note", "message"),
    [
        ("50.01", "requested_by_customer", "", "At most PLN50.00 of this gift can still be refunded."),
        ("0", "requested_by_customer", "", "The amount must be more than zero."),
        ("-5", "requested_by_customer", "", "cannot be negative"),
        ("ten", "requested_by_customer", "", "without letters"),
        ("", "requested_by_customer", "", "Enter an amount to refund."),
        ("10", "other", "", "Say in a few words why the gift is refunded."),
        ("10", "because", "", "Not a valid choice"),
    ],
)
def test_refund_validation_errors_are_shown_on_the_form(
    client: Any, db: Any, fundraiser: Any, gateway: FakeGateway, amount: str, reason: str, note: str, message: str
) -> None:
    gift = stripe_gift(5000)
    for confirm in ("", "yes"):
        response = client.post(
            f"/dashboard/gifts/{gift.id}/refund",
            data={"amount": amount, "reason": reason, "note": note, "seen_refunded": "0", "confirm": confirm},
        )
        assert response.status_code == 400
        assert message in response.get_data(as_text=True)
    assert gateway.refunds == [] and gift.refunded_minor == 0


def test_offline_gifts_are_refunded_at_the_bank_not_here(
    client: Any, db: Any, fundraiser: Any, gateway: FakeGateway
) -> None:
    gift = factories.paid_gift(method=GiftMethod.BANK_TRANSFER)
    html = page(client, f"/dashboard/gifts/{gift.id}/refund")
    assert "returned at the bank or in person" in html and 'name="amount"' not in html
    response = client.post(
        f"/dashboard/gifts/{gift.id}/refund", data={"amount": "10", "reason": "duplicate", "confirm": "yes"}
    )
    assert response.status_code == 400 and gateway.refunds == []
    assert f"/dashboard/gifts/{gift.id}/refund" not in page(client, f"/dashboard/gifts/{gift.id}")


@pytest.mark.parametrize("status", [GiftStatus.PENDING, GiftStatus.FAILED, GiftStatus.REFUNDED])
def test_only_paid_gifts_can_be_refunded(
    client: Any, db: Any, fundraiser: Any, gateway: FakeGateway, status: GiftStatus
) -> None:
    gift = factories.gift(stripe_payment_intent_id="pi_unpaid")
    if status is GiftStatus.REFUNDED:
        lifecycle.mark_paid(gift)
        lifecycle.apply_refund_total(gift, gift.amount_minor)
    elif status is not GiftStatus.PENDING:
        gift.status = status
    db.session.flush()
    response = client.post(
        f"/dashboard/gifts/{gift.id}/refund", data={"amount": "10", "reason": "duplicate", "confirm": "yes"}
    )
    assert response.status_code == 400
    assert "Only a paid gift can be refunded." in response.get_data(as_text=True)
    assert gateway.refunds == []


def test_stripe_unavailable_changes_nothing_and_says_so(
    client: Any, db: Any, fundraiser: Any, gateway: FakeGateway
) -> None:
    gateway.fail = True
    gift = stripe_gift(5000)
    response = client.post(
        f"/dashboard/gifts/{gift.id}/refund",
        data={"amount": "10", "reason": "duplicate", "seen_refunded": "0", "confirm": "yes"},
    )
    assert response.status_code == 502
    html = response.get_data(as_text=True)
    assert "Stripe did not carry out the refund" in html and "Stripe is not answering" in html
    db.session.refresh(gift)
    assert gift.refunded_minor == 0 and gift.status is GiftStatus.SUCCEEDED
    assert db.session.scalar(select(func.count()).select_from(AuditEvent).filter_by(action="gift.refund")) == 0


# --- Offline gifts --------------------------------------------------------------------------


def offline_data(**changes: Any) -> dict[str, str]:
    data = {
        "email": "Anna@Example.org",
        "name": "Anna Kowalska",
        "amount": "1 250,50",
        "currency": "PLN",
        "method": "bank_transfer",
        "received_on": (date.today() - timedelta(days=3)).isoformat(),
        "reference": "Darowizna 2026/03",
        "campaign_id": "",
        "comment": "Thank-you call done",
        "send_receipt": "y",
        "submission_id": "form-1",
    }
    data.update(changes)
    return {key: value for key, value in data.items() if value is not None}


def test_offline_gift_is_recorded_paid_counted_receipted_and_audited(client: Any, db: Any, fundraiser: Any) -> None:
    response = client.post("/dashboard/gifts/new", data=offline_data())
    assert response.status_code == 303
    gift = db.session.scalars(select(Gift)).one()
    assert response.headers["Location"].endswith(f"/dashboard/gifts/{gift.id}")
    assert gift.status is GiftStatus.SUCCEEDED and gift.method is GiftMethod.BANK_TRANSFER
    assert gift.amount_minor == 125050 and gift.amount_base_minor == 125050 and gift.currency == "PLN"
    received = date.today() - timedelta(days=3)
    assert gift.paid_at == datetime(received.year, received.month, received.day, 12, tzinfo=UTC)
    assert gift.receipt_number == f"{received.year}-000001", "the first receipt of the year received"
    assert gift.offline_reference == "Darowizna 2026/03" and gift.comment == "Thank-you call done"
    supporter = db.session.get(Supporter, gift.supporter_id)
    assert supporter.name == "Anna Kowalska" and supporter.gift_count == 1 and supporter.lifetime_total_minor == 125050
    receipt = db.session.scalars(select(OutboxEmail)).one()
    assert receipt.to_address == "Anna@Example.org" and receipt.kind == "receipt"
    event = db.session.scalars(select(AuditEvent).filter_by(action="gift.record_offline")).one()
    assert event.target_id == str(gift.id) and event.details["receipt_queued"] is True


def test_offline_gift_for_a_known_supporter_by_id_or_email(client: Any, db: Any, fundraiser: Any) -> None:
    known = factories.supporter(email="jan@example.org", name="Jan")
    html = page(client, f"/dashboard/gifts/new?supporter_id={known.id}")
    assert "Jan" in html and f'value="{known.id}"' in html
    assert (
        client.post(
            "/dashboard/gifts/new", data=offline_data(supporter_id=str(known.id), email="", name="", submission_id="a")
        ).status_code
        == 303
    )
    assert (
        client.post(
            "/dashboard/gifts/new",
            data=offline_data(email="JAN@example.org", name="", submission_id="b", method="cash"),
        ).status_code
        == 303
    )
    assert db.session.scalar(select(func.count()).select_from(Supporter)) == 1
    assert db.session.scalar(select(func.count()).select_from(Gift).filter_by(supporter_id=known.id)) == 2
    db.session.refresh(known)
    assert known.name == "Jan" and known.gift_count == 2


def test_offline_gift_without_a_receipt_when_unticked(client: Any, db: Any, fundraiser: Any) -> None:
    data = offline_data()
    del data["send_receipt"]
    assert client.post("/dashboard/gifts/new", data=data).status_code == 303
    assert db.session.scalar(select(func.count()).select_from(OutboxEmail)) == 0
    assert db.session.scalar(select(func.count()).select_from(Gift)) == 1


def test_a_resubmitted_offline_form_records_one_gift(client: Any, db: Any, fundraiser: Any) -> None:
    first = client.post("/dashboard/gifts/new", data=offline_data())
    second = client.post("/dashboard/gifts/new", data=offline_data())
    assert first.headers["Location"] == second.headers["Location"]
    assert db.session.scalar(select(func.count()).select_from(Gift)) == 1


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"received_on": (date.today() + timedelta(days=2)).isoformat()}, "cannot be in the future"),
        ({"amount": "0"}, "The amount must be more than zero."),
        ({"amount": "12,345"}, None),  # grouped thousands: fine, see below
        ({"amount": "abc"}, "without letters"),
        ({"email": ""}, "Enter the supporter&#39;s e-mail address."),
        ({"email": "not-an-address"}, "Enter a valid e-mail address."),
        ({"name": ""}, "enter their name to add them"),
        ({"method": "stripe"}, "Not a valid choice"),
        ({"received_on": "yesterday"}, "Enter the date the money arrived."),
    ],
)
def test_offline_gift_form_refuses_what_it_cannot_record(
    client: Any, db: Any, fundraiser: Any, changes: dict[str, str], message: str | None
) -> None:
    response = client.post("/dashboard/gifts/new", data=offline_data(**changes))
    if message is None:
        assert response.status_code == 303
        return
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(Gift)) == 0


def test_offline_gift_form_escapes_what_was_typed(client: Any, db: Any, fundraiser: Any) -> None:
    response = client.post("/dashboard/gifts/new", data=offline_data(name=HOSTILE[:200], amount="x"))
    html = response.get_data(as_text=True)
    assert response.status_code == 400 and "<script>alert(1)" not in html


# --- Who may ---------------------------------------------------------------------------------


def test_a_viewer_may_look_but_not_refund_record_or_export(
    client: Any, db: Any, viewer: Any, gateway: FakeGateway
) -> None:
    gift = stripe_gift(5000)
    assert client.get("/dashboard/gifts/").status_code == 200
    html = page(client, f"/dashboard/gifts/{gift.id}")
    assert "/refund" not in html
    assert client.get(f"/dashboard/gifts/{gift.id}/refund").status_code == 403
    assert (
        client.post(
            f"/dashboard/gifts/{gift.id}/refund", data={"amount": "10", "reason": "duplicate", "confirm": "yes"}
        ).status_code
        == 403
    )
    assert client.get("/dashboard/gifts/new").status_code == 403
    assert client.post("/dashboard/gifts/new", data=offline_data()).status_code == 403
    assert client.post("/dashboard/gifts/export.csv").status_code == 403
    assert gateway.refunds == [] and gift.refunded_minor == 0
    assert db.session.scalar(select(func.count()).select_from(Gift)) == 1


def test_a_long_list_says_more_than_the_cap_and_still_pages_on(
    db: Any, client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past COUNT_CAP matching gifts the list stops counting: it says so, and Older still works."""
    from supporters.giving import staff_gifts as gift_views

    monkeypatch.setattr(gift_views, "COUNT_CAP", 3)
    monkeypatch.setattr(gift_views, "PER_PAGE", 2)
    owner = factories.supporter()
    for _ in range(5):
        factories.paid_gift(owner)
    factories.sign_in(client, factories.staff("viewer"))
    html = client.get("/dashboard/gifts/").get_data(as_text=True)
    assert "more than 3 gifts · page 1</span>" in html and 'rel="next"' in html
    last = client.get("/dashboard/gifts/?page=3").get_data(as_text=True)  # the fifth gift alone
    assert "page 3</span>" in last and 'rel="next"' not in last
    exact = client.get(f"/dashboard/gifts/?supporter_id={owner.id}&status=pending").get_data(as_text=True)
    assert "0 gifts" in exact


def test_a_gift_processing_at_the_bank_says_so_on_its_page(client: Any, db: Any, fundraiser: Any) -> None:
    gift = factories.gift(stripe_payment_intent_id="pi_debit_staff")
    lifecycle.mark_processing(gift, datetime(2026, 11, 30, 9, 0, tzinfo=UTC))
    db.session.commit()

    html = page(client, f"/dashboard/gifts/{gift.id}")

    assert "Processing at the bank since" in html and "nothing counts until it succeeds" in html
    lifecycle.mark_failed(gift)
    db.session.commit()
    assert "Processing at the bank since" not in page(client, f"/dashboard/gifts/{gift.id}")
