"""The e-mail outbox: receipts are queued in the transaction that records the payment,
and a worker sends them later, retrying with backoff.

Queueing (`queue_receipt`) flushes and never commits, like every service function.
Sending (`send_due`, the `worker` command) is an edge: it commits after each message.
Delivery is at least once: a message whose send succeeded but whose commit failed
is sent again; its Message-ID stays the same so mail clients can tell.
"""

from __future__ import annotations

import logging
import os
import re
import smtplib
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import format_datetime, parseaddr

import click
from babel import Locale, UnknownLocaleError
from flask import current_app, render_template
from flask.cli import with_appcontext
from flask_babel import force_locale, format_date
from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from .extensions import db
from .models import Campaign, Gift, GiftKind, GiftMethod, GiftStatus, OutboxEmail, RecurringPlan, Supporter, utcnow
from .models.recurring import PlanInterval
from .money import format_amount

log = logging.getLogger(__name__)

RECEIPT = "receipt"

#: wait before the next attempt after the 1st, 2nd, 3rd, 4th failure; then the last, for ever
BACKOFF_STEPS = (
    timedelta(minutes=1),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=12),
)

#: a backend delivers one message or raises; the outbox row is passed for its id and kind
Backend = Callable[[OutboxEmail, EmailMessage], None]

#: what the "memory" backend has sent, oldest first. For tests only: it grows for ever
#: and is lost with the process.
sent_messages: list[EmailMessage] = []

_LAST_ERROR_LENGTH = 300


# --- Queueing --------------------------------------------------------------------


def receipt_dedupe_key(gift: Gift) -> str:
    """The outbox key of a gift's receipt: one receipt per gift, ever."""
    return f"receipt:gift:{gift.id}"


def queue_receipt(gift: Gift) -> OutboxEmail | None:
    """Queue the receipt for a paid gift, in the supporter's language; flush, never commit.

    Call it in the transaction that marks the gift succeeded (a one-time gift, the
    first instalment of a plan or a renewal), so the receipt exists if and only if
    the payment is recorded. Returns the new outbox row, or None when nothing was
    queued: the gift already has a receipt (also when another transaction queued it
    at the same moment: the UNIQUE dedupe key catches that) or its supporter was
    anonymised. Raises ValueError for a gift that is not succeeded with a paid_at.
    """
    if gift.id is None:
        db.session.flush()
    if gift.id is None:
        raise ValueError("the gift must be added to the session before its receipt is queued")
    if gift.status != GiftStatus.SUCCEEDED or gift.paid_at is None:
        raise ValueError(f"gift {gift.id} is not paid; only paid gifts get a receipt")
    supporter = db.session.get(Supporter, gift.supporter_id)
    if supporter is None or supporter.anonymised_at is not None:
        return None
    key = receipt_dedupe_key(gift)
    if _already_queued(key):
        return None

    subject, body_text, body_html = _render_receipt(gift, supporter)
    email = OutboxEmail(
        dedupe_key=key,
        kind=RECEIPT,
        to_address=supporter.email,
        subject=subject,
        body_text=body_text,
        body_html=body_html,
        send_after=utcnow(),
    )
    # A savepoint, so a duplicate from a concurrent transaction costs only this row,
    # not the caller's transaction that records the payment.
    savepoint = db.session.begin_nested()
    db.session.add(email)
    try:
        savepoint.commit()
    except IntegrityError:
        savepoint.rollback()
        if not _already_queued(key):
            raise
        return None
    return email


def _already_queued(dedupe_key: str) -> bool:
    return db.session.scalar(select(OutboxEmail.id).filter_by(dedupe_key=dedupe_key)) is not None


def receipt_locale(language: str | None) -> str:
    """The configured locale to write to someone who reads `language` ("pl", "pl-PL"…).

    Falls back to the default locale for languages the app has no translation for,
    so a receipt never mixes two languages.
    """
    supported: list[str] = current_app.config.get("SUPPORTERS_LOCALES") or ["en"]
    default = current_app.config.get("BABEL_DEFAULT_LOCALE") or supported[0]
    wanted = (language or "").strip().replace("-", "_")
    try:
        locale = Locale.parse(wanted) if wanted else None
    except (ValueError, UnknownLocaleError):
        locale = None
    if locale is not None:
        for candidate in (str(locale), locale.language):
            if candidate in supported:
                return candidate
    return default


def _render_receipt(gift: Gift, supporter: Supporter) -> tuple[str, str, str]:
    """Subject, plain text and HTML of a gift's receipt, in the supporter's language."""
    locale = receipt_locale(supporter.language)
    org_name = current_app.config.get("SUPPORTERS_ORG_NAME", "")
    plan = db.session.get(RecurringPlan, gift.recurring_plan_id) if gift.recurring_plan_id else None
    campaign = db.session.get(Campaign, gift.campaign_id) if gift.campaign_id else None
    recurring = gift.kind == GiftKind.RECURRING
    test_mode = bool(current_app.config.get("PAYMENTS_TEST_MODE", True)) and gift.method == GiftMethod.STRIPE

    with force_locale(locale):
        context = {
            "lang": locale,
            "org_name": org_name,
            "supporter_name": supporter.name.strip(),
            "amount": format_amount(gift.amount_minor, gift.currency, locale),
            "paid_on": format_date(gift.paid_at, format="long"),
            "receipt_number": gift.receipt_number,
            "frequency": _frequency(gift, plan),
            "campaign_name": campaign.name if campaign else None,
            "dedication": _dedication(gift),
            "recurring": recurring,
            "test_mode": test_mode,
        }
        if gift.receipt_number:
            subject = _("Receipt %(number)s for your gift to %(org)s", number=gift.receipt_number, org=org_name)
        else:
            subject = _("Thank you for your gift to %(org)s", org=org_name)
        body_text = render_template("email/receipt.txt", **context)
        body_html = render_template("email/receipt.html", **context)
    return subject, body_text, body_html


def _frequency(gift: Gift, plan: RecurringPlan | None) -> str:
    if gift.kind != GiftKind.RECURRING:
        return _("One-time gift")
    if plan is not None and plan.interval == PlanInterval.YEAR:
        return _("Yearly gift")
    if plan is not None and plan.interval == PlanInterval.MONTH:
        return _("Monthly gift")
    return _("Regular gift")


def _dedication(gift: Gift) -> str | None:
    name = (gift.dedication or "").strip()
    if not name:
        return None
    if gift.dedication_kind == "memory":
        return _("In memory of %(name)s", name=name)
    if gift.dedication_kind == "honour":
        return _("In honour of %(name)s", name=name)
    return name


# --- Sending ---------------------------------------------------------------------


@dataclass(frozen=True)
class SendReport:
    """What one `send_due` run did."""

    sent: int = 0
    failed: int = 0


def backoff(attempts: int) -> timedelta:
    """How long to wait after the `attempts`-th failed attempt: 1 min, 5 min, 30 min, 2 h, then 12 h."""
    return BACKOFF_STEPS[min(max(attempts, 1), len(BACKOFF_STEPS)) - 1]


def send_due(now: datetime | None = None, limit: int = 50, backend: Backend | None = None) -> SendReport:
    """Send up to `limit` unsent messages that are due at `now`, oldest first; commit after each.

    `backend` delivers a message (default: the one named by MAIL_BACKEND). A sent
    message gets sent_at. When building or delivering a message raises, the message
    stays in the outbox, unsent: attempts goes up by one, last_error says why, and
    send_after moves to now + backoff(attempts). Nothing is ever deleted.
    On PostgreSQL each message is locked while it is sent (SKIP LOCKED), so
    workers running side by side never send the same message twice.
    """
    now = now or utcnow()
    deliver = backend or get_backend()
    due = (
        select(OutboxEmail)
        .where(OutboxEmail.sent_at.is_(None), OutboxEmail.send_after <= now)
        .order_by(OutboxEmail.send_after, OutboxEmail.id)
        .limit(1)
    )
    if db.session.get_bind().dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)

    sent = failed = 0
    for _position in range(limit):
        # One row per transaction: the lock is held only while that message is sent.
        email = db.session.scalars(due).first()
        if email is None:
            break
        try:
            deliver(email, build_message(email, now))
        except Exception as exc:  # noqa: BLE001 - any failure must leave the message queued
            email.attempts += 1
            email.last_error = _describe(exc)
            email.send_after = now + backoff(email.attempts)
            failed += 1
            log.warning("outbox e-mail %s not sent (attempt %s): %s", email.id, email.attempts, email.last_error)
        else:
            email.sent_at = now
            sent += 1
        db.session.commit()
    db.session.commit()  # ends the transaction the last (empty) select opened
    return SendReport(sent=sent, failed=failed)


def build_message(email: OutboxEmail, now: datetime | None = None) -> EmailMessage:
    """The RFC 5322 message for an outbox row: plain text, with the HTML as an alternative."""
    sender = current_app.config.get("MAIL_DEFAULT_SENDER", "Supporters <noreply@localhost>")
    message = EmailMessage()
    message["From"] = sender
    message["To"] = email.to_address
    reply_to = current_app.config.get("MAIL_REPLY_TO")
    if reply_to:
        message["Reply-To"] = reply_to
    message["Subject"] = email.subject
    message["Date"] = format_datetime(now or utcnow())
    message["Message-ID"] = _message_id(email, sender)
    message.set_content(email.body_text)
    if email.body_html:
        message.add_alternative(email.body_html, subtype="html")
    return message


def _message_id(email: OutboxEmail, sender: str) -> str:
    # Stable across retries, so a message sent twice is recognisably the same one;
    # created_at keeps ids apart when a database is recreated and ids restart.
    domain = parseaddr(sender)[1].rpartition("@")[2] or "localhost"
    stamp = int(email.created_at.timestamp()) if email.created_at else 0
    return f"<outbox.{email.id}.{stamp}@{domain}>"


def _describe(exc: Exception) -> str:
    text = f"{type(exc).__name__}: {exc}"
    password = current_app.config.get("MAIL_PASSWORD")
    if password:
        text = text.replace(password, "***")
    return " ".join(text.split())[:_LAST_ERROR_LENGTH]


def get_backend(name: str | None = None) -> Backend:
    """The delivery backend called `name` (default: config MAIL_BACKEND): file, smtp or memory."""
    name = (name or current_app.config.get("MAIL_BACKEND") or "file").strip().lower()
    backends: dict[str, Backend] = {"file": file_backend, "smtp": smtp_backend, "memory": memory_backend}
    if name not in backends:
        raise ValueError(f"MAIL_BACKEND must be file, smtp or memory, not {name!r}")
    return backends[name]


def file_backend(email: OutboxEmail, message: EmailMessage) -> None:
    """Write the message as an .eml file into MAIL_FILE_DIR (default: instance/mail/).

    Named `{id:08d}-{kind}.eml`; a retry overwrites the same file.
    """
    directory = current_app.config.get("MAIL_FILE_DIR") or os.path.join(current_app.instance_path, "mail")
    os.makedirs(directory, exist_ok=True)
    kind = re.sub(r"[^A-Za-z0-9_-]", "_", email.kind)
    path = os.path.join(directory, f"{email.id:08d}-{kind}.eml")
    partial = path + ".partial"
    with open(partial, "wb") as handle:
        handle.write(message.as_bytes(policy=SMTP_POLICY))
    # Whole files only: a reader never sees half a message.
    os.replace(partial, path)


def smtp_backend(email: OutboxEmail, message: EmailMessage) -> None:
    """Send the message through MAIL_SERVER:MAIL_PORT (STARTTLS when MAIL_USE_TLS, login when MAIL_USERNAME)."""
    config = current_app.config
    with smtplib.SMTP(config.get("MAIL_SERVER", "localhost"), int(config.get("MAIL_PORT", 587)), timeout=30) as smtp:
        if config.get("MAIL_USE_TLS", True):
            smtp.starttls(context=ssl.create_default_context())
        if config.get("MAIL_USERNAME"):
            smtp.login(config["MAIL_USERNAME"], config.get("MAIL_PASSWORD", ""))
        smtp.send_message(message)


def memory_backend(email: OutboxEmail, message: EmailMessage) -> None:
    """Append the message to `sent_messages`. For tests only: nothing leaves the process."""
    sent_messages.append(message)


# --- The worker ------------------------------------------------------------------


@click.command("worker")
@click.option("--interval", type=click.FloatRange(min=0.1), default=2.0, show_default=True,
              help="Seconds to wait between rounds.")
@click.option("--once", is_flag=True, help="Send what is due now, then exit.")
@with_appcontext
def worker_cli(interval: float, once: bool) -> None:
    """Send queued e-mails: for ever (stop with Ctrl-C), or with --once what is due now."""
    limit = 50
    try:
        backend = get_backend()
    except ValueError as exc:  # misconfigured: stop at once rather than fail every round
        raise click.ClickException(str(exc)) from None
    try:
        if once:
            sent = failed = 0
            while True:
                report = send_due(limit=limit, backend=backend)
                sent, failed = sent + report.sent, failed + report.failed
                # Failed messages are rescheduled into the future, so a full round means more are due.
                if report.sent + report.failed < limit:
                    break
            click.echo(f"Sent {sent} e-mail(s), {failed} failed.")
            return
        click.echo(f"Sending queued e-mails every {interval:g} s (Ctrl-C stops).")
        while True:
            report = _worker_round(limit, backend)
            if report.sent or report.failed:
                click.echo(f"Sent {report.sent} e-mail(s), {report.failed} failed.")
            if report.sent + report.failed < limit:
                time.sleep(interval)
    except KeyboardInterrupt:
        db.session.rollback()
        click.echo("Worker stopped.")


def _worker_round(limit: int, backend: Backend) -> SendReport:
    # The long-running worker outlives a database restart: log, and try again next round.
    try:
        return send_due(limit=limit, backend=backend)
    except Exception:  # noqa: BLE001
        db.session.rollback()
        log.exception("e-mail worker round failed")
        return SendReport()
