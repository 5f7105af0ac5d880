"""The command-line tools: demo content and staff accounts."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from supporters.models import (
    Article,
    AuditEvent,
    Campaign,
    Gift,
    GiftStatus,
    RecurringPlan,
    StaffRole,
    StaffUser,
    Supporter,
)


def counts(db: Any) -> dict[str, int]:
    return {
        model.__tablename__: db.session.scalar(select(func.count()).select_from(model))
        for model in (Campaign, Article, Supporter, Gift, RecurringPlan)
    }


def test_demo_seed_creates_original_demo_content(cli: Any, db: Any) -> None:
    result = cli.invoke(args=["demo", "seed"])
    assert result.exit_code == 0, result.output
    numbers = counts(db)
    assert numbers["campaign"] == 1 and numbers["article"] == 3
    assert 45 <= numbers["supporter"] <= 55
    assert numbers["gift"] >= numbers["supporter"]
    campaign = db.session.scalar(select(Campaign).filter_by(slug="general"))
    assert campaign.goal_minor and campaign.goal_minor > 0
    for model in (Campaign, Article, Supporter, Gift, RecurringPlan):
        assert db.session.scalar(select(func.count()).select_from(model).filter_by(is_demo=False)) == 0
    months = {gift.paid_at.strftime("%Y-%m") for gift in db.session.scalars(select(Gift))}
    assert len(months) >= 10, "gifts should spread over the last twelve months"


def test_demo_supporters_have_totals_that_match_their_gifts(cli: Any, db: Any) -> None:
    cli.invoke(args=["demo", "seed"])
    for person in db.session.scalars(select(Supporter)):
        paid = db.session.scalars(select(Gift).filter_by(supporter_id=person.id, status=GiftStatus.SUCCEEDED)).all()
        assert person.gift_count == len(paid)
        assert person.lifetime_total_minor == sum(g.amount_base_minor for g in paid)
        assert person.last_gift_at == max(g.paid_at for g in paid)


def test_demo_seed_is_idempotent(cli: Any, db: Any) -> None:
    cli.invoke(args=["demo", "seed"])
    before = counts(db)
    result = cli.invoke(args=["demo", "seed"])
    assert result.exit_code == 0
    assert counts(db) == before
    assert "0 supporter(s)" in result.output


def test_demo_seed_if_empty_leaves_a_used_database_alone(cli: Any, db: Any) -> None:
    from tests import factories

    factories.supporter()
    result = cli.invoke(args=["demo", "seed", "--if-empty"])
    assert "already has data" in result.output
    assert counts(db)["gift"] == 0


def test_staff_create_takes_the_password_from_the_environment(
    cli: Any, db: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SUPPORTERS_STAFF_PASSWORD", "correct horse battery")
    result = cli.invoke(args=["staff", "create", "Ewa@Example.org", "--role", "fundraiser"])
    assert result.exit_code == 0, result.output
    user = db.session.scalar(select(StaffUser).filter_by(email="ewa@example.org"))
    assert user.role is StaffRole.FUNDRAISER
    assert user.password_hash.startswith("$argon2id$")
    assert user.check_password("correct horse battery")
    assert not user.check_password("wrong")
    assert "correct horse battery" not in result.output
    audit = db.session.scalar(select(AuditEvent).filter_by(action="staff.create"))
    assert audit.actor == "cli" and audit.target_id == str(user.id)
    assert "correct horse battery" not in str(audit.details)


def test_staff_create_prompts_for_the_password_without_echoing_it(
    cli: Any, db: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SUPPORTERS_STAFF_PASSWORD", raising=False)
    result = cli.invoke(
        args=["staff", "create", "jan@example.org", "--role", "viewer"],
        input="a long enough secret\na long enough secret\n",
    )
    assert result.exit_code == 0, result.output
    assert "a long enough secret" not in result.output
    user = db.session.scalar(select(StaffUser).filter_by(email="jan@example.org"))
    assert user.check_password("a long enough secret")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["staff", "create", "not-an-email", "--role", "admin"], "EMAIL"),
        (["staff", "create", "a@example.org", "--role", "owner"], "owner"),
        (["staff", "create", "a@example.org"], "--role"),
    ],
)
def test_staff_create_refuses_bad_arguments(
    cli: Any, db: Any, monkeypatch: pytest.MonkeyPatch, args: list[str], message: str
) -> None:
    monkeypatch.setenv("SUPPORTERS_STAFF_PASSWORD", "correct horse battery")
    result = cli.invoke(args=args)
    assert result.exit_code != 0
    assert message in result.output
    assert db.session.scalar(select(func.count()).select_from(StaffUser)) == 0


def test_staff_create_refuses_a_short_password_and_a_duplicate(
    cli: Any, db: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SUPPORTERS_STAFF_PASSWORD", "short")
    result = cli.invoke(args=["staff", "create", "a@example.org", "--role", "admin"])
    assert result.exit_code != 0 and "at least 12" in result.output
    monkeypatch.setenv("SUPPORTERS_STAFF_PASSWORD", "long enough password")
    assert cli.invoke(args=["staff", "create", "a@example.org", "--role", "admin"]).exit_code == 0
    again = cli.invoke(args=["staff", "create", "A@example.org", "--role", "viewer"])
    assert again.exit_code != 0 and "already exists" in again.output


def test_demo_admin_is_created_once_and_its_login_printed_once(cli: Any, db: Any) -> None:
    first = cli.invoke(args=["demo", "admin"])
    assert first.exit_code == 0
    password = first.output.split("password:")[1].split()[0]
    user = db.session.scalar(select(StaffUser).filter_by(email="admin@example.org"))
    assert user.role is StaffRole.ADMIN and user.check_password(password)
    second = cli.invoke(args=["demo", "admin"])
    assert "password" not in second.output
    assert second.exit_code == 0 and "Staff accounts exist; no demo admin created." in second.output
    assert db.session.scalar(select(func.count()).select_from(StaffUser)) == 1


# --- flask stripe reconcile: --dry-run and a relative --since --------------------------------


def _unrecorded_payment(db: Any, fake: Any, days_ago: float) -> tuple[Gift, dict[str, Any]]:
    """A pending gift whose payment Stripe completed `days_ago`, and the event we never received."""
    from datetime import UTC, datetime, timedelta

    from tests import factories
    from tests import stripe_events as se

    gift = factories.gift(stripe_payment_intent_id=se.new_id("pi"))
    db.session.commit()
    created = int((datetime.now(UTC) - timedelta(days=days_ago)).timestamp())
    intent = se.payment_intent(gift.id, "succeeded", id=gift.stripe_payment_intent_id)
    event = se.event("payment_intent.succeeded", intent, created=created)
    fake.events.append(event)
    return gift, event


def _status(db: Any, gift: Gift) -> GiftStatus:
    db.session.expire_all()
    return db.session.get(Gift, gift.id).status


def test_reconcile_dry_run_says_what_it_would_do_and_changes_nothing(cli: Any, db: Any, fake_stripe: Any) -> None:
    from supporters.models import OutboxEmail, StripeEvent

    gift, event = _unrecorded_payment(db, fake_stripe, days_ago=1)

    result = cli.invoke(args=["stripe", "reconcile", "--since", "2d", "--dry-run"])

    assert result.exit_code == 0, result.output
    assert f"{event['id']} payment_intent.succeeded: gift {gift.id} succeeded" in result.output
    assert "Dry run, nothing was changed. Events: 1 would be applied" in result.output
    assert _status(db, gift) is GiftStatus.PENDING
    assert db.session.get(StripeEvent, event["id"]) is None
    assert db.session.scalar(select(func.count()).select_from(OutboxEmail)) == 0
    assert db.session.scalar(select(func.count()).select_from(AuditEvent).filter_by(action="stripe.reconcile")) == 0


def test_reconcile_applies_and_is_audited_as_the_cli(cli: Any, db: Any, fake_stripe: Any) -> None:
    gift, _event = _unrecorded_payment(db, fake_stripe, days_ago=1)

    result = cli.invoke(args=["stripe", "reconcile", "--since", "2d"])

    assert result.exit_code == 0, result.output
    assert "Events: 1 applied, 0 already recorded, 0 failed." in result.output
    assert _status(db, gift) is GiftStatus.SUCCEEDED
    audit = db.session.scalars(select(AuditEvent).filter_by(action="stripe.reconcile")).one()
    assert audit.actor == "cli" and audit.details["applied"] == 1


def test_reconcile_since_2d_looks_two_days_back_and_no_further(cli: Any, db: Any, fake_stripe: Any) -> None:
    recent, _ = _unrecorded_payment(db, fake_stripe, days_ago=1)
    older, _ = _unrecorded_payment(db, fake_stripe, days_ago=3)

    result = cli.invoke(args=["stripe", "reconcile", "--since", "2d"])

    assert "Events: 1 applied" in result.output
    assert _status(db, recent) is GiftStatus.SUCCEEDED and _status(db, older) is GiftStatus.PENDING
    assert "Events: 1 applied, 1 already recorded" in cli.invoke(args=["stripe", "reconcile", "--since", "96h"]).output
    assert _status(db, older) is GiftStatus.SUCCEEDED


@pytest.mark.parametrize(
    "since,message",
    [
        ("2x", "neither a date"),
        ("-2d", "neither a date"),
        ("٢d", "neither a date"),
        ("9999d", "reaches back more than 366 days"),
        ("2999-01-01", "is in the future"),
        ("2026-02-30", "neither a date"),
    ],
)
def test_reconcile_refuses_a_since_it_cannot_read(cli: Any, fake_stripe: Any, since: str, message: str) -> None:
    result = cli.invoke(args=["stripe", "reconcile", "--since", since])
    assert result.exit_code == 2 and message in result.output


def test_reconcile_says_when_stripe_cannot_be_reached(cli: Any, fake_stripe: Any) -> None:
    fake_stripe.fail = True
    result = cli.invoke(args=["stripe", "reconcile", "--since", "2d", "--dry-run"])
    assert result.exit_code == 1 and "Stripe could not be reached: Stripe is not answering" in result.output
