"""The access and portability export (GDPR Art. 15 and 20): one ZIP with everything
personal the app holds about a supporter, built from the columns' privacy marks."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from flask import current_app
from flask_babel import force_locale
from flask_babel import gettext as _

from supporters.lib import audit
from supporters.lib.audit import Actor
from supporters.lib.exporting import inert_row
from supporters.lib.money import plain as plain_amount
from supporters.mail.language import mail_locale
from supporters.models import AuditEvent, BankLine, OutboxEmail, Supporter, SupporterMerge, utcnow
from supporters.privacy import queries
from supporters.privacy.marks import as_text, plain, shown_columns
from supporters.privacy.requests import PrivacyRequest, note_export

#: besides its key and its personal columns, what each file shows of a row so that the
#: person can tell what it is; for gifts and plans, the ledger: their own giving is theirs to see
CONTEXT: dict[str, tuple[str, ...]] = {
    "supporter": ("language", "newsletter", "created_at", "anonymised_at"),
    "gifts": (
        "amount_minor",
        "currency",
        "status",
        "kind",
        "method",
        "recurring_plan_id",
        "campaign_id",
        "source_article",
        "covers_fee",
        "anonymous",
        "dedication_kind",
        "receipt_number",
        "transfer_reference",
        "refunded_minor",
        "stripe_payment_intent_id",
        "paid_at",
        "refunded_at",
        "created_at",
    ),
    "plans": (
        "amount_minor",
        "currency",
        "interval",
        "status",
        "campaign_id",
        "started_at",
        "current_period_end",
        "canceled_at",
        "paused_until",
        "created_at",
    ),
    "consents": ("purpose", "source", "wording"),
    "consent_requests": ("purpose", "source", "wording", "expires_at"),
    "notes": ("created_at",),
    "tags": (),
    "sign_ins": ("created_at", "expires_at", "used_at", "attempts"),
    "audit": ("created_at", "action", "target_type", "target_id"),
    "emails": ("kind", "created_at", "sent_at"),
    "bank_lines": ("booked_on", "amount_minor", "currency", "direction", "gift_id"),
    "merged_records": ("merged_into_id", "language", "created_at", "anonymised_at"),
    "merges": ("survivor_id", "merged_ids", "merged_at", "undone_at"),
}
#: files with amounts in minor units get an "amount" column beside them, written as the person reads it
AMOUNTS = ("gifts", "plans", "bank_lines")


@dataclass(frozen=True)
class Export:
    """The ZIP's bytes and the name to download it as."""

    filename: str
    content: bytes


def _rows(name: str, model: type, rows: Sequence[Any]) -> tuple[list[str], list[dict[str, Any]]]:
    columns = shown_columns(model, CONTEXT[name])
    if name == "emails":  # the text is the message; its HTML twin says the same again
        columns = [column for column in columns if column != "body_html"]
    records = []
    for row in rows:
        record = {column: plain(getattr(row, column)) for column in columns}
        if name in AMOUNTS:
            record["amount"] = plain_amount(row.amount_minor, row.currency)
        records.append(record)
    header = columns + (["amount"] if name in AMOUNTS else [])
    return header, records


def collect(supporter: Supporter) -> dict[str, tuple[list[str], list[dict[str, Any]]]]:
    """Every file of the export: name -> (header, records)."""
    files: dict[str, tuple[list[str], list[dict[str, Any]]]] = {
        "supporter": _rows("supporter", Supporter, [supporter]),
    }
    for name, (model, order) in queries.OWN_ROWS.items():
        files[name] = _rows(name, model, queries.rows_of(model, supporter, order))
    files["audit"] = _rows("audit", AuditEvent, queries.audit_events(supporter))
    files["emails"] = _rows("emails", OutboxEmail, queries.emails(supporter))
    files["bank_lines"] = _rows("bank_lines", BankLine, queries.bank_lines(supporter))
    files["merged_records"] = _rows("merged_records", Supporter, queries.merged_away(supporter))
    files["merges"] = _rows("merges", SupporterMerge, queries.merges(supporter, undone=False))
    return files


def _csv(header: list[str], records: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    for record in records:
        writer.writerow(inert_row([as_text(record[column]) for column in header]))
    return buffer.getvalue()


def readme(supporter: Supporter, names: Sequence[str]) -> str:
    """README.txt, in the supporter's language: what each file holds."""
    with force_locale(mail_locale(supporter.language)):
        described = {
            "data.json": _("Everything below in one file (JSON), for moving your data elsewhere."),
            "supporter.csv": _("Your details: name, e-mail address, postal address, language."),
            "gifts.csv": _(
                "Your gifts: amount, currency, date, status, receipt number, campaign and your comment. "
                "amount_minor is in the smallest unit of the currency (grosze, cents); amount is the same in units."
            ),
            "plans.csv": _("Your recurring gifts (monthly or yearly) and their status."),
            "consents.csv": _("What you agreed to or withdrew (the newsletter), when, and the wording you saw."),
            "consent_requests.csv": _("Consents asked for that waited for your confirmation by e-mail."),
            "notes.csv": _("Notes our staff wrote about you."),
            "tags.csv": _("Labels our staff put on your record."),
            "sign_ins.csv": _("When you asked for a sign-in link to your donor page, and when it was used."),
            "audit.csv": _("Our log of what was done with your record, by whom and when."),
            "emails.csv": _("The e-mails we sent you or were about to send."),
            "bank_lines.csv": _("Bank transfers of yours as our bank statement showed them."),
            "merged_records.csv": _(
                "Other records of yours we joined into this one (their old e-mail address and details)."
            ),
            "merges.csv": _("When we joined records of yours, and the values the joining replaced."),
        }
        lines = [
            _("Your data held by %(organisation)s", organisation=_organisation()),
            _("Prepared on %(date)s (times are in UTC).", date=utcnow().date().isoformat()),
            "",
        ]
        lines += [f"{name}: {described[name]}" for name in ("data.json", *names)]
        lines += [
            "",
            _(
                "We keep the record of your gifts for as long as the accounting law requires, "
                "even after you ask us to erase your data."
            ),
        ]
        return "\r\n".join(lines) + "\r\n"


def _organisation() -> str:
    return str(current_app.config.get("SUPPORTERS_ORG_NAME") or "")


def build_export(actor: Actor | None, supporter: Supporter, request: PrivacyRequest | None = None) -> Export:
    """The ZIP for the supporter (data.json, one CSV per kind of record, README.txt in their
    language), audited as personal data let out; noted on the request it answers."""
    files = collect(supporter)
    names = [f"{name}.csv" for name in files]
    data: dict[str, Any] = {name: records for name, (_header, records) in files.items()}
    data["supporter"] = data["supporter"][0]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("README.txt", readme(supporter, names))
        archive.writestr("data.json", json.dumps(data, ensure_ascii=False, indent=2, sort_keys=True))
        for name, (header, records) in files.items():
            archive.writestr(f"{name}.csv", "\ufeff" + _csv(header, records))
    audit.record(
        actor,
        "privacy.export",
        "supporter",
        supporter.id,
        request_id=request.id if request is not None else None,
        rows={name: len(records) for name, (_header, records) in files.items()},
    )
    if request is not None:
        note_export(request)
    return Export(filename=f"supporter-{supporter.id}-data.zip", content=buffer.getvalue())
