"""Reading gifts: the gift list's filters as conditions, the gifts export, and a gift's
or plan's history (what Stripe said and what staff did), oldest first."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

import sqlalchemy as sa
from flask import current_app

from supporters.dashboard import labels
from supporters.extensions import db
from supporters.lib import audit, exporting, money
from supporters.lib.audit import Actor
from supporters.lib.dates import org_timezone
from supporters.models import (
    HAPPENED_AT,
    AuditEvent,
    Campaign,
    Gift,
    GiftKind,
    GiftMethod,
    GiftStatus,
    RecurringPlan,
    StripeEvent,
    Supporter,
    net_base,
    net_base_numeric,
)


@dataclass
class GiftFilters:
    """The gift list's filters as read from the address; what could not be read is left
    out, and `notes` say so (translated when read, in the request's language)."""

    statuses: list[GiftStatus] = field(default_factory=list)
    date_from: date | None = None
    date_to: date | None = None
    campaign_id: int | None = None
    method: GiftMethod | None = None
    kind: GiftKind | None = None
    currency: str | None = None
    amount_min: int | None = None
    amount_max: int | None = None
    article: str | None = None
    supporter_id: int | None = None
    page: int = 1
    #: the valid filters as they were typed, for links to other pages and the export
    args: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def active(self) -> bool:
        return bool(self.args)

    def conditions(self) -> list[sa.ColumnElement[bool]]:
        """The WHERE clauses these filters stand for."""
        where: list[sa.ColumnElement[bool]] = []
        if self.statuses:
            where.append(Gift.status.in_(self.statuses))
        if self.date_from or self.date_to:
            zone = org_timezone()
            # The date of a paid gift is when it was paid; of any other, when it was made:
            # HAPPENED_AT, whose index (the list's order) reads the period as one range.
            if self.date_from:
                where.append(HAPPENED_AT >= datetime.combine(self.date_from, time(), zone))
            if self.date_to:
                where.append(HAPPENED_AT < datetime.combine(self.date_to + timedelta(days=1), time(), zone))
        if self.campaign_id is not None:
            where.append(Gift.campaign_id == self.campaign_id)
        if self.method is not None:
            where.append(Gift.method == self.method)
        if self.kind is not None:
            where.append(Gift.kind == self.kind)
        if self.currency:
            where.append(Gift.currency == self.currency)
            if self.amount_min is not None:
                where.append(Gift.amount_minor >= self.amount_min)
            if self.amount_max is not None:
                where.append(Gift.amount_minor <= self.amount_max)
        if self.article:
            where.append(Gift.source_article == self.article)
        if self.supporter_id is not None:
            where.append(Gift.supporter_id == self.supporter_id)
        return where

    def query(self) -> sa.Select[Any]:
        """The filtered gifts, newest first (by date paid, or made for unpaid ones)."""
        return sa.select(Gift).where(*self.conditions()).order_by(HAPPENED_AT.desc(), Gift.id.desc())

    def describe(self) -> dict[str, Any]:
        """The filters in plain data, for the audit log."""
        return {key: value for key, value in self.args.items() if key != "page"}


#: the gifts export's columns. Timestamps are UTC, named so (`…_utc`); each code has its
#: label beside it, in the language of the request that asked for the export
EXPORT_HEADER = (
    "id",
    "paid_at_utc",
    "created_at_utc",
    "status",
    "status_label",
    "kind",
    "kind_label",
    "interval",
    "interval_label",
    "method",
    "method_label",
    "amount",
    "currency",
    "amount_base",
    "base_currency",
    "refunded",
    "net_base",
    "fee",
    "net",
    "fee_currency",
    "transfer_reference",
    "offline_reference",
    "comment",
    "supporter_id",
    "supporter_name",
    "supporter_email",
    "campaign",
    "source_article",
    "source_variant",
    "receipt_number",
    "stripe_checkout_session_id",
    "stripe_payment_intent_id",
    "stripe_charge_id",
    "stripe_invoice_id",
)


def export_gifts(actor: Actor | None, filters: GiftFilters, *, bom: bool) -> Iterator[str] | Iterator[bytes]:
    """The CSV file of the gifts of `filters`: EXPORT_HEADER, then a line a gift, newest
    first, streamed; audited before any row is read (the request commits the audit row
    before the first row leaves).

    PostgreSQL writes the file itself (`export_written_by_postgresql`), elsewhere Python
    writes it (`export_written_by_python`): the same bytes, which
    `tests/functional/dashboard/test_export_copy.py` proves on the same gifts.
    """
    audit.record(actor, "gifts.export", filters=filters.describe(), bom=bom)
    if db.session.get_bind().dialect.name == "postgresql":
        return export_written_by_postgresql(filters, bom=bom)
    return export_written_by_python(filters, bom=bom)


def _export_query(filters: GiftFilters) -> sa.Select[*tuple[Any, ...]]:
    """The export's gifts with what each line is made of, in the order the lines'
    makers unpack them: the one list of the export's columns, for both writers."""
    return (
        filters.query()
        .with_only_columns(
            # the enums as their stored text: no enum object made and unmade per cell
            sa.cast(Gift.id, sa.String),
            exporting.iso_sql(Gift.paid_at),
            exporting.iso_sql(Gift.created_at),
            sa.type_coerce(Gift.status, sa.String),
            sa.type_coerce(Gift.kind, sa.String),
            sa.type_coerce(RecurringPlan.interval, sa.String),
            sa.type_coerce(Gift.method, sa.String),
            Gift.amount_minor,
            Gift.currency,
            Gift.amount_base_minor,
            Gift.refunded_minor,
            Gift.fee_minor,
            Gift.net_minor,
            Gift.balance_currency,
            # from here on, the columns as EXPORT_HEADER ends, each text or NULL
            Gift.transfer_reference,
            Gift.offline_reference,
            Gift.comment,
            sa.cast(Gift.supporter_id, sa.String),
            Supporter.name,
            Supporter.email,
            Campaign.slug,
            Gift.source_article,
            Gift.source_variant,
            Gift.receipt_number,
            Gift.stripe_checkout_session_id,
            Gift.stripe_payment_intent_id,
            Gift.stripe_charge_id,
            Gift.stripe_invoice_id,
        )
        .select_from(Gift)
        # `+ 0`: SQLite would otherwise read the supporters first and sort a million
        # gifts before the first row leaves; so it walks the gifts in the list's index
        .join(Supporter, Supporter.id == Gift.supporter_id + 0)
        .outerjoin(Campaign, Campaign.id == Gift.campaign_id)
        .outerjoin(RecurringPlan, RecurringPlan.id == Gift.recurring_plan_id)
    )


@dataclass(frozen=True)
class _ExportTexts:
    """What the export's lines say that is not in the gift, read once, in the request's
    language (the lines are written later, as they stream), every text inert already."""

    statuses: dict[str | None, tuple[str, str]]
    kinds: dict[str | None, tuple[str, str]]
    intervals: dict[str | None, tuple[str, str]]
    methods: dict[str | None, tuple[str, str]]
    base: str

    @classmethod
    def now(cls) -> _ExportTexts:
        return cls(
            statuses=_inert_labels(labels.GIFT_STATUS_LABELS),
            kinds=_inert_labels(labels.GIFT_KIND_LABELS),
            intervals=_inert_labels(labels.PLAN_INTERVAL_LABELS) | {None: ("", "")},
            methods=_inert_labels(labels.GIFT_METHOD_LABELS),
            base=current_app.config["SUPPORTERS_BASE_CURRENCY"],
        )


def export_written_by_python(filters: GiftFilters, *, bom: bool) -> Iterator[str]:
    """The gifts export's file as `export_gifts` describes it, each line made in Python,
    not audited (`export_gifts` is).

    `net_base` is what the gift counts in every total (`models.net_base`: the reporting
    currency, net of refunds; empty until converted); `fee` and `net` are Stripe's, from
    the balance transaction, in `fee_currency` (empty until known, and for offline gifts).

    Built for a million rows: plain rows streamed from the database (a server-side cursor
    on PostgreSQL), timestamps written by the database (`exporting.iso_sql`), labels and
    each currency's code and formatter looked up once, not per row.
    """
    query = _export_query(filters)
    texts = _ExportTexts.now()
    statuses, kinds, intervals, methods = texts.statuses, texts.kinds, texts.intervals, texts.methods
    base_code, base_text = exporting.neutralise(texts.base), money.plain_formatter(texts.base)
    currencies = _CurrencyTexts()
    first = exporting.FORMULA_FIRST

    def batches() -> Iterator[list[list[str]]]:
        # on the statement: a connection's options would outlive the export on the session's connection
        result = db.session.connection().execute(query.execution_options(yield_per=exporting.BATCH_ROWS))
        for partition in result.partitions():
            batch: list[list[str]] = []
            add = batch.append
            for (
                gift_id,
                paid_at,
                created_at,
                status,
                kind,
                interval,
                method,
                amount,
                currency,
                amount_base,
                refunded,
                fee,
                net,
                fee_currency,
                *cells,
            ) in partition:
                code, text = currencies[currency]
                fee_code, fee_text = currencies[fee_currency or currency]
                net_text = "" if net is None else fee_text(net)
                # Amounts, fees and refunds cannot be negative (CHECK constraints); a net can.
                add(
                    [
                        gift_id,
                        paid_at or "",
                        created_at or "",
                        *(statuses.get(status) or _unknown(status)),
                        *(kinds.get(kind) or _unknown(kind)),
                        *(intervals.get(interval) or _unknown(interval)),
                        *(methods.get(method) or _unknown(method)),
                        text(amount),
                        code,
                        "" if amount_base is None else base_text(amount_base),
                        base_code,
                        text(refunded),
                        "" if amount_base is None else base_text(net_base(amount_base, amount, refunded)),
                        "" if fee is None else fee_text(fee),
                        "'" + net_text if net_text and net_text[0] in first else net_text,
                        "" if fee is None and net is None else fee_code,
                        *[("'" + cell if cell[0] in first else cell) if cell else "" for cell in cells],
                    ]
                )
            yield batch

    return exporting.csv_text_batches(EXPORT_HEADER, batches(), bom)


def export_written_by_postgresql(filters: GiftFilters, *, bom: bool) -> Iterator[bytes]:
    """The gifts export's file as `export_gifts` describes it, written by PostgreSQL
    (`exporting.copy_csv`): each cell made in SQL as `export_written_by_python` makes it
    in Python, not audited (`export_gifts` is). PostgreSQL only."""
    query = _export_query(filters)
    texts = _ExportTexts.now()
    (
        gift_id,
        paid_at,
        created_at,
        status,
        kind,
        interval,
        method,
        amount,
        currency,
        amount_base,
        refunded,
        fee,
        net,
        fee_currency,
        *cells,
    ) = query.selected_columns
    inert, plain = exporting.inert_sql, exporting.plain_sql
    fee_currency = sa.func.coalesce(sa.func.nullif(fee_currency, ""), currency)
    base_code = exporting.neutralise(texts.base)
    return exporting.copy_csv(
        EXPORT_HEADER,
        query.with_only_columns(
            gift_id,
            paid_at,
            created_at,
            *_code_and_label_sql(status, texts.statuses),
            *_code_and_label_sql(kind, texts.kinds),
            *_code_and_label_sql(interval, texts.intervals),
            *_code_and_label_sql(method, texts.methods),
            plain(amount, currency),
            inert(currency),
            plain(amount_base, texts.base),
            sa.literal(base_code) if base_code else sa.null(),
            plain(refunded, currency),
            plain(net_base_numeric(amount_base, amount, refunded), texts.base),
            plain(fee, fee_currency),
            inert(plain(net, fee_currency)),
            sa.case((sa.and_(fee.is_(None), net.is_(None)), sa.null()), else_=inert(fee_currency)),
            *[inert(cell) for cell in cells],
        ),
        bom,
    )


def _code_and_label_sql(
    code: sa.ColumnElement[Any], labels_of: dict[str | None, tuple[str, str]]
) -> tuple[sa.ColumnElement[str], sa.ColumnElement[str]]:
    """A code's two cells as `_inert_labels` and `_unknown` make them, in SQL."""
    known = {value: sa.literal(label) if label else sa.null() for value, (_, label) in labels_of.items() if value}
    return exporting.inert_sql(code), sa.case(known, value=code, else_=exporting.inert_sql(code))


def _inert_labels(labels_of: dict[Any, Any]) -> dict[str | None, tuple[str, str]]:
    """Each code's stored text with its label in the request's language, both inert."""
    return {
        code.value: (exporting.neutralise(code.value), exporting.neutralise(label)) for code, label in labels_of.items()
    }


def _unknown(code: str) -> tuple[str, str]:
    """A code the labels do not know (none should be stored) stands for itself."""
    return (exporting.neutralise(code),) * 2


class _CurrencyTexts(dict[str, tuple[str, Callable[[int], str]]]):
    """A currency's code as an inert cell and its `money.plain_formatter`, each looked up once."""

    def __missing__(self, currency: str) -> tuple[str, Callable[[int], str]]:
        self[currency] = entry = (exporting.neutralise(currency), money.plain_formatter(currency))
        return entry


@dataclass(frozen=True)
class HistoryItem:
    """One line of a gift's or plan's story: a Stripe event or a staff action."""

    at: datetime
    source: str  # "stripe" or "staff"
    what: str
    who: str
    outcome: str | None = None
    details: dict[str, Any] | None = None
    event_id: str | None = None


#: the column of stripe_event that names a record of each audited target type
STRIPE_EVENT_LINKS = {"gift": StripeEvent.gift_id, "plan": StripeEvent.plan_id}


def history(target_type: str, target_id: int) -> list[HistoryItem]:
    """The Stripe events linked to the record (`stripe_event.gift_id` or `plan_id`) and
    the audit events about it, oldest first."""
    link = STRIPE_EVENT_LINKS[target_type]
    events = db.session.execute(
        sa.select(StripeEvent.id, StripeEvent.type, StripeEvent.received_at, StripeEvent.outcome)
        .where(link == target_id)
        .order_by(StripeEvent.received_at)
        .limit(500)
    ).all()
    items = [
        HistoryItem(at=received, source="stripe", what=kind, who="Stripe", outcome=outcome, event_id=event_id)
        for event_id, kind, received, outcome in events
    ]
    actions = db.session.scalars(
        sa.select(AuditEvent)
        .filter_by(target_type=target_type, target_id=str(target_id))
        .order_by(AuditEvent.created_at)
        .limit(500)
    ).all()
    items += [
        HistoryItem(at=a.created_at, source="staff", what=a.action, who=a.actor, details=a.details or {})
        for a in actions
    ]
    return sorted(items, key=lambda item: item.at)


def gift_history(gift: Gift) -> list[HistoryItem]:
    """What Stripe said and staff did about this gift, oldest first."""
    return history("gift", gift.id)


def plan_history(plan: RecurringPlan) -> list[HistoryItem]:
    """What Stripe said and staff did about this plan, oldest first."""
    return history("plan", plan.id)


def gift_by_submission(key: str) -> Gift | None:
    """The gift a form submission already created, if any."""
    return db.session.execute(sa.select(Gift).filter_by(submission_key=key)).scalar_one_or_none()
