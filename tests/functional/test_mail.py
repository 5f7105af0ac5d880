"""The e-mail outbox: receipts queued with the payment, sent by the worker with retries."""

from __future__ import annotations

import smtplib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from supporters.lib.money import format_amount
from supporters.mail import cli as mail_cli
from supporters.mail import outbox
from supporters.mail import receipts as mail_receipts
from supporters.mail.cli import worker_cli
from supporters.mail.outbox import backoff, send_due
from supporters.mail.receipts import queue_receipt
from supporters.models import Campaign, GiftKind, OutboxEmail, utcnow
from tests import factories

PAID = datetime(2026, 1, 10, 12, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def memory_mail(app: Flask, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[EmailMessage]]:
    """Every test sends into `outbox.sent_messages`, emptied before and after."""
    monkeypatch.setitem(app.config, "MAIL_BACKEND", "memory")
    outbox.sent_messages.clear()
    yield outbox.sent_messages
    outbox.sent_messages.clear()


def paid_gift(receipt_number: str | None = "2026-000001", **fields: Any):
    fields.setdefault("paid_at", PAID)
    gift = factories.paid_gift(fields.pop("owner", None), **fields)
    gift.receipt_number = receipt_number
    return gift


def outbox_count(db: Any) -> int:
    return db.session.scalar(select(func.count()).select_from(OutboxEmail))


def failing_backend(email: OutboxEmail, message: EmailMessage) -> None:
    raise ConnectionRefusedError("[Errno 111] Connection refused")


# --- Queueing ---------------------------------------------------------------------


def test_a_paid_gift_gets_one_receipt_however_often_it_is_queued(db: Any) -> None:
    gift = paid_gift()

    first = queue_receipt(gift)
    second = queue_receipt(gift)

    assert first is not None and first.id is not None
    assert first.dedupe_key == f"receipt:gift:{gift.id}"
    assert first.kind == "receipt"
    assert second is None
    assert outbox_count(db) == 1


def test_each_instalment_of_a_plan_gets_its_own_receipt(db: Any) -> None:
    person = factories.supporter()
    plan = factories.plan(person)
    first = paid_gift("2026-000010", owner=person, kind=GiftKind.RECURRING, recurring_plan_id=plan.id)
    renewal = paid_gift("2026-000011", owner=person, kind=GiftKind.RECURRING, recurring_plan_id=plan.id)

    assert queue_receipt(first) is not None
    assert queue_receipt(renewal) is not None
    assert outbox_count(db) == 2


def test_receipt_is_addressed_to_the_supporter_and_due_at_once(db: Any) -> None:
    person = factories.supporter(email="Ada.Lovelace@Example.org", name="Ada Lovelace")
    before = utcnow()

    email = queue_receipt(paid_gift(owner=person))

    assert email is not None
    assert email.to_address == "Ada.Lovelace@Example.org"
    assert email.sent_at is None and email.attempts == 0 and email.last_error is None
    assert before <= email.send_after <= utcnow()


def test_english_receipt_names_the_organisation_supporter_amount_date_and_number(app: Flask, db: Any) -> None:
    person = factories.supporter(name="Ada Lovelace", language="en")
    campaign = Campaign(slug="winter", name="Winter appeal", goal_currency="PLN")
    db.session.add(campaign)
    db.session.flush()
    gift = paid_gift(
        "2026-000042",
        owner=person,
        amount_minor=5000,
        campaign_id=campaign.id,
        dedication_kind="memory",
        dedication="Grace Hopper",
    )

    email = queue_receipt(gift)

    assert email is not None
    org = app.config["SUPPORTERS_ORG_NAME"]
    assert email.subject == f"Receipt 2026-000042 for your gift to {org}"
    for body in (email.body_text, email.body_html):
        assert org in body
        assert "Thank you for your gift, Ada Lovelace!" in body
        assert "PLN50.00" in body
        assert "January 10, 2026" in body
        assert "2026-000042" in body
        assert "One-time gift" in body
        assert "Winter appeal" in body
        assert "In memory of Grace Hopper" in body
        assert "Stripe test mode" in body
        assert "reply to this e-mail" not in body
    assert '<html lang="en">' in email.body_html


@pytest.mark.parametrize(("interval", "label"), [("month", "Monthly gift"), ("year", "Yearly gift")])
def test_recurring_receipt_says_how_often_and_how_to_change_or_stop_it(db: Any, interval: str, label: str) -> None:
    person = factories.supporter()
    plan = factories.plan(person, interval=interval)
    gift = paid_gift(owner=person, kind=GiftKind.RECURRING, recurring_plan_id=plan.id)

    email = queue_receipt(gift)

    assert email is not None
    for body in (email.body_text, email.body_html):
        assert label in body
        assert "change or stop your regular gift at any time: just reply to this e-mail" in body


def test_polish_receipt_writes_amount_and_date_the_polish_way(db: Any) -> None:
    person = factories.supporter(language="pl")

    email = queue_receipt(paid_gift(owner=person, amount_minor=5000, currency="PLN"))

    assert email is not None
    assert format_amount(5000, "PLN", "pl") == "50,00\u00a0zł"
    for body in (email.body_text, email.body_html):
        assert "50,00\u00a0zł" in body
        assert "10 stycznia 2026" in body
    assert '<html lang="pl">' in email.body_html


@pytest.mark.parametrize("language", ["de", "xx", "", "??"])
def test_a_language_without_translation_gets_the_default_language(db: Any, language: str) -> None:
    person = factories.supporter(language=language)

    email = queue_receipt(paid_gift(owner=person))

    assert email is not None
    assert '<html lang="en">' in email.body_html
    assert "PLN50.00" in email.body_text


def test_regional_language_tag_uses_its_language(db: Any) -> None:
    person = factories.supporter(language="pl-PL")

    email = queue_receipt(paid_gift(owner=person))

    assert email is not None and '<html lang="pl">' in email.body_html


def test_receipt_without_test_mode_does_not_mention_it(app: Flask, db: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(app.config, "PAYMENTS_TEST_MODE", False)

    email = queue_receipt(paid_gift())

    assert email is not None
    assert "test mode" not in email.body_text and "test mode" not in email.body_html
    for body in (email.body_text, email.body_html):  # the receipt itself is all there
        assert "PLN50.00" in body and "2026-000001" in body


def test_html_receipt_escapes_hostile_names_and_dedications(db: Any) -> None:
    person = factories.supporter(name="<script>alert(1)</script>")
    gift = paid_gift(owner=person, dedication_kind="honour", dedication='<img src=x onerror="alert(2)">')

    email = queue_receipt(gift)

    assert email is not None
    assert "<script>" not in email.body_html and "<img" not in email.body_html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in email.body_html
    assert "&lt;img src=x onerror=&#34;alert(2)&#34;&gt;" in email.body_html
    # plain text is not HTML: the name is shown as typed
    assert "<script>alert(1)</script>" in email.body_text


def test_anonymised_supporter_gets_no_receipt(db: Any) -> None:
    person = factories.supporter(anonymised_at=utcnow())

    assert queue_receipt(paid_gift(owner=person)) is None
    assert outbox_count(db) == 0
    assert queue_receipt(paid_gift("2026-000002")) is not None, "a supporter not erased does get one"
    assert outbox_count(db) == 1


def test_unpaid_gift_is_refused_a_receipt(db: Any) -> None:
    with pytest.raises(ValueError, match="not paid"):
        queue_receipt(factories.gift())
    assert outbox_count(db) == 0


def test_a_receipt_queued_meanwhile_by_another_transaction_is_not_duplicated(
    db: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    gift = paid_gift()
    db.session.add(
        OutboxEmail(
            dedupe_key=f"receipt:gift:{gift.id}", kind="receipt", to_address="a@example.org", subject="s", body_text="t"
        )
    )
    db.session.flush()
    answers = iter([False, True])  # the check misses the other row, as in a race; the constraint does not
    monkeypatch.setattr(mail_receipts, "_already_queued", lambda key: next(answers))

    assert queue_receipt(gift) is None
    assert outbox_count(db) == 1
    assert db.session.get(type(gift), gift.id).paid_at == PAID  # the caller's transaction is still usable


# --- Sending ----------------------------------------------------------------------


def test_backoff_waits_longer_after_each_failure_up_to_twelve_hours() -> None:
    assert [backoff(n) for n in range(1, 8)] == [
        timedelta(minutes=1),
        timedelta(minutes=5),
        timedelta(minutes=30),
        timedelta(hours=2),
        timedelta(hours=12),
        timedelta(hours=12),
        timedelta(hours=12),
    ]


def test_due_message_is_sent_once_with_headers_and_both_parts(
    app: Flask, db: Any, memory_mail: list[EmailMessage]
) -> None:
    email = queue_receipt(paid_gift())
    assert email is not None
    now = utcnow()

    report = send_due(now=now)
    again = send_due(now=now + timedelta(days=1))

    assert (report.sent, report.failed) == (1, 0)
    assert (again.sent, again.failed) == (0, 0)
    assert email.sent_at == now
    assert len(memory_mail) == 1
    message = memory_mail[0]
    assert message["From"] == app.config["MAIL_DEFAULT_SENDER"]
    assert message["To"] == email.to_address
    assert message["Subject"] == email.subject
    assert message["Message-ID"].startswith(f"<outbox.{email.id}.")
    assert message["Date"]
    assert message.get_body(("plain",)).get_content() == email.body_text + "\n"
    assert message.get_body(("html",)).get_content().strip() == email.body_html.strip()


def test_message_not_yet_due_waits(db: Any, memory_mail: list[EmailMessage]) -> None:
    email = queue_receipt(paid_gift())
    assert email is not None
    now = utcnow()
    email.send_after = now + timedelta(minutes=10)

    assert send_due(now=now).sent == 0
    assert email.sent_at is None and memory_mail == []
    assert send_due(now=email.send_after).sent == 1, "it is sent once it is due"
    assert [message["To"] for message in memory_mail] == [email.to_address]


def test_oldest_due_messages_go_first_and_limit_caps_a_round(db: Any, memory_mail: list[EmailMessage]) -> None:
    emails = [queue_receipt(paid_gift(f"2026-00010{n}")) for n in range(3)]
    now = utcnow()
    for minutes, email in zip((3, 1, 2), emails, strict=True):
        assert email is not None
        email.send_after = now - timedelta(minutes=minutes)

    report = send_due(now=now, limit=2)

    assert report.sent == 2
    assert [m["To"] for m in memory_mail] == [emails[0].to_address, emails[2].to_address]
    assert emails[1].sent_at is None


def test_failed_send_keeps_the_message_and_retries_after_the_backoff(db: Any, memory_mail: list[EmailMessage]) -> None:
    email = queue_receipt(paid_gift())
    assert email is not None
    now = utcnow()

    report = send_due(now=now, backend=failing_backend)

    assert (report.sent, report.failed) == (0, 1)
    assert email.sent_at is None
    assert email.attempts == 1
    assert email.last_error == "ConnectionRefusedError: [Errno 111] Connection refused"
    assert email.send_after == now + timedelta(minutes=1)

    assert send_due(now=now + timedelta(seconds=59)).sent == 0
    second = send_due(now=now + timedelta(minutes=1))
    assert second.sent == 1
    assert email.sent_at == now + timedelta(minutes=1)
    assert email.attempts == 1
    assert len(memory_mail) == 1


def test_repeated_failures_back_off_further(db: Any) -> None:
    email = queue_receipt(paid_gift())
    assert email is not None
    now = utcnow()

    send_due(now=now, backend=failing_backend)
    send_due(now=now + timedelta(minutes=1), backend=failing_backend)

    assert email.attempts == 2
    assert email.send_after == now + timedelta(minutes=1) + timedelta(minutes=5)


def test_last_error_never_shows_the_smtp_password(app: Flask, db: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(app.config, "MAIL_PASSWORD", "hunter2-secret")

    def leaky_backend(email: OutboxEmail, message: EmailMessage) -> None:
        raise smtplib.SMTPAuthenticationError(535, b"bad login for user with password hunter2-secret")

    email = queue_receipt(paid_gift())
    assert email is not None
    now = utcnow()
    send_due(now=now, backend=leaky_backend)

    assert email.last_error is not None and "hunter2" not in email.last_error
    assert len(email.last_error) <= 300
    assert email.last_error.startswith("SMTPAuthenticationError: ") and "password ***" in email.last_error


def test_file_backend_writes_a_parseable_eml_with_text_and_html(
    app: Flask, db: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(app.config, "MAIL_BACKEND", "file")
    monkeypatch.setitem(app.config, "MAIL_FILE_DIR", str(tmp_path / "mail"))
    email = queue_receipt(paid_gift())
    assert email is not None
    now = utcnow()

    assert send_due(now=now).sent == 1

    path = tmp_path / "mail" / f"{email.id:08d}-receipt.eml"
    assert [p.name for p in (tmp_path / "mail").iterdir()] == [path.name]
    raw = path.read_bytes()
    assert b"\r\n" in raw and b"\n" not in raw.replace(b"\r\n", b""), "RFC 5322 lines end in CRLF"
    message = message_from_bytes(raw, policy=policy.default)
    assert message["To"] == email.to_address
    assert message["Subject"] == email.subject
    assert message["From"] == app.config["MAIL_DEFAULT_SENDER"]
    assert message["Message-ID"] and message["Date"]
    assert message.get_content_type() == "multipart/alternative"
    assert message.get_body(("plain",)).get_content().replace("\r\n", "\n").strip() == email.body_text.strip()
    assert "<html" in message.get_body(("html",)).get_content()


def test_smtp_backend_uses_tls_and_login_when_configured(app: Flask, db: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[Any, ...]] = []

    class FakeSMTP:
        def __init__(self, host: str, port: int, timeout: float) -> None:
            calls.append(("connect", host, port, timeout))

        def __enter__(self) -> FakeSMTP:
            return self

        def __exit__(self, *exc: object) -> None:
            calls.append(("quit",))

        def starttls(self, context: object) -> None:
            calls.append(("starttls",))

        def login(self, user: str, password: str) -> None:
            calls.append(("login", user, password))

        def send_message(self, message: EmailMessage) -> None:
            calls.append(("send", message["To"]))

    monkeypatch.setattr(smtplib, "SMTP", FakeSMTP)
    for key, value in {
        "MAIL_BACKEND": "smtp",
        "MAIL_SERVER": "smtp.example.org",
        "MAIL_PORT": 587,
        "MAIL_USE_TLS": True,
        "MAIL_USERNAME": "mailer",
        "MAIL_PASSWORD": "pw",
    }.items():
        monkeypatch.setitem(app.config, key, value)
    email = queue_receipt(paid_gift())
    assert email is not None
    now = utcnow()

    assert send_due(now=now).sent == 1
    assert calls == [
        ("connect", "smtp.example.org", 587, 30),
        ("starttls",),
        ("login", "mailer", "pw"),
        ("send", email.to_address),
        ("quit",),
    ]


def test_unknown_backend_is_refused_before_anything_is_touched(
    app: Flask, db: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(app.config, "MAIL_BACKEND", "pigeon")
    email = queue_receipt(paid_gift())
    now = utcnow()

    with pytest.raises(ValueError, match="MAIL_BACKEND"):
        send_due(now=now)
    assert email is not None and email.attempts == 0


# --- The worker -------------------------------------------------------------------


def test_worker_once_sends_what_is_due_and_says_how_many(cli: Any, db: Any, memory_mail: list[EmailMessage]) -> None:
    queue_receipt(paid_gift("2026-000201"))
    queue_receipt(paid_gift("2026-000202"))

    result = cli.invoke(worker_cli, ["--once"])

    assert result.exit_code == 0, result.output
    assert "Sent 2 e-mail(s), 0 failed." in result.output
    assert len(memory_mail) == 2


def test_worker_once_with_nothing_due_sends_nothing(cli: Any, db: Any) -> None:
    result = cli.invoke(worker_cli, ["--once"])

    assert result.exit_code == 0, result.output
    assert "Sent 0 e-mail(s), 0 failed." in result.output


def test_worker_stops_quietly_on_ctrl_c(cli: Any, db: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupt(seconds: float) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(mail_cli.time, "sleep", interrupt)

    result = cli.invoke(worker_cli, ["--interval", "0.5"])

    assert result.exit_code == 0, result.output
    assert "Worker stopped." in result.output
    assert "Traceback" not in result.output


def test_worker_refuses_an_unknown_backend(app: Flask, cli: Any, db: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(app.config, "MAIL_BACKEND", "pigeon")

    result = cli.invoke(worker_cli, ["--once"])

    assert result.exit_code != 0
    assert "MAIL_BACKEND must be file, smtp or memory" in result.output
