"""Gift and recurring-plan statuses move only along their transition tables."""

import pytest

from supporters.models import (
    GIFT_TRANSITIONS,
    PLAN_TRANSITIONS,
    Gift,
    GiftStatus,
    InvalidTransition,
    PlanStatus,
    RecurringPlan,
)

G = GiftStatus
P = PlanStatus

#: every allowed move of a gift, written out: a change to the model's table has to be made here too
EXPECTED_GIFT_TRANSITIONS: dict[GiftStatus, set[GiftStatus]] = {
    G.PENDING: {G.SUCCEEDED, G.FAILED, G.CANCELED},
    G.FAILED: {G.SUCCEEDED, G.CANCELED},
    G.CANCELED: {G.SUCCEEDED},
    G.SUCCEEDED: {G.PARTIALLY_REFUNDED, G.REFUNDED, G.DISPUTED, G.VOIDED},
    G.PARTIALLY_REFUNDED: {G.PARTIALLY_REFUNDED, G.REFUNDED, G.DISPUTED},
    G.DISPUTED: {G.SUCCEEDED, G.PARTIALLY_REFUNDED, G.REFUNDED},
    G.REFUNDED: set(),
    G.VOIDED: set(),
}

#: every allowed move of a recurring plan, written out
EXPECTED_PLAN_TRANSITIONS: dict[PlanStatus, set[PlanStatus]] = {
    P.INCOMPLETE: {P.ACTIVE, P.PAST_DUE, P.CANCELED},
    P.ACTIVE: {P.PAST_DUE, P.CANCELED},
    P.PAST_DUE: {P.ACTIVE, P.CANCELED},
    P.CANCELED: set(),
}

ALL_GIFT_MOVES = [(a, b) for a in GiftStatus for b in GiftStatus]
ALL_PLAN_MOVES = [(a, b) for a in PlanStatus for b in PlanStatus]


def test_the_gift_transition_table_is_the_one_written_here() -> None:
    assert {old: set(new) for old, new in GIFT_TRANSITIONS.items()} == EXPECTED_GIFT_TRANSITIONS


def test_the_plan_transition_table_is_the_one_written_here() -> None:
    assert {old: set(new) for old, new in PLAN_TRANSITIONS.items()} == EXPECTED_PLAN_TRANSITIONS


def test_the_written_tables_name_every_status() -> None:
    assert set(EXPECTED_GIFT_TRANSITIONS) == set(GiftStatus)
    assert set(EXPECTED_PLAN_TRANSITIONS) == set(PlanStatus)


def gift_in(status: GiftStatus) -> Gift:
    """A gift walked to `status` along allowed moves."""
    paths = {
        GiftStatus.PENDING: [],
        GiftStatus.SUCCEEDED: [GiftStatus.SUCCEEDED],
        GiftStatus.FAILED: [GiftStatus.FAILED],
        GiftStatus.CANCELED: [GiftStatus.CANCELED],
        GiftStatus.PARTIALLY_REFUNDED: [GiftStatus.SUCCEEDED, GiftStatus.PARTIALLY_REFUNDED],
        GiftStatus.REFUNDED: [GiftStatus.SUCCEEDED, GiftStatus.REFUNDED],
        GiftStatus.DISPUTED: [GiftStatus.SUCCEEDED, GiftStatus.DISPUTED],
        GiftStatus.VOIDED: [GiftStatus.SUCCEEDED, GiftStatus.VOIDED],
    }
    gift = Gift(amount_minor=100, currency="PLN")
    for step in paths[status]:
        gift.status = step
    return gift


@pytest.mark.parametrize(("old", "new"), ALL_GIFT_MOVES, ids=lambda s: s.value)
def test_gift_moves_follow_the_transition_table(old: GiftStatus, new: GiftStatus) -> None:
    gift = gift_in(old)
    assert (new in GIFT_TRANSITIONS[old]) == (new in EXPECTED_GIFT_TRANSITIONS[old])
    if new in GIFT_TRANSITIONS[old]:
        gift.status = new
        assert gift.status is new
    else:
        with pytest.raises(InvalidTransition):
            gift.status = new
        assert gift.status is old


def test_a_gift_cannot_be_paid_twice() -> None:
    gift = gift_in(GiftStatus.SUCCEEDED)
    with pytest.raises(InvalidTransition, match="succeeded to succeeded"):
        gift.status = GiftStatus.SUCCEEDED


def test_a_paid_gift_never_goes_back_to_pending() -> None:
    for status in (GiftStatus.SUCCEEDED, GiftStatus.REFUNDED, GiftStatus.FAILED):
        with pytest.raises(InvalidTransition):
            gift_in(status).status = GiftStatus.PENDING


def test_a_new_gift_starts_pending() -> None:
    assert Gift(amount_minor=100, currency="PLN").status is GiftStatus.PENDING


def test_an_offline_gift_may_start_succeeded_but_not_refunded() -> None:
    assert Gift(status=GiftStatus.SUCCEEDED).status is GiftStatus.SUCCEEDED
    with pytest.raises(InvalidTransition, match="cannot start as refunded"):
        Gift(status=GiftStatus.REFUNDED)


def test_unknown_status_is_refused() -> None:
    with pytest.raises(ValueError):
        Gift(status="paid")


@pytest.mark.parametrize(("old", "new"), ALL_PLAN_MOVES, ids=lambda s: s.value)
def test_plan_moves_follow_the_transition_table(old: PlanStatus, new: PlanStatus) -> None:
    plan = RecurringPlan(amount_minor=100, currency="PLN", interval="month")
    if old is not PlanStatus.INCOMPLETE:
        if old is PlanStatus.PAST_DUE:
            plan.status = PlanStatus.ACTIVE
        plan.status = old
    assert (new in PLAN_TRANSITIONS[old]) == (new in EXPECTED_PLAN_TRANSITIONS[old])
    if new in PLAN_TRANSITIONS[old]:
        plan.status = new
        assert plan.status is new
    else:
        with pytest.raises(InvalidTransition):
            plan.status = new


def test_a_canceled_plan_stays_canceled() -> None:
    plan = RecurringPlan(amount_minor=100, currency="PLN", interval="month")
    plan.status = PlanStatus.CANCELED
    for status in PlanStatus:
        with pytest.raises(InvalidTransition):
            plan.status = status
