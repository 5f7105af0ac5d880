"""Merging supporters: what moves, what the survivor keeps, the totals, the audit entry;
what still leads to the survivor afterwards (a gift with the old address, a webhook for
the merged-away supporter's subscription, the donor's sign-in); and undo."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from supporters.donors import signin
from supporters.extensions import db as _db
from supporters.lib.errors import Refused
from supporters.models import (
    AuditEvent,
    Consent,
    ConsentRequest,
    DonorSignIn,
    Gift,
    GiftKind,
    RecurringPlan,
    Supporter,
    SupporterNote,
    SupporterTag,
)
from supporters.payments import gateway
from supporters.people import edits, merging
from supporters.people.queries import SupporterFilters, count_supporters
from tests import factories
from tests import stripe_events as se

DAY = datetime(2026, 3, 1, 12, tzinfo=UTC)


def fresh(row: Any) -> Any:
    _db.session.expire_all()
    return _db.session.get(type(row), row.id)


def pair() -> tuple[Supporter, Supporter]:
    """Jan twice: the older record with a postal address, the newer with a gift more."""
    older = factories.supporter(
        name="Jan Kowalski", email="jan@example.org", postal_code="00-950", city="Warszawa", language="pl"
    )
    newer = factories.supporter(name="Jan Kowalsky", email="jan.kowalski@example.com", country="PL")
    factories.paid_gift(older, paid_at=DAY, amount_minor=5000, amount_base_minor=5000)
    factories.paid_gift(newer, paid_at=DAY + timedelta(days=3), amount_minor=2000, amount_base_minor=2000)
    factories.paid_gift(newer, paid_at=DAY + timedelta(days=9), amount_minor=1000, amount_base_minor=1000)
    from supporters.giving.totals import refresh_supporter_totals

    refresh_supporter_totals(older)
    refresh_supporter_totals(newer)
    return older, newer


def test_a_merge_moves_everything_to_the_survivor_and_recomputes_the_totals(db: Any) -> None:
    older, newer = pair()
    plan = factories.plan(newer, stripe_subscription_id="sub_newer")
    _db.session.add_all(
        [
            SupporterNote(supporter_id=newer.id, body="Met at the fair"),
            Consent(supporter_id=newer.id, purpose="newsletter", granted=True, source="form", wording="Yes"),
            ConsentRequest(supporter_id=newer.id, purpose="newsletter", source="form", wording="Yes"),
            DonorSignIn(supporter_id=newer.id, token_hash="t" * 64, code_hash="c" * 64, expires_at=DAY, created_at=DAY),
        ]
    )
    older.tags.append(SupporterTag(tag="board"))
    newer.tags.extend([SupporterTag(tag="board"), SupporterTag(tag="volunteer")])
    _db.session.flush()

    merging.merge(None, [older.id, newer.id], older.id)

    for model in (Gift, RecurringPlan, SupporterNote, Consent, ConsentRequest, DonorSignIn):
        owners = set(
            _db.session.scalars(sa.select(model.supporter_id).where(model.supporter_id.in_([older.id, newer.id])))
        )
        assert owners == {older.id}, model.__name__
    survivor = fresh(older)
    assert sorted(tag.tag for tag in survivor.tags) == ["board", "volunteer"]
    assert (survivor.gift_count, survivor.lifetime_total_minor) == (3, 8000)
    assert survivor.first_gift_at == DAY and survivor.last_gift_at == DAY + timedelta(days=9)
    assert survivor.newsletter is True
    gone = fresh(newer)
    assert gone.merged_into_id == older.id
    assert (gone.gift_count, gone.lifetime_total_minor) == (0, 0)
    assert fresh(plan).supporter_id == older.id


def test_each_field_takes_the_value_picked_and_the_audit_entry_names_what_was_replaced(db: Any) -> None:
    older, newer = pair()

    entry = merging.merge(None, [older.id, newer.id], older.id, {"name": newer.id, "country": newer.id})

    survivor = fresh(older)
    assert (survivor.name, survivor.country, survivor.postal_code) == ("Jan Kowalsky", "PL", "00-950")
    assert survivor.name_sort == "jan kowalsky"
    audit = _db.session.scalars(sa.select(AuditEvent).filter_by(action="supporter.merge")).one()
    assert audit.target_id == str(older.id)
    assert audit.details["merge_id"] == entry.id
    assert audit.details["merged"] == [newer.id]
    assert audit.details["changes"] == {
        "name": {"old": "Jan Kowalski", "new": "Jan Kowalsky"},
        "country": {"old": None, "new": "PL"},
    }
    assert audit.details["moved"] == {"gifts": 2}


def test_the_e_mail_picked_from_the_other_is_swapped_so_both_addresses_lead_to_the_survivor(db: Any) -> None:
    older, newer = pair()

    merging.merge(None, [older.id, newer.id], older.id, {"email": newer.id})

    assert fresh(older).email == "jan.kowalski@example.com"
    assert fresh(newer).email == "jan@example.org"
    for address in ("jan@example.org", "jan.kowalski@example.com", " JAN@example.org "):
        assert edits.find_or_create_supporter(address, "Someone").id == older.id


def test_a_new_gift_with_the_merged_away_address_lands_on_the_survivor(db: Any) -> None:
    older, newer = pair()
    merging.merge(None, [older.id, newer.id], older.id)

    found = edits.find_or_create_supporter("jan.kowalski@example.com", "Jan K.", details={"city": "Kraków"})

    assert found.id == older.id
    assert found.city == "Warszawa"  # details fill only what is empty, as for any known supporter
    assert _db.session.scalar(sa.select(sa.func.count()).select_from(Supporter)) == 2


def test_merged_away_supporters_leave_the_list_and_its_count(db: Any) -> None:
    older, newer = pair()
    before = count_supporters(SupporterFilters())
    merging.merge(None, [older.id, newer.id], newer.id)
    assert count_supporters(SupporterFilters()) == before - 1
    assert count_supporters(SupporterFilters(q="jan@example.org")) == 0


def test_the_donor_signs_in_with_the_old_address_to_the_survivor(db: Any) -> None:
    older, newer = pair()
    merging.merge(None, [older.id, newer.id], older.id)

    made = signin.request_sign_in("jan.kowalski@example.com")

    assert made is not None
    row, _token, code = made
    assert row.supporter_id == older.id
    assert signin.use_code("jan.kowalski@example.com", code) == older.id


def test_the_survivor_without_a_stripe_customer_takes_the_merged_ones(db: Any) -> None:
    older, newer = pair()
    newer.stripe_customer_id = "cus_newer"
    _db.session.flush()

    merging.merge(None, [older.id, newer.id], older.id)

    assert fresh(older).stripe_customer_id == "cus_newer"
    assert fresh(newer).stripe_customer_id is None


def test_merging_people_already_merged_or_erased_is_refused(db: Any) -> None:
    older, newer = pair()
    third = factories.supporter(name="Jan Kowalski")
    merging.merge(None, [older.id, newer.id], older.id)
    with pytest.raises(Refused) as refused:
        merging.merge(None, [newer.id, third.id], third.id)
    assert refused.value.status == 409
    third.anonymised_at = DAY
    with pytest.raises(Refused):
        merging.merge(None, [older.id, third.id], older.id)
    with pytest.raises(Refused):
        merging.merge(None, [older.id], older.id)
    with pytest.raises(Refused):
        merging.merge(None, [older.id, 10**9], older.id)


def test_a_merged_away_supporter_cannot_be_edited(db: Any) -> None:
    older, newer = pair()
    merging.merge(None, [older.id, newer.id], older.id)
    with pytest.raises(Refused) as refused:
        edits.update_profile(None, fresh(newer), city="Gdańsk")
    assert refused.value.status == 409


def test_three_merged_into_one_and_a_later_merge_repoints_the_older_tombstones(db: Any) -> None:
    older, newer = pair()
    third = factories.supporter(name="J. Kowalski", email="jk@example.net")
    merging.merge(None, [older.id, newer.id], newer.id)
    merging.merge(None, [newer.id, third.id], third.id)

    assert fresh(older).merged_into_id == third.id
    assert edits.find_or_create_supporter("jan@example.org", "x").id == third.id
    assert fresh(third).gift_count == 3


# --- Undo ---------------------------------------------------------------------------------


def test_undo_puts_both_people_back_and_a_gift_given_since_stays_with_the_survivor(db: Any) -> None:
    older, newer = pair()
    newer.tags.append(SupporterTag(tag="volunteer"))
    _db.session.flush()
    entry = merging.merge(None, [older.id, newer.id], older.id, {"email": newer.id, "country": newer.id})
    since = factories.paid_gift(fresh(older), paid_at=DAY + timedelta(days=20), amount_minor=700, amount_base_minor=700)
    from supporters.giving.totals import refresh_supporter_totals

    refresh_supporter_totals(fresh(older))

    kept = merging.undo(None, fresh(entry))

    assert kept == []
    first, second = fresh(older), fresh(newer)
    assert (first.email, first.country, first.merged_into_id) == ("jan@example.org", None, None)
    assert (second.email, second.merged_into_id) == ("jan.kowalski@example.com", None)
    assert [tag.tag for tag in first.tags] == []
    assert (first.gift_count, first.lifetime_total_minor) == (2, 5700)
    assert (second.gift_count, second.lifetime_total_minor) == (2, 3000)
    assert fresh(since).supporter_id == older.id
    assert fresh(entry).undone_at is not None
    assert _db.session.scalars(sa.select(AuditEvent.action).filter_by(action="supporter.merge_undone")).all()
    with pytest.raises(Refused):
        merging.undo(None, fresh(entry))


def test_undo_leaves_a_field_changed_since_the_merge_and_says_so(db: Any) -> None:
    older, newer = pair()
    entry = merging.merge(None, [older.id, newer.id], older.id, {"country": newer.id})
    edits.update_profile(None, fresh(older), country="DE")

    assert merging.undo(None, fresh(entry)) == ["country"]
    assert fresh(older).country == "DE"


def test_a_merge_older_than_30_days_cannot_be_undone(db: Any) -> None:
    older, newer = pair()
    entry = merging.merge(None, [older.id, newer.id], older.id)
    entry.merged_at = datetime.now(UTC) - timedelta(days=31)
    _db.session.flush()
    assert not merging.can_undo(entry)
    with pytest.raises(Refused) as refused:
        merging.undo(None, entry)
    assert refused.value.status == 409


# --- A webhook after the merge -----------------------------------------------------------------


@pytest.fixture
def deliver(client: Any, app: Flask, db: Any) -> Any:
    secret = gateway().webhook_secret

    def _deliver(evt: dict[str, Any]) -> Any:
        response = se.post_event(client, evt, secret)
        assert response.status_code == 200, response.get_data(as_text=True)
        return response.get_json()

    return _deliver


def test_a_renewal_of_the_merged_away_supporters_subscription_lands_on_the_survivor(deliver: Any) -> None:
    older, newer = pair()
    plan = factories.plan(newer, amount_minor=3000)
    gift = factories.gift(
        newer, amount_minor=3000, amount_base_minor=3000, kind=GiftKind.RECURRING, recurring_plan_id=plan.id
    )
    gift.stripe_checkout_session_id = se.checkout_session_id(gift.id)
    _db.session.commit()
    meta = se.gift_metadata(gift.id, plan.id)
    deliver(se.event("invoice.paid", se.invoice("sub_m", 3000, "pln", "in_m1", meta, "subscription_create")))

    merging.merge(None, [older.id, newer.id], older.id)
    _db.session.commit()
    deliver(
        se.event(
            "invoice.paid",
            se.invoice(
                "sub_m",
                3000,
                "pln",
                "in_m2",
                meta,
                "subscription_cycle",
                payment_intent="pi_m2",
                paid_at=se.T0 + se.MONTH,
                period_end=se.T0 + 2 * se.MONTH,
            ),
        )
    )

    _db.session.expire_all()
    renewal = _db.session.scalars(sa.select(Gift).filter_by(stripe_invoice_id="in_m2")).one()
    assert renewal.supporter_id == older.id
    survivor = fresh(older)
    assert survivor.gift_count == 5
    assert fresh(newer).gift_count == 0


def test_undo_gives_the_stripe_customer_back(db: Any) -> None:
    older, newer = pair()
    newer.stripe_customer_id = "cus_newer"
    _db.session.flush()
    entry = merging.merge(None, [older.id, newer.id], older.id)

    merging.undo(None, entry)

    assert (fresh(older).stripe_customer_id, fresh(newer).stripe_customer_id) == (None, "cus_newer")


def test_undoing_a_later_merge_puts_the_older_tombstones_back_under_their_survivor(db: Any) -> None:
    older, newer = pair()
    third = factories.supporter(name="J. Kowalski", email="jk@example.net")
    merging.merge(None, [older.id, newer.id], newer.id)
    later = merging.merge(None, [newer.id, third.id], third.id)

    merging.undo(None, later)

    assert fresh(older).merged_into_id == newer.id
    assert fresh(newer).merged_into_id is None
    assert edits.find_or_create_supporter("jan@example.org", "x").id == newer.id
