"""Erasure (GDPR Art. 17) with the ledger kept for the books, and the purge after the
retention period (docs/privacy.md).

Everything personal about the person goes, wherever it was (the test searches every
column of every table for it); the gifts' money stays, so every total is the same; the
Stripe customer is deleted first, and a Stripe failure erases nothing; the same address
giving again is a new supporter; `flask privacy purge` removes the rest once the
retention period is over, and not a day before.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from supporters.campaigns.operations import campaign_totals
from supporters.dashboard import overview
from supporters.extensions import db as _db
from supporters.giving import totals
from supporters.lib import audit
from supporters.lib.errors import Refused
from supporters.models import (
    AuditEvent,
    BankLine,
    BankStatement,
    Base,
    Campaign,
    Consent,
    ConsentRequest,
    DonorSignIn,
    Gift,
    GiftMethod,
    LineDirection,
    LineMatch,
    LineStatus,
    OutboxEmail,
    PlanStatus,
    PrivacyRequest,
    RecurringPlan,
    RequestKind,
    StatementStatus,
    StripeEvent,
    Supporter,
    SupporterNote,
    SupporterSearchKey,
    SupporterTag,
    utcnow,
)
from supporters.payments import PaymentsUnavailable
from supporters.people import edits, merging
from supporters.privacy import erasure, requests
from tests import factories
from tests.fakes import FakeGateway
from tests.functional.test_import import imported, saved_mapping

#: what the person told us or we wrote about them; none of it may remain anywhere
PERSONAL = (
    "Zofia Kwiatkowska",
    "zofia@example.org",
    "zosia.k@example.org",
    "Kwiatowa 5",
    "80-001",
    "Gdańsk",
    "cus_zofia",
    "PL61109010140000071219812874",
    "likes phone calls",
    "board-member",
    "in memory of Jan",
    "for the kids",
    "zofia.old@example.org",
    "cus_zofia_old",
    "Sopot",
)
PAID_AT = datetime(2024, 3, 10, 12, tzinfo=UTC)


def zofia(staff: Any) -> Supporter:
    """A supporter with a record of every kind: gifts, a plan, consents, notes, tags,
    sign-ins, e-mails, a bank transfer, audit entries and Stripe events; and a record of
    her imported from the old CRM and merged into this one."""
    person = factories.supporter(email="zosia.k@example.org", name="Zofia Kwiatkowska")
    edits.update_profile(staff, person, email="zofia@example.org")
    person.address_line1, person.postal_code, person.city = "Kwiatowa 5", "80-001", "Gdańsk"
    person.country, person.stripe_customer_id = "PL", "cus_zofia"
    campaign = Campaign(slug="spring", name="Spring", goal_currency="PLN")
    _db.session.add(campaign)
    _db.session.flush()
    card = factories.paid_gift(
        person,
        paid_at=PAID_AT,
        campaign_id=campaign.id,
        comment="for the kids",
        dedication_kind="memory",
        dedication="in memory of Jan",
        stripe_payment_intent_id="pi_zofia",
        receipt_number="2024-000001",
    )
    transfer = factories.paid_gift(
        person, paid_at=PAID_AT + timedelta(days=30), method=GiftMethod.BANK_TRANSFER, campaign_id=campaign.id
    )
    transfer.offline_reference = "Zofia Kwiatkowska darowizna"
    plan = factories.plan(person, stripe_subscription_id="sub_zofia")
    plan.status = PlanStatus.CANCELED
    plan.cancel_reason = "Zofia Kwiatkowska moved away"
    edits.add_note(staff, person, "likes phone calls")
    edits.set_tags(staff, person, ["board-member"])
    _db.session.add_all(
        [
            Consent(supporter_id=person.id, purpose="newsletter", granted=True, source="form", wording="Yes"),
            ConsentRequest(supporter_id=person.id, purpose="newsletter", source="form", wording="Yes"),
            DonorSignIn(supporter_id=person.id, token_hash="t" * 64, code_hash="c" * 64, expires_at=utcnow()),
            OutboxEmail(
                dedupe_key="receipt:zofia",
                kind="receipt",
                to_address="Zofia@example.org",
                subject="Receipt",
                body_text="Dear Zofia Kwiatkowska",
            ),
            OutboxEmail(
                dedupe_key="old:zofia",
                kind="receipt",
                to_address="zosia.k@example.org",
                subject="Receipt",
                body_text="Dear Zofia Kwiatkowska",
            ),
            StripeEvent(
                id="evt_zofia",
                type="payment_intent.succeeded",
                gift_id=card.id,
                payload={"data": {"object": {"receipt_email": "zofia@example.org", "customer": "cus_zofia"}}},
            ),
        ]
    )
    statement = BankStatement(
        uploaded_by="cli",
        file_name="march.csv",
        format="csv",
        sha256="s" * 64,
        content=b"...",
        status=StatementStatus.IMPORTED,
    )
    _db.session.add(statement)
    _db.session.flush()
    _db.session.add(
        BankLine(
            statement_id=statement.id,
            identity_key="i" * 64,
            booked_on=date(2024, 4, 9),
            amount_minor=5000,
            currency="PLN",
            direction=LineDirection.CREDIT,
            counterparty_name="Zofia Kwiatkowska",
            counterparty_account="PL61109010140000071219812874",
            title="darowizna Zofia Kwiatkowska",
            match=LineMatch.SUPPORTER,
            status=LineStatus.GIFT,
            supporter_id=person.id,
            gift_id=transfer.id,
        )
    )
    audit.record(staff, "gift.record_offline", "gift", transfer.id, payer="Zofia Kwiatkowska", currency="PLN")
    earlier = requests.log_request(
        staff,
        RequestKind.OBJECTION,
        received_on=date(2024, 4, 1),
        requester_name="Zofia Kwiatkowska",
        requester_email="zofia@example.org",
        supporter=person,
        notes="Zofia Kwiatkowska phoned about letters",
    )
    requests.close_request(staff, earlier, "No more letters.")
    # imported from the old CRM under her old address, then merged into this record
    crm = "ID darczyńcy;Imię;Nazwisko;E-mail;Miasto\nZ-1;Zofia;Kwiatkowska;zofia.old@example.org;Sopot\n".encode()
    saved_mapping(crm, None)
    imported(crm, None)
    from_crm = _db.session.scalar(sa.select(Supporter).filter_by(email_normalised="zofia.old@example.org"))
    from_crm.stripe_customer_id = "cus_zofia_old"
    merging.merge(staff, [person.id, from_crm.id], person.id, {"city": from_crm.id})
    _db.session.flush()
    return person


def everything_said_about(words: tuple[str, ...]) -> list[str]:
    """Every table.column (any column, marked or not) where one of `words` still appears."""
    found = []
    for table in Base.metadata.sorted_tables:
        for row in _db.session.execute(sa.select(table)).mappings():
            for column, value in row.items():
                text = value.decode(errors="ignore") if isinstance(value, bytes) else str(value)
                found += [f"{table.name}.{column}: {word}" for word in words if word.lower() in text.lower()]
    return found


def the_ledger() -> list[Any]:
    """What the books need of every gift."""
    columns = (Gift.id, Gift.amount_minor, Gift.currency, Gift.paid_at, Gift.method, Gift.receipt_number)
    more = (Gift.campaign_id, Gift.stripe_payment_intent_id)
    return sorted(_db.session.execute(sa.select(*columns, *more)).all())


def figures() -> dict[str, Any]:
    """Every money figure an erasure could move."""
    _db.session.expire_all()
    report = overview.overview(now=datetime(2024, 6, 1, tzinfo=UTC))
    return {
        "campaigns": campaign_totals(),
        "monthly_income": totals.monthly_income(RecurringPlan.status == PlanStatus.ACTIVE),
        "overview": {name: value for name, value in vars(report).items() if name != "recent"},
        # which gifts are recent (the list does not order gifts paid at the same moment)
        "recent": sorted((row[0].id, row[0].amount_minor) for row in report.recent),
        "gifts": sorted(_db.session.execute(sa.select(Gift.amount_minor, Gift.currency, Gift.paid_at)).all()),
    }


def test_the_data_is_erased_everywhere_and_the_ledger_stays(db: Any, fake_stripe: FakeGateway) -> None:
    staff = factories.staff("fundraiser")
    person = zofia(staff)
    gift_rows = the_ledger()
    assert everything_said_about(PERSONAL)  # the test would see it

    erasure.erase(staff, person, fake_stripe)
    _db.session.expire_all()

    assert everything_said_about(PERSONAL) == []
    assert fake_stripe.deleted_customers == ["cus_zofia", "cus_zofia_old"]
    erased = _db.session.get(Supporter, person.id)
    assert erased.name == "Erased supporter" and erased.anonymised_at is not None
    assert erased.email == erased.email_normalised == f"erased-{person.id}@erased.invalid"
    assert (erased.newsletter, erased.stripe_customer_id, erased.city) == (False, None, None)
    for model in (SupporterNote, SupporterTag, Consent, ConsentRequest, DonorSignIn):
        assert _db.session.scalar(sa.select(sa.func.count()).select_from(model)) == 0, model
    assert _db.session.scalar(sa.select(sa.func.count()).select_from(OutboxEmail)) == 0
    # the ledger: amounts, dates, currency, method, receipt numbers, campaign, Stripe payment ids
    assert the_ledger() == gift_rows
    assert _db.session.scalar(sa.select(RecurringPlan.stripe_subscription_id)) == "sub_zofia"
    line = _db.session.scalar(sa.select(BankLine))
    assert (line.amount_minor, line.booked_on, line.gift_id) == (5000, date(2024, 4, 9), line.gift_id)
    [entry] = _db.session.scalars(sa.select(AuditEvent).filter_by(action="privacy.erase")).all()
    assert entry.actor == staff.email and entry.target_id == str(person.id)
    assert entry.details["stripe_customer_deleted"] is True
    # what a change was stays readable in the log
    recorded = _db.session.scalar(sa.select(AuditEvent).filter_by(action="gift.record_offline"))
    assert recorded.details == {"payer": "[erased]", "currency": "PLN"}


def test_totals_are_the_same_before_and_after_an_erasure(db: Any, fake_stripe: FakeGateway) -> None:
    person = zofia(factories.staff())
    factories.paid_gift(paid_at=PAID_AT, amount_minor=1200, amount_base_minor=1200)  # someone else
    active = factories.plan(amount_minor=4000)
    active.status = PlanStatus.ACTIVE
    totals.refresh_supporter_totals(person)
    before = figures()

    erasure.erase(None, person, fake_stripe)

    assert figures() == before
    refreshed = _db.session.get(Supporter, person.id)
    assert (refreshed.gift_count, refreshed.lifetime_total_minor) == (2, 10000)


def test_a_failed_stripe_call_changes_no_row(db: Any, fake_stripe: FakeGateway) -> None:
    person = factories.supporter(name="Zofia Kwiatkowska", stripe_customer_id="cus_zofia")
    edits.add_note(None, person, "likes phone calls")
    fake_stripe.fail = True

    with pytest.raises(PaymentsUnavailable):
        erasure.erase(None, person, fake_stripe)

    _db.session.expire_all()
    assert _db.session.get(Supporter, person.id).anonymised_at is None
    assert _db.session.get(Supporter, person.id).name == "Zofia Kwiatkowska"
    assert _db.session.scalar(sa.select(sa.func.count()).select_from(SupporterNote)) == 1


def test_a_supporter_with_a_live_plan_is_not_erased_until_it_is_canceled(db: Any, fake_stripe: FakeGateway) -> None:
    person = factories.supporter(stripe_customer_id="cus_live")
    plan = factories.plan(person)
    plan.status = PlanStatus.ACTIVE

    with pytest.raises(Refused) as refused:
        erasure.erase(None, person, fake_stripe)

    assert refused.value.status == 409 and "Cancel it first" in refused.value.message()
    assert fake_stripe.deleted_customers == [] and person.anonymised_at is None


def test_an_erased_supporter_is_not_erased_twice(db: Any, fake_stripe: FakeGateway) -> None:
    person = factories.supporter()
    erasure.erase(None, person, fake_stripe)
    with pytest.raises(Refused):
        erasure.erase(None, person, fake_stripe)


def test_an_erased_person_who_gives_again_is_a_new_supporter(client: Any, db: Any, fake_stripe: FakeGateway) -> None:
    from tests.functional.test_donate import seed_campaigns, valid_form

    seed_campaigns()
    assert client.post("/donate/", data=valid_form(email="ada@example.org")).status_code == 303
    first = _db.session.scalar(sa.select(Supporter))
    erasure.erase(None, first, fake_stripe)

    response = client.post(
        "/donate/", data=valid_form(email="Ada@example.org", submission_id="0" * 32, name="Ada Lovelace")
    )

    assert response.status_code == 303
    _db.session.expire_all()
    newcomer = _db.session.scalar(sa.select(Supporter).filter_by(email_normalised="ada@example.org"))
    assert newcomer is not None and newcomer.id != first.id and newcomer.anonymised_at is None
    gifts = {row.supporter_id for row in _db.session.scalars(sa.select(Gift))}
    assert gifts == {first.id, newcomer.id}
    assert _db.session.get(Supporter, first.id).name == "Erased supporter"


def test_search_no_longer_finds_the_erased_name(db: Any, fake_stripe: FakeGateway) -> None:
    person = factories.supporter(name="Zofia Kwiatkowska", email="zofia@example.org")
    erasure.erase(None, person, fake_stripe)
    keys = set(_db.session.scalars(sa.select(SupporterSearchKey.key)))
    assert not any("zofia" in key or "kwiatkowska" in key for key in keys)


# --- Retention and purge ----------------------------------------------------------


def erased_on_request(person: Supporter, fake_stripe: FakeGateway) -> PrivacyRequest:
    logged = requests.log_request(None, RequestKind.ERASURE, received_on=date(2024, 5, 1), supporter=person)
    erasure.erase(None, person, fake_stripe, logged)
    return logged


def test_the_ledger_is_kept_until_five_years_after_the_end_of_the_year_of_the_last_gift(
    db: Any, fake_stripe: FakeGateway
) -> None:
    person = zofia(factories.staff())
    assert erasure.retained_until(person) == date(2029, 12, 31)  # last gift April 2024
    erased_on_request(person, fake_stripe)

    assert erasure.purge(date(2029, 12, 31)).supporters == {}
    gift = _db.session.scalar(sa.select(Gift).filter_by(stripe_payment_intent_id="pi_zofia"))
    assert gift is not None and gift.receipt_number == "2024-000001"


def test_the_retention_period_is_a_setting(app: Any, db: Any, fake_stripe: FakeGateway) -> None:
    person = factories.supporter()
    factories.paid_gift(person, paid_at=PAID_AT)
    app.config["SUPPORTERS_RETENTION_YEARS"] = 10
    try:
        assert erasure.retained_until(person) == date(2034, 12, 31)
    finally:
        app.config["SUPPORTERS_RETENTION_YEARS"] = 5


def test_purge_after_the_retention_period_leaves_only_anonymous_figures(db: Any, fake_stripe: FakeGateway) -> None:
    person = zofia(factories.staff())
    logged = erased_on_request(person, fake_stripe)
    before = figures()

    done = erasure.purge(date(2030, 1, 1))

    assert done.supporters == {person.id: 2}
    _db.session.expire_all()
    for gift in _db.session.scalars(sa.select(Gift)):
        assert gift.receipt_number is None and gift.stripe_payment_intent_id is None
        assert gift.amount_minor and gift.paid_at and gift.campaign_id
    assert _db.session.scalar(sa.select(RecurringPlan.stripe_subscription_id)) is None
    assert _db.session.scalar(sa.select(sa.func.count()).select_from(StripeEvent)) == 0
    left = {row.action for row in _db.session.scalars(sa.select(AuditEvent))}
    assert not {"gift.record_offline", "supporter.add_note", "supporter.edit_profile"} & left
    assert {"privacy.erase", "privacy.purge"} <= left
    assert _db.session.get(PrivacyRequest, logged.id).purged_at is not None
    assert figures() == before
    # a second run finds nothing left to do
    assert erasure.purge(date(2030, 1, 2)).supporters == {}


def test_the_purge_command_commits_and_says_what_it_did(app: Any, db: Any, cli: Any, fake_stripe: FakeGateway) -> None:
    person = factories.supporter()
    factories.paid_gift(person, paid_at=PAID_AT)
    erased_on_request(person, fake_stripe)

    early = cli.invoke(args=["privacy", "purge", "--today", "2029-06-01"])
    late = cli.invoke(args=["privacy", "purge", "--today", "2030-01-01"])

    assert early.exit_code == 0 and "Purged 0 erased supporter(s)" in early.output
    assert late.exit_code == 0, late.output
    assert f"Purged erased supporter #{person.id}: 1 gift(s)" in late.output


def test_who_asked_is_cleared_a_year_after_a_request_was_closed(db: Any) -> None:
    logged = requests.log_request(
        None, RequestKind.OBJECTION, received_on=date(2024, 5, 1), requester_name="Jan Nowak", notes="phoned"
    )
    requests.close_request(None, logged, "No more letters.")
    logged.closed_at = datetime(2024, 5, 20, tzinfo=UTC)

    assert erasure.purge(date(2025, 5, 19)).requests_cleared == 0
    assert erasure.purge(date(2025, 5, 21)).requests_cleared == 1
    assert (logged.requester_name, logged.notes, logged.outcome) == (None, "", "No more letters.")
