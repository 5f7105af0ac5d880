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
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import format_datetime, formataddr, parseaddr

from flask import current_app
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite

from supporters.extensions import db
from supporters.models import (
    OutboxEmail,
    utcnow,
)

log = logging.getLogger(__name__)


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


#: the header lines an outbox row may carry of its own (`queue_once(headers=...)`); any
#: other name is refused when queued, so no row can forge From, To or Subject
OWN_HEADERS = frozenset({"List-Unsubscribe", "List-Unsubscribe-Post", "List-Id"})


def queue_once(
    dedupe_key: str,
    kind: str,
    to_address: str,
    subject: str,
    body_text: str,
    body_html: str,
    headers: dict[str, str] | None = None,
) -> OutboxEmail | None:
    """Queue a message to send now, or None when one with `dedupe_key` is there already;
    never commits. `headers` are header lines of its own (names in OWN_HEADERS), e.g. a
    newsletter-type e-mail's List-Unsubscribe (mail/unsubscribe.py).

    One statement, INSERT … ON CONFLICT (dedupe_key) DO NOTHING: a duplicate from a
    concurrent transaction (it waits for that one's commit) adds nothing and leaves the
    caller's transaction (the one that records a payment, say) as it was."""
    for name, value in (headers or {}).items():
        if name not in OWN_HEADERS or "\r" in value or "\n" in value:
            raise ValueError(f"an outbox e-mail may not carry the header {name!r}: {value!r}")
    dialect = postgresql if db.session.connection().dialect.name == "postgresql" else sqlite
    statement = (
        dialect.insert(OutboxEmail)
        .values(
            dedupe_key=dedupe_key,
            kind=kind,
            to_address=to_address,
            subject=subject[:300],
            body_text=body_text,
            body_html=body_html,
            headers=dict(headers) if headers else None,
            send_after=utcnow(),
        )
        .on_conflict_do_nothing(index_elements=[OutboxEmail.dedupe_key])
        .returning(OutboxEmail)
    )
    return db.session.scalars(statement).one_or_none()


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
        except Exception as exc:
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
    """The RFC 5322 message for an outbox row: plain text, with the HTML as an alternative,
    from the organisation's name (`from_address()`), with a Reply-To that reaches someone
    (MAIL_REPLY_TO, else SUPPORTERS_ORG_EMAIL) and the row's own header lines (OWN_HEADERS)."""
    sender = from_address()
    message = EmailMessage()
    message["From"] = sender
    message["To"] = email.to_address
    # Receipts and notices invite a reply, and the sender is often a no-reply address:
    # replies go to MAIL_REPLY_TO, else to the organisation's contact address.
    reply_to = current_app.config.get("MAIL_REPLY_TO") or current_app.config.get("SUPPORTERS_ORG_EMAIL")
    if reply_to:
        message["Reply-To"] = reply_to
    message["Subject"] = email.subject
    message["Date"] = format_datetime(now or utcnow())
    message["Message-ID"] = _message_id(email, sender)
    for name, value in (email.headers or {}).items():
        if name in OWN_HEADERS and isinstance(value, str):
            message[name] = value
    message.set_content(email.body_text)
    if email.body_html:
        message.add_alternative(email.body_html, subtype="html")
    return message


def from_address() -> str:
    """MAIL_DEFAULT_SENDER; a bare address is named as the organisation (SUPPORTERS_ORG_NAME),
    so donors read who writes ("Fundacja X <noreply@x.org>")."""
    configured = current_app.config.get("MAIL_DEFAULT_SENDER") or "Supporters <noreply@localhost>"
    name, address = parseaddr(configured)
    org_name = str(current_app.config.get("SUPPORTERS_ORG_NAME") or "").strip()
    if address and org_name and not name:
        return formataddr((org_name, address))
    return configured


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
