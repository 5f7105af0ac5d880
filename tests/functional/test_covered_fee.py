"""The processing fee a donor chooses to cover: the form adds `estimate_fee` to the gift
and stores the total; `split_covered_fee` tells the gift and the fee apart again (the
receipt shows them apart), and a renewal of the same amount covers it as the first did."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from flask import Flask
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from supporters.giving import plans
from supporters.giving.fees import estimate_fee, split_covered_fee
from supporters.mail.receipts import receipt_dedupe_key
from supporters.models import GiftKind, OutboxEmail
from tests import factories

PAID = datetime(2026, 1, 10, 12, 0, tzinfo=UTC)


@settings(max_examples=300, deadline=None)
@given(
    gift=st.integers(min_value=1, max_value=10**9),
    currency=st.sampled_from(["PLN", "EUR", "USD", "JPY", "CZK"]),
)
def test_the_fee_added_on_the_form_is_found_again_from_the_total(app: Flask, gift: int, currency: str) -> None:
    with app.app_context():
        fee = estimate_fee(gift, currency)
        assert split_covered_fee(gift + fee, currency) == (gift, fee)


@pytest.mark.parametrize(("percent", "fixed"), [("0", 0), ("1.5", 100), ("2.9", 30), ("10", 0), ("0.25", 1)])
def test_the_split_holds_under_other_fee_settings(
    app: Flask, monkeypatch: pytest.MonkeyPatch, percent: str, fixed: int
) -> None:
    monkeypatch.setitem(app.config, "SUPPORTERS_FEE_PERCENT", percent)
    monkeypatch.setitem(app.config, "SUPPORTERS_FEE_FIXED", {"PLN": fixed})
    with app.app_context():
        totals = {}
        for gift in range(1, 3000):
            total = gift + estimate_fee(gift, "PLN")
            assert split_covered_fee(total, "PLN") == (gift, total - gift)
            totals[total] = gift
        # every other total is no gift plus its fee
        for total in range(1, max(totals)):
            if total not in totals:
                assert split_covered_fee(total, "PLN") is None


def test_a_renewal_of_the_same_amount_covers_the_fee_as_the_first_gift_did(db: Any) -> None:
    person = factories.supporter()
    plan = factories.plan(person, amount_minor=3000 + estimate_fee(3000, "PLN"))
    factories.paid_gift(
        person,
        amount_minor=plan.amount_minor,
        kind=GiftKind.RECURRING,
        recurring_plan_id=plan.id,
        covers_fee=True,
        stripe_invoice_id="in_first",
    )

    same = plans.record_instalment(
        plan, invoice_id="in_2", amount_minor=plan.amount_minor, currency="PLN", paid_at=PAID, renewal=True
    )
    changed = plans.record_instalment(
        plan, invoice_id="in_3", amount_minor=5000, currency="PLN", paid_at=PAID, renewal=True
    )

    assert same is not None and same.covers_fee is True
    assert changed is not None and changed.covers_fee is False
    db.session.commit()  # receipts are numbered and queued as the payment's transaction commits
    receipt = db.session.scalars(select(OutboxEmail).filter_by(dedupe_key=receipt_dedupe_key(same))).one()
    assert "Your gift: PLN30.00" in receipt.body_text
