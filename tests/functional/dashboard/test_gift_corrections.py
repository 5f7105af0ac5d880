"""Corrections by staff: an offline gift recorded by mistake is voided, or its amount,
date, method and reference corrected, with a reason, audited, with every total fixed
and the donor told; offline amounts and dates no one can have meant are refused; and
receipt numbers run in one sequence per year of the date received."""

from __future__ import annotations

import re
import threading
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from sqlalchemy import func, select

from supporters.campaigns.operations import campaign_totals
from supporters.config import ConfigError, load_config
from supporters.extensions import db
from supporters.giving import lifecycle, offline_gifts
from supporters.lib.errors import Refused
from supporters.models import (
    AuditEvent,
    Campaign,
    Gift,
    GiftMethod,
    GiftStatus,
    OutboxEmail,
    Supporter,
    giving,
)
from tests import factories

DAY = date.today() - timedelta(days=3)


def offline(**changes: Any) -> dict[str, str]:
    """The offline gift form, filled in validly."""
    data = {
        "email": "anna@example.org",
        "name": "Anna Kowalska",
        "amount": "1 250,50",
        "currency": "PLN",
        "method": "bank_transfer",
        "received_on": DAY.isoformat(),
        "reference": "Darowizna 2026/03",
        "campaign_id": "",
        "send_receipt": "y",
        "submission_id": f"form-{factories._numbers.__next__()}",
    }
    data.update(changes)
    return {key: value for key, value in data.items() if value is not None}


def record(client: Any, **changes: Any) -> Gift:
    response = client.post("/dashboard/gifts/new", data=offline(**changes))
    assert response.status_code == 303, response.get_data(as_text=True)[:2000]
    gift_id = int(response.headers["Location"].rsplit("/", 1)[1])
    gift = db.session.get(Gift, gift_id, populate_existing=True)
    assert gift is not None
    return gift


def page(client: Any, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    return response.get_data(as_text=True)


def seen(client: Any, url: str) -> str:
    """The fingerprint the form at `url` was shown with."""
    html = page(client, url)
    return html.split('name="seen"', 1)[1].split('value="', 1)[1].split('"', 1)[0]


def ticked(html: str, name: str) -> bool:
    """Whether the page's checkbox `name` is ticked."""
    (tag,) = re.findall(rf'<input[^>]*name="{name}"[^>]*>', html)
    return " checked" in tag


def fresh(gift: Gift) -> Gift:
    found = db.session.get(Gift, gift.id, populate_existing=True)
    assert found is not None
    return found


def totals_in_step() -> dict[Any, tuple[int, int]]:
    """The stored giving totals, checked against their recomputation (`derived rebuild`)."""
    connection = db.session.connection()
    stored = giving.stored_totals(connection)
    assert stored == giving.totals_from_gifts(connection)
    return stored


def emails(kind: str) -> list[OutboxEmail]:
    return list(db.session.scalars(select(OutboxEmail).filter_by(kind=kind).order_by(OutboxEmail.id)))


def audits(action: str) -> list[AuditEvent]:
    return list(db.session.scalars(select(AuditEvent).filter_by(action=action).order_by(AuditEvent.id)))


def count(model: Any) -> int:
    return db.session.scalar(select(func.count()).select_from(model)) or 0


def campaign() -> Campaign:
    row = Campaign(
        slug=f"c{factories._numbers.__next__()}", name="Winter appeal", goal_currency="PLN", goal_minor=10**6
    )
    db.session.add(row)
    db.session.flush()
    return row


# --- Voiding ---------------------------------------------------------------------------------


def test_a_voided_gift_counts_nowhere_keeps_its_number_is_audited_and_the_donor_is_told(
    client: Any, db: Any, fundraiser: Any
) -> None:
    appeal = campaign()
    gift = record(client, campaign_id=str(appeal.id))
    number = gift.receipt_number
    assert campaign_totals([appeal.id])[appeal.id].raised_minor == 125050
    assert sum(amount for amount, _count in totals_in_step().values()) > 0

    html = page(client, f"/dashboard/gifts/{gift.id}/void")
    assert ticked(html, "notify")
    response = client.post(
        f"/dashboard/gifts/{gift.id}/void",
        data={"reason": "Entered twice", "notify": "y", "seen": seen(client, f"/dashboard/gifts/{gift.id}/void")},
    )
    assert response.status_code == 303

    gift = fresh(gift)
    assert gift.status is GiftStatus.VOIDED and gift.void_reason == "Entered twice" and gift.voided_at
    assert gift.receipt_number == number and gift.amount_minor == 125050
    supporter = db.session.get(Supporter, gift.supporter_id, populate_existing=True)
    assert supporter.gift_count == 0 and supporter.lifetime_total_minor == 0 and supporter.last_gift_at is None
    assert all(amount == 0 and gifts == 0 for amount, gifts in totals_in_step().values())
    assert appeal.id not in campaign_totals([appeal.id])
    assert giving.rebuild(db.session.connection()) is False, "derived rebuild finds no drift"

    (notice,) = emails("receipt_cancelled")
    assert notice.to_address == "anna@example.org" and number in notice.subject and number in notice.body_text
    (event,) = audits("gift.void")
    assert event.target_id == str(gift.id) and event.details["reason"] == "Entered twice"
    assert event.details["original"] == {
        "amount_minor": 125050,
        "currency": "PLN",
        "received_on": DAY.isoformat(),
        "method": "bank_transfer",
        "reference": "Darowizna 2026/03",
        "receipt_number": number,
    }
    assert event.details["notice_queued"] is True
    detail = page(client, f"/dashboard/gifts/{gift.id}")
    assert "Voided on" in detail and "Entered twice" in detail and "gift.void" in detail
    assert f"/dashboard/gifts/{gift.id}/void" not in detail


def test_the_notice_is_offered_unticked_when_no_receipt_was_sent_and_sent_only_when_asked(
    client: Any, db: Any, fundraiser: Any
) -> None:
    gift = record(client, send_receipt=None)
    html = page(client, f"/dashboard/gifts/{gift.id}/void")
    assert not ticked(html, "notify")
    assert client.post(f"/dashboard/gifts/{gift.id}/void", data={"reason": "Test entry"}).status_code == 303
    assert emails("receipt_cancelled") == [] and fresh(gift).status is GiftStatus.VOIDED
    assert audits("gift.void")[0].details["notice_queued"] is False


def test_a_void_needs_a_reason(client: Any, db: Any, fundraiser: Any) -> None:
    gift = record(client)
    response = client.post(f"/dashboard/gifts/{gift.id}/void", data={"reason": "   ", "notify": "y"})
    assert response.status_code == 400 and "Say why, for the gift" in response.get_data(as_text=True)
    assert fresh(gift).status is GiftStatus.SUCCEEDED and audits("gift.void") == []


def test_stripe_gifts_are_refunded_not_voided_or_corrected(client: Any, db: Any, fundraiser: Any) -> None:
    gift = factories.gift(stripe_payment_intent_id="pi_corrections")
    lifecycle.mark_paid(gift)
    db.session.commit()
    for action in ("void", "correct"):
        html = page(client, f"/dashboard/gifts/{gift.id}/{action}")
        assert "a gift paid through Stripe is refunded instead" in html and 'name="reason"' not in html
        response = client.post(
            f"/dashboard/gifts/{gift.id}/{action}",
            data={"reason": "x", "amount": "1", "received_on": DAY.isoformat(), "method": "cash"},
        )
        assert response.status_code == 409
    gift = fresh(gift)
    assert gift.status is GiftStatus.SUCCEEDED and gift.amount_minor == 5000
    assert audits("gift.void") == audits("gift.correct") == []
    assert "/void" not in page(client, f"/dashboard/gifts/{gift.id}")


def test_a_voided_gift_stays_voided(client: Any, db: Any, fundraiser: Any) -> None:
    gift = record(client)
    assert client.post(f"/dashboard/gifts/{gift.id}/void", data={"reason": "Mistake", "notify": "y"}).status_code == 303
    again = client.post(f"/dashboard/gifts/{gift.id}/void", data={"reason": "Mistake", "notify": "y"})
    assert again.status_code == 409 and "This gift was voided" in again.get_data(as_text=True)
    corrected = client.post(
        f"/dashboard/gifts/{gift.id}/correct",
        data={"amount": "10", "received_on": DAY.isoformat(), "method": "cash", "reason": "Oops"},
    )
    assert corrected.status_code == 409
    assert len(audits("gift.void")) == 1 and len(emails("receipt_cancelled")) == 1
    assert fresh(gift).amount_minor == 125050


# --- Correcting ------------------------------------------------------------------------------


def correction(client: Any, gift: Gift, **changes: Any) -> dict[str, str]:
    data = {
        "amount": "1 250,50",
        "received_on": DAY.isoformat(),
        "method": "bank_transfer",
        "reference": "Darowizna 2026/03",
        "reason": "Typo in the amount",
        "notify": "y",
        "seen": seen(client, f"/dashboard/gifts/{gift.id}/correct"),
    }
    data.update(changes)
    return {key: value for key, value in data.items() if value is not None}


def test_a_correction_fixes_every_total_keeps_the_original_and_sends_a_corrected_receipt(
    client: Any, db: Any, fundraiser: Any
) -> None:
    appeal = campaign()
    gift = record(client, campaign_id=str(appeal.id))
    number = gift.receipt_number
    html = page(client, f"/dashboard/gifts/{gift.id}/correct")
    assert 'value="1 250,50"' in html or 'value="1,250.50"' in html
    assert f'value="{DAY.isoformat()}"' in html and "Darowizna 2026/03" in html
    later = DAY + timedelta(days=1) if DAY + timedelta(days=1) <= date.today() else DAY
    response = client.post(
        f"/dashboard/gifts/{gift.id}/correct",
        data=correction(
            client, gift, amount="125,05", received_on=later.isoformat(), method="cheque", reference="Cheque 17"
        ),
    )
    assert response.status_code == 303, response.get_data(as_text=True)[:2000]

    gift = fresh(gift)
    assert (gift.amount_minor, gift.amount_base_minor, gift.method, gift.offline_reference) == (
        12505,
        12505,
        GiftMethod.CHEQUE,
        "Cheque 17",
    )
    assert gift.paid_at == datetime(later.year, later.month, later.day, 12, tzinfo=UTC)
    assert gift.status is GiftStatus.SUCCEEDED and gift.receipt_number == number
    supporter = db.session.get(Supporter, gift.supporter_id, populate_existing=True)
    assert supporter.lifetime_total_minor == 12505 and supporter.gift_count == 1
    stored = totals_in_step()
    assert stored[("kind", later, "one_time")] == (12505, 1)
    assert campaign_totals([appeal.id])[appeal.id].raised_minor == 12505

    (corrected,) = emails("receipt_corrected")
    assert "Corrected receipt" in corrected.subject and number in corrected.body_text
    assert "125.05" in corrected.body_text or "125,05" in corrected.body_text
    assert f"It replaces receipt {number}" in corrected.body_text
    (event,) = audits("gift.correct")
    assert event.details["reason"] == "Typo in the amount"
    expected_changed = ["amount_minor", "received_on", "method", "reference"]
    if later == DAY:
        expected_changed.remove("received_on")
    assert event.details["changed"] == expected_changed
    assert event.details["original"]["amount_minor"] == 125050 and event.details["corrected"]["amount_minor"] == 12505
    assert event.details["original"]["reference"] == "Darowizna 2026/03"
    assert event.details["receipt_queued"] is True
    # the first recording keeps what was entered then
    assert audits("gift.record_offline")[0].details["amount_minor"] == 125050
    detail = page(client, f"/dashboard/gifts/{gift.id}")
    assert "gift.correct" in detail and "Typo in the amount" in detail
    assert "amount_minor: 125050; method: bank_transfer;" in detail, "the original values, as text"
    assert "reference: Darowizna 2026/03" in detail
    assert "{&#39;" not in detail and "{'" not in detail


def test_each_correction_sends_its_own_receipt_only_when_asked(client: Any, db: Any, fundraiser: Any) -> None:
    gift = record(client)
    assert (
        client.post(f"/dashboard/gifts/{gift.id}/correct", data=correction(client, gift, amount="100")).status_code
        == 303
    )
    assert (
        client.post(f"/dashboard/gifts/{gift.id}/correct", data=correction(client, gift, amount="200")).status_code
        == 303
    )
    assert (
        client.post(
            f"/dashboard/gifts/{gift.id}/correct", data=correction(client, gift, amount="300", notify=None)
        ).status_code
        == 303
    )
    assert len(emails("receipt_corrected")) == 2 and len(audits("gift.correct")) == 3
    assert fresh(gift).amount_minor == 30000


def test_nothing_to_correct_and_no_reason_are_refused_at_once(client: Any, db: Any, fundraiser: Any) -> None:
    gift = record(client)
    same = client.post(f"/dashboard/gifts/{gift.id}/correct", data=correction(client, gift))
    assert same.status_code == 400 and "Nothing to correct" in same.get_data(as_text=True)
    no_reason = client.post(f"/dashboard/gifts/{gift.id}/correct", data=correction(client, gift, amount="5", reason=""))
    assert no_reason.status_code == 400 and "Say why, for the gift" in no_reason.get_data(as_text=True)
    assert audits("gift.correct") == [] and emails("receipt_corrected") == [] and fresh(gift).amount_minor == 125050


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"amount": "0"}, "more than zero"),
        ({"amount": "abc"}, "without letters"),
        ({"amount": "1000000000000"}, "largest offline gift"),
        ({"received_on": (date.today() + timedelta(days=1)).isoformat()}, "cannot be in the future"),
        ({"received_on": "1999-12-31"}, "before the organisation was founded"),
        ({"method": "stripe"}, "Not a valid choice"),
        ({"received_on": "soon"}, "Enter the date the money arrived."),
    ],
)
def test_a_correction_is_checked_as_a_new_gift_is(
    client: Any, db: Any, fundraiser: Any, changes: dict[str, str], message: str
) -> None:
    gift = record(client)
    response = client.post(f"/dashboard/gifts/{gift.id}/correct", data=correction(client, gift, **changes))
    assert response.status_code == 400 and message in response.get_data(as_text=True)
    assert audits("gift.correct") == [] and fresh(gift).amount_minor == 125050


def test_a_form_left_open_while_someone_else_changed_the_gift_is_refused(client: Any, db: Any, fundraiser: Any) -> None:
    gift = record(client)
    stale = correction(client, gift, amount="10")
    assert (
        client.post(f"/dashboard/gifts/{gift.id}/correct", data=correction(client, gift, amount="20")).status_code
        == 303
    )
    response = client.post(f"/dashboard/gifts/{gift.id}/correct", data=stale)
    assert response.status_code == 409 and "Someone changed this gift" in response.get_data(as_text=True)
    void = client.post(f"/dashboard/gifts/{gift.id}/void", data={"reason": "x", "seen": stale["seen"]})
    assert void.status_code == 409
    gift = fresh(gift)
    assert gift.amount_minor == 2000 and gift.status is GiftStatus.SUCCEEDED


def test_a_date_moved_into_another_year_takes_that_years_next_number(client: Any, db: Any, fundraiser: Any) -> None:
    this_year = date.today().year - 1  # both years wholly past, whatever the day
    first = record(client, received_on=date(this_year - 1, 12, 30).isoformat())
    second = record(client, received_on=date(this_year, 1, 2).isoformat())
    assert (first.receipt_number, second.receipt_number) == (f"{this_year - 1}-000001", f"{this_year}-000001")
    response = client.post(
        f"/dashboard/gifts/{first.id}/correct",
        data=correction(client, first, received_on=date(this_year, 1, 1).isoformat(), reason="Arrived on 1 January"),
    )
    assert response.status_code == 303
    first = fresh(first)
    assert first.receipt_number == f"{this_year}-000002"
    (event,) = audits("gift.correct")
    assert event.details["replaced_receipt_number"] == f"{this_year - 1}-000001"
    third = record(client, received_on=date(this_year - 1, 11, 5).isoformat())
    assert third.receipt_number == f"{this_year - 1}-000002", "the number left behind is never given again"


def test_a_viewer_may_not_void_or_correct(client: Any, db: Any, viewer: Any) -> None:
    owner = factories.supporter()
    gift = offline_gifts.record_offline_gift(
        owner, amount_minor=5000, currency="PLN", method=GiftMethod.CASH, received_on=DAY, staff_user=None
    )
    db.session.commit()
    for action in ("void", "correct"):
        assert client.get(f"/dashboard/gifts/{gift.id}/{action}").status_code == 403
        response = client.post(
            f"/dashboard/gifts/{gift.id}/{action}",
            data={"reason": "x", "amount": "1", "received_on": DAY.isoformat(), "method": "cash"},
        )
        assert response.status_code == 403
    assert fresh(gift).status is GiftStatus.SUCCEEDED and audits("gift.void") == []
    assert "/void" not in page(client, f"/dashboard/gifts/{gift.id}")


# --- Amounts and dates no one meant -----------------------------------------------------------


def test_a_large_offline_amount_asks_to_confirm_before_it_is_recorded(client: Any, db: Any, fundraiser: Any) -> None:
    response = client.post("/dashboard/gifts/new", data=offline(amount="50 000,01", submission_id="big"))
    html = response.get_data(as_text=True)
    assert response.status_code == 400 and "tick the box to confirm" in html and 'name="confirm_amount"' in html
    assert count(Gift) == 0 and count(OutboxEmail) == 0
    confirmed = client.post(
        "/dashboard/gifts/new", data=offline(amount="50 000,01", submission_id="big", confirm_amount="y")
    )
    assert confirmed.status_code == 303
    assert db.session.scalars(select(Gift)).one().amount_minor == 5_000_001
    assert client.post("/dashboard/gifts/new", data=offline(amount="50 000")).status_code == 303  # at the threshold


def test_a_large_corrected_amount_asks_to_confirm_too(client: Any, db: Any, fundraiser: Any) -> None:
    gift = record(client)
    asked = client.post(f"/dashboard/gifts/{gift.id}/correct", data=correction(client, gift, amount="60000"))
    assert asked.status_code == 400 and 'name="confirm_amount"' in asked.get_data(as_text=True)
    assert fresh(gift).amount_minor == 125050
    done = client.post(
        f"/dashboard/gifts/{gift.id}/correct", data=correction(client, gift, amount="60000", confirm_amount="y")
    )
    assert done.status_code == 303 and fresh(gift).amount_minor == 6_000_000


def test_an_amount_above_the_upper_bound_is_refused_even_when_confirmed(client: Any, db: Any, fundraiser: Any) -> None:
    response = client.post(
        "/dashboard/gifts/new", data=offline(amount="1 000 000 000 000", currency="PLN", confirm_amount="y")
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 400 and "more than the largest offline gift" in html
    assert count(Gift) == 0 and count(OutboxEmail) == 0 and count(Supporter) == 0
    assert client.post("/dashboard/gifts/new", data=offline(amount="10 000 000", confirm_amount="y")).status_code == 303


@pytest.mark.parametrize(
    ("received_on", "message"),
    [
        ("1999-12-31", "before the organisation was founded"),
        ((date.today() + timedelta(days=1)).isoformat(), "cannot be in the future"),
    ],
)
def test_dates_before_the_founding_or_in_the_future_are_refused_at_the_field(
    client: Any, db: Any, fundraiser: Any, received_on: str, message: str
) -> None:
    response = client.post("/dashboard/gifts/new", data=offline(received_on=received_on))
    html = response.get_data(as_text=True)
    assert response.status_code == 400 and message in html
    assert html.index(message) > html.index('for="received_on"'), "the message is at the date field"
    assert count(Gift) == 0


def test_the_founding_date_is_a_setting(client: Any, db: Any, fundraiser: Any, app: Flask) -> None:
    founded = app.config["SUPPORTERS_FOUNDED_ON"]
    app.config["SUPPORTERS_FOUNDED_ON"] = DAY
    try:
        refused = client.post("/dashboard/gifts/new", data=offline(received_on=(DAY - timedelta(days=1)).isoformat()))
        assert refused.status_code == 400 and "before the organisation was founded" in refused.get_data(as_text=True)
        assert client.post("/dashboard/gifts/new", data=offline(received_on=DAY.isoformat())).status_code == 303
    finally:
        app.config["SUPPORTERS_FOUNDED_ON"] = founded


def test_the_offline_settings_are_read_and_checked(tmp_path: Any) -> None:
    config = load_config(
        tmp_path,
        {
            "SUPPORTERS_FOUNDED_ON": "2004-05-17",
            "SUPPORTERS_OFFLINE_CONFIRM_ABOVE": "1000",
            "SUPPORTERS_OFFLINE_MAX_GIFT": "50000",
        },
    )
    assert config["SUPPORTERS_FOUNDED_ON"] == date(2004, 5, 17)
    assert (config["SUPPORTERS_OFFLINE_CONFIRM_ABOVE"], config["SUPPORTERS_OFFLINE_MAX_GIFT"]) == (1000, 50000)
    defaults = load_config(tmp_path, {})
    assert defaults["SUPPORTERS_FOUNDED_ON"] == date(2000, 1, 1)
    for env in (
        {"SUPPORTERS_FOUNDED_ON": "17.05.2004"},
        {"SUPPORTERS_FOUNDED_ON": (date.today() + timedelta(days=2)).isoformat()},
        {"SUPPORTERS_OFFLINE_MAX_GIFT": "0"},
        {"SUPPORTERS_OFFLINE_CONFIRM_ABOVE": "-5"},
    ):
        with pytest.raises(ConfigError):
            load_config(tmp_path, env)


# --- Receipt numbers ---------------------------------------------------------------------------


def test_receipt_numbers_follow_the_date_received_in_one_sequence_per_year(
    client: Any, db: Any, fundraiser: Any
) -> None:
    this_year = date.today().year - 1  # both years wholly past, whatever the day
    days = [date(this_year, 1, 3), date(this_year - 1, 6, 1), date(this_year, 1, 2), date(this_year - 1, 12, 31)]
    numbers = [record(client, received_on=day.isoformat()).receipt_number for day in days]
    assert numbers == [
        f"{this_year}-000001",
        f"{this_year - 1}-000001",
        f"{this_year}-000002",
        f"{this_year - 1}-000002",
    ]


def test_a_voided_gifts_number_is_never_given_again(client: Any, db: Any, fundraiser: Any) -> None:
    gift = record(client)
    assert client.post(f"/dashboard/gifts/{gift.id}/void", data={"reason": "Mistake"}).status_code == 303
    after = record(client)
    year = DAY.year
    assert (fresh(gift).receipt_number, after.receipt_number) == (f"{year}-000001", f"{year}-000002")


def test_gifts_recorded_at_once_never_share_a_receipt_number(committed_app: Flask) -> None:
    app = committed_app
    with app.app_context():
        owners = [Supporter(email=f"at-once-{n}@example.org", name=f"At Once {n}") for n in range(8)]
        db.session.add_all(owners)
        db.session.commit()
        owner_ids = [owner.id for owner in owners]
    start = threading.Barrier(len(owner_ids))
    errors: list[BaseException] = []

    def record_three(owner_id: int) -> None:
        try:
            with app.app_context():
                start.wait(20)
                for _ in range(3):
                    owner = db.session.get(Supporter, owner_id)
                    assert owner is not None
                    offline_gifts.record_offline_gift(
                        owner,
                        amount_minor=1000,
                        currency="PLN",
                        method=GiftMethod.CASH,
                        received_on=DAY,
                        staff_user=None,
                        send_receipt=False,
                    )
                    db.session.commit()
        except BaseException as error:  # reported below, in the test's thread
            errors.append(error)

    threads = [threading.Thread(target=record_three, args=(owner_id,)) for owner_id in owner_ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    with app.app_context():
        numbers = sorted(db.session.scalars(sa.select(Gift.receipt_number)))
        assert numbers == [f"{DAY.year}-{n:06d}" for n in range(1, 25)]


def test_two_people_voiding_one_gift_at_once_void_it_once(committed_app: Flask) -> None:
    app = committed_app
    with app.app_context():
        owner = Supporter(email="twice@example.org", name="Voided Twice")
        db.session.add(owner)
        db.session.flush()
        gift = offline_gifts.record_offline_gift(
            owner, amount_minor=5000, currency="PLN", method=GiftMethod.CASH, received_on=DAY, staff_user=None
        )
        db.session.commit()
        gift_id = gift.id
    start = threading.Barrier(2)
    outcomes: list[str] = []

    def void() -> None:
        with app.test_request_context(method="POST"):  # as the staff request would be
            start.wait(20)
            found = db.session.get(Gift, gift_id)
            assert found is not None
            try:
                offline_gifts.void_offline_gift(found, reason="Entered twice", staff_user=None, notify=True)
                db.session.commit()
                outcomes.append("voided")
            except Refused as refused:
                db.session.rollback()
                outcomes.append(f"refused {refused.status}")

    threads = [threading.Thread(target=void) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(outcomes) == ["refused 409", "voided"]
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(AuditEvent).filter_by(action="gift.void")) == 1
        assert db.session.scalar(select(func.count()).select_from(OutboxEmail).filter_by(kind="receipt_cancelled")) == 1
        owner_row = db.session.scalars(select(Supporter).filter_by(email="twice@example.org")).one()
        assert owner_row.gift_count == 0 and owner_row.lifetime_total_minor == 0
        connection = db.session.connection()
        assert giving.stored_totals(connection) == giving.totals_from_gifts(connection)
