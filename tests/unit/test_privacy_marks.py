"""Every column says whether it holds data about a person: the access export and the
erasure are built from these marks (docs/privacy.md)."""

from __future__ import annotations

import sqlalchemy as sa

from supporters.models import Base


def unmarked(metadata: sa.MetaData) -> list[str]:
    """The columns (table.column) whose info has no boolean "personal"."""
    return [
        f"{table.name}.{column.name}"
        for table in metadata.sorted_tables
        for column in table.columns
        if not isinstance(column.info.get("personal"), bool)
    ]


def test_every_column_is_marked_personal_or_not() -> None:
    assert unmarked(Base.metadata) == []


def test_a_column_without_a_mark_is_named() -> None:
    metadata = sa.MetaData()
    sa.Table(
        "example",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True, info={"personal": False}),
        sa.Column("nickname", sa.String(20)),
    )
    assert unmarked(metadata) == ["example.nickname"]


def test_names_addresses_and_free_text_about_a_supporter_are_personal() -> None:
    tables = Base.metadata.tables
    for name in (
        "supporter.name",
        "supporter.email",
        "supporter.address_line1",
        "supporter.city",
        "supporter_note.body",
        "supporter_tag.tag",
        "bank_line.counterparty_account",
        "gift.comment",
        "outbox_email.to_address",
        "audit_event.details",
    ):
        table, column = name.split(".")
        assert tables[table].c[column].info["personal"] is True, name


def test_the_ledger_is_not_personal() -> None:
    gift = Base.metadata.tables["gift"]
    for column in ("amount_minor", "currency", "paid_at", "receipt_number", "campaign_id", "stripe_payment_intent_id"):
        assert gift.c[column].info["personal"] is False, column
