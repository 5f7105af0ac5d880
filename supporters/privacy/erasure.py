"""Erasure (GDPR Art. 17) within the Polish Accounting Act's retention, and the purge of
what erasure kept once the retention period is over (docs/privacy.md).

What is about the person goes at once: their details, notes, tags, consents, sign-in
links, the e-mails to them, the personal values in the audit log, the bank lines'
sender details, the Stripe customer; and the same of the records merged into theirs, the
values merge records replaced, the duplicate pairs naming them, the uploaded import files
that held them. The ledger stays for the books (amounts, dates,
currency, method, receipt numbers, campaign, Stripe payment ids), owned by the row
"Erased supporter #N", so every total is the same before and after.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from flask import current_app
from flask_babel import lazy_gettext as _l

from supporters.extensions import db
from supporters.imports.operations import remove_stale_uploads
from supporters.lib import audit
from supporters.lib.audit import Actor
from supporters.lib.dates import org_timezone
from supporters.lib.errors import Refused
from supporters.models import (
    HAPPENED_AT,
    BankLine,
    Consent,
    ConsentRequest,
    DonorSignIn,
    DuplicateCandidate,
    DuplicateDismissal,
    Gift,
    ImportedRow,
    ImportRun,
    OutboxEmail,
    PlanStatus,
    PrivacyRequest,
    RecurringPlan,
    RequestKind,
    Supporter,
    SupporterNote,
    SupporterTag,
    sort_key,
    utcnow,
)
from supporters.payments import PaymentGateway
from supporters.privacy import queries
from supporters.privacy.marks import personal_columns

#: the name an erased supporter is shown with
ERASED_NAME = "Erased supporter"
#: the value every erased personal text in the audit log becomes
ERASED = "[erased]"
#: audit details kept as they are: what a change was, never who it was about
KEPT_DETAILS = frozenset(
    {"currency", "status", "kind", "method", "interval", "purpose", "receipt_number", "stage", "match", "late"}
)
#: personal columns kept on the rows about the person: they name staff, not them
STAFF_COLUMNS = frozenset({"decided_by"})


def placeholder_email(supporter_id: int) -> str:
    """A unique address that reaches no one (.invalid, RFC 2606), for an erased supporter."""
    return f"erased-{supporter_id}@erased.invalid"


def _blank_personal(row: Any, *, keep: frozenset[str] = frozenset()) -> None:
    """Every personal column of the row (by its mark) to None."""
    for name in personal_columns(row.__table__):
        if name not in keep:
            assert row.__table__.c[name].nullable, f"{row.__table__.name}.{name} needs a replacement value"
            setattr(row, name, None)


def _scrub(value: Any, key: str | None = None) -> Any:
    """An audit entry's details with every text erased but those that say what a change was."""
    if isinstance(value, dict):
        return {name: _scrub(item, name) for name, item in value.items()}
    if isinstance(value, list):
        return [_scrub(item, key) for item in value]
    if isinstance(value, str) and key not in KEPT_DETAILS:
        return ERASED
    return value


@dataclass
class Erasure:
    """What an erasure did, for the page and the audit log."""

    supporter_id: int
    stripe_customer_deleted: bool = False
    counts: dict[str, int] = field(default_factory=dict)


def refuse_erasure(supporter: Supporter) -> None:
    """Raise Refused when the supporter cannot be erased now: erased already, merged into
    another (erase that one: it erases the records merged into it too), or giving through a
    recurring plan that is not canceled (cancel it first, with its own rule)."""
    if supporter.anonymised_at is not None:
        raise Refused(_l("This supporter's data was erased already."), status=409)
    if supporter.merged_into_id is not None:
        raise Refused(
            _l("This supporter was merged into supporter #%(id)s: erase that one, which erases this record too."),
            status=409,
            id=supporter.merged_into_id,
        )
    live = db.session.scalar(
        sa.select(sa.func.count())
        .select_from(RecurringPlan)
        .where(RecurringPlan.supporter_id == supporter.id, RecurringPlan.status != PlanStatus.CANCELED)
    )
    if live:
        raise Refused(
            _l("This supporter has a recurring plan that is not canceled. Cancel it first, then erase."), status=409
        )


def erase(
    actor: Actor | None, supporter: Supporter, gateway: PaymentGateway, request: PrivacyRequest | None = None
) -> Erasure:
    """Erase the supporter's personal data, keeping the ledger for the retention period;
    the records merged into it (people/merging.py) are erased with it, as the same person.

    All or nothing: the checks come first, then the Stripe customers are deleted (the one
    step outside the database; a failure raises PaymentsUnavailable with nothing erased,
    and deleting one again later is harmless), then the database rows change in the
    request's transaction. Audited without a personal value.
    """
    locked = db.session.get(Supporter, supporter.id, with_for_update=True, populate_existing=True)
    assert locked is not None
    refuse_erasure(locked)
    if request is not None and not request.is_open:
        raise Refused(_l("This request is closed already."), status=409)
    merged = list(
        db.session.scalars(
            sa.select(Supporter)
            .where(Supporter.merged_into_id == locked.id)
            .order_by(Supporter.id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    )
    records = [locked, *merged]
    ids = [record.id for record in records]
    result = Erasure(supporter_id=locked.id)
    customers = [record.stripe_customer_id for record in records if record.stripe_customer_id]
    for customer in customers:
        gateway.delete_customer(customer)
    result.stripe_customer_deleted = bool(customers)
    now = utcnow()
    # found before the addresses change
    emails = queries.emails(locked)
    lines = queries.bank_lines(locked)
    events = queries.stripe_events(locked)
    entries = queries.audit_events(locked)
    merges = queries.merges(locked)

    counts = result.counts
    for model in (SupporterNote, SupporterTag, Consent, ConsentRequest, DonorSignIn):
        counts[model.__tablename__] = _delete(model, model.supporter_id.in_(ids))
    counts["outbox_email"] = _delete(OutboxEmail, OutboxEmail.id.in_([row.id for row in emails]))
    for gift in db.session.scalars(sa.select(Gift).where(Gift.supporter_id.in_(ids))):
        _blank_personal(gift)
    for plan in db.session.scalars(sa.select(RecurringPlan).where(RecurringPlan.supporter_id.in_(ids))):
        _blank_personal(plan)
    for line in lines:
        _blank_personal(line, keep=STAFF_COLUMNS)
    for event in events:
        event.payload = {"id": event.id, "type": event.type, "erased": True}
        event.review_note = None
    for entry in entries:
        entry.details = _scrub(entry.details)
    for merge in merges:
        merge.record = _scrub(merge.record)
    counts.update(gifts=len(queries.gift_ids(locked)), bank_lines=len(lines), stripe_events=len(events))
    counts.update(audit_events=len(entries), merged_records=len(merged), merges=len(merges))
    counts["duplicate_pairs"] = _delete(
        DuplicateCandidate, sa.or_(DuplicateCandidate.low_id.in_(ids), DuplicateCandidate.high_id.in_(ids))
    ) + _delete(DuplicateDismissal, sa.or_(DuplicateDismissal.low_id.in_(ids), DuplicateDismissal.high_id.in_(ids)))
    counts["import_files"] = _forget_imports(ids)

    for record in records:
        record.tags = []
        _blank_personal(record, keep=frozenset({"name", "name_sort", "email", "email_normalised"}))
        record.name = ERASED_NAME
        record.name_sort = sort_key(ERASED_NAME)
        record.email = record.email_normalised = placeholder_email(record.id)
        record.newsletter = False
        record.anonymised_at = now
    for asked in db.session.scalars(sa.select(PrivacyRequest).where(PrivacyRequest.supporter_id.in_(ids))):
        # who asked was this person: their name, address and what staff noted of them go too
        asked.requester_name = asked.requester_email = None
        asked.notes = ""
    if request is not None:
        request.supporter_id = locked.id
        request.requester_name = request.requester_email = None
        request.erased_at = now
    db.session.flush()
    audit.record(
        actor,
        "privacy.erase",
        "supporter",
        locked.id,
        request_id=request.id if request is not None else None,
        stripe_customer_deleted=result.stripe_customer_deleted,
        removed=counts,
    )
    return result


def _forget_imports(ids: list[int]) -> int:
    """The imports that wrote the person's rows: their uploaded files (which name them) go,
    and their rows no longer lead to the erased record, so a later import attaches no gift to
    it (the source's row stays known: importing the old file again does not bring them back).
    Returns how many uploads lost their files."""
    runs = db.session.scalars(
        sa.select(ImportRun).where(
            ImportRun.id.in_(sa.select(ImportedRow.run_id).where(ImportedRow.supporter_id.in_(ids))),
            sa.or_(ImportRun.content.is_not(None), ImportRun.gifts_content.is_not(None)),
        )
    ).all()
    for run in runs:
        run.content = run.gifts_content = None
    db.session.execute(
        sa.update(ImportedRow).where(ImportedRow.supporter_id.in_(ids)).values(supporter_id=None),
        execution_options={"synchronize_session": False},
    )
    return len(runs)


def _delete(model: Any, where: sa.ColumnElement[bool]) -> int:
    rows = db.session.scalars(sa.select(model).where(where)).all()
    for row in rows:
        db.session.delete(row)
    db.session.flush()
    return len(rows)


# --- Retention and purge ---------------------------------------------------------


def retention_years() -> int:
    return int(current_app.config.get("SUPPORTERS_RETENTION_YEARS", 5))


def retained_until(supporter: Supporter) -> date | None:
    """The last day the books need the supporter's gifts: the end of the year of their last
    gift (in the organisation's time zone) plus SUPPORTERS_RETENTION_YEARS years. None: no gifts."""
    last: datetime | None = db.session.scalar(
        sa.select(sa.func.max(HAPPENED_AT)).where(Gift.supporter_id == supporter.id)
    )
    if last is None:
        return None
    return date(last.astimezone(org_timezone()).year + retention_years(), 12, 31)


#: what the purge takes off the gifts: what still links a gift to a payment, a receipt or a person
GIFT_IDENTIFIERS = (
    "stripe_checkout_session_id",
    "stripe_payment_intent_id",
    "stripe_charge_id",
    "stripe_invoice_id",
    "receipt_number",
    "transfer_reference",
    "submission_key",
    "checkout_url",
    "source_url",
)
#: a closed request's requester and notes are kept this long, to show how it was answered
REQUEST_KEPT_DAYS = 365


@dataclass
class Purge:
    """What `purge` did: the supporters purged (id -> gifts), the requests cleared and the
    import uploads removed."""

    supporters: dict[int, int] = field(default_factory=dict)
    requests_cleared: int = 0
    uploads_removed: int = 0


def purge(today: date, actor_name: str = "cli") -> Purge:
    """Remove what erasures kept once the retention period is over: the gifts' identifiers
    (Stripe ids, receipt numbers, transfer titles, the pages they came from), the plans'
    Stripe ids, the audit entries and Stripe events about them. Their amounts, dates,
    currency, method, status and campaign stay as anonymous figures, owned by the erased
    row, so past totals do not change. Also clears who asked on requests closed more than
    REQUEST_KEPT_DAYS ago, and removes import uploads never imported after
    `imports.operations.UPLOAD_KEPT_DAYS`. Audited; the caller commits."""
    done = Purge()
    due = db.session.scalars(
        sa.select(PrivacyRequest)
        .where(
            PrivacyRequest.kind == RequestKind.ERASURE,
            PrivacyRequest.erased_at.is_not(None),
            PrivacyRequest.purged_at.is_(None),
            PrivacyRequest.supporter_id.is_not(None),
        )
        .order_by(PrivacyRequest.id)
    ).all()
    for request in due:
        supporter = db.session.get(Supporter, request.supporter_id)
        assert supporter is not None
        until = retained_until(supporter)
        if until is not None and until >= today:
            continue
        done.supporters[supporter.id] = _purge_supporter(supporter, actor_name, request)
        request.purged_at = utcnow()
    cutoff = today - timedelta(days=REQUEST_KEPT_DAYS)
    for request in db.session.scalars(
        sa.select(PrivacyRequest).where(
            PrivacyRequest.closed_at.is_not(None),
            sa.or_(PrivacyRequest.requester_name.is_not(None), PrivacyRequest.requester_email.is_not(None)),
        )
    ):
        if request.closed_at is not None and request.closed_at.date() < cutoff:
            request.requester_name = request.requester_email = None
            request.notes = ""
            done.requests_cleared += 1
    done.uploads_removed = remove_stale_uploads(today, actor_name)
    db.session.flush()
    return done


def _purge_supporter(supporter: Supporter, actor_name: str, request: PrivacyRequest) -> int:
    entries = [entry for entry in queries.audit_events(supporter) if not entry.action.startswith("privacy.")]
    for entry in entries:
        db.session.delete(entry)
    for event in queries.stripe_events(supporter):
        db.session.delete(event)
    gifts = db.session.scalars(sa.select(Gift).where(Gift.supporter_id == supporter.id)).all()
    for gift in gifts:
        for name in GIFT_IDENTIFIERS:
            setattr(gift, name, None)
    for plan in db.session.scalars(sa.select(RecurringPlan).where(RecurringPlan.supporter_id == supporter.id)):
        plan.stripe_subscription_id = None
    for line in db.session.scalars(sa.select(BankLine).where(BankLine.supporter_id == supporter.id)):
        line.supporter_id = None
    db.session.flush()
    audit.record(
        None,
        "privacy.purge",
        "supporter",
        supporter.id,
        actor_name=actor_name,
        request_id=request.id,
        gifts=len(gifts),
        audit_events=len(entries),
    )
    return len(gifts)
