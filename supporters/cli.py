"""Command-line tools: `flask --app wsgi demo …`, `staff …`, `stripe …`, `derived …`, `dev …`."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from urllib.parse import urlsplit

import click
from email_validator import EmailNotValidError, validate_email
from flask import current_app
from flask.cli import AppGroup
from sqlalchemy import select
from werkzeug.serving import run_simple

from supporters.demo import content as demo
from supporters.extensions import db
from supporters.giving import lifecycle, stripe_events
from supporters.giving.stripe_events import DuplicateEvent, process_event
from supporters.lib import audit
from supporters.mail.outbox import send_due
from supporters.models import Gift, GiftStatus, StaffRole, StaffUser, StripeEvent, derived
from supporters.payments import PaymentsUnavailable, gateway
from supporters.payments.offline import OfflineGateway

MIN_PASSWORD_LENGTH = 12
DEMO_ADMIN_EMAIL = "admin@example.org"

demo_cli = AppGroup("demo", help="Demo content for trying the app.")
staff_cli = AppGroup("staff", help="Staff accounts for the dashboard.")
stripe_cli = AppGroup("stripe", help="Payments: repair what missed webhooks left behind.")
dev_cli = AppGroup("dev", help="Local development: the app with its offline payment stack.")
derived_cli = AppGroup("derived", help="What is kept from other rows (giving totals, search keys, newsletter flags).")


@derived_cli.command("rebuild")
def derived_rebuild() -> None:
    """Recompute what is kept from other rows: giving totals, search keys, newsletter flags.

    Needed only after rows were changed behind the app (SQL by hand, a bulk import);
    says what had drifted. One transaction: all of it or none; on PostgreSQL, gifts,
    supporters and consents wait to be written until it ends (seconds per million gifts).
    """
    rebuilt = derived.rebuild(db.session.connection())
    db.session.commit()
    click.echo(f"Giving totals: {'had drifted, rebuilt' if rebuilt.totals else 'in step'}.")
    click.echo(f"Search keys: {'had drifted, rebuilt' if rebuilt.search_keys else 'in step'}.")
    click.echo(
        f"Newsletter flags: {rebuilt.newsletter_flags} corrected."
        if rebuilt.newsletter_flags
        else "Newsletter flags: in step."
    )


@demo_cli.command("seed")
@click.option("--if-empty", is_flag=True, help="Only seed a database with no supporters, campaigns or articles.")
def demo_seed(if_empty: bool) -> None:
    """Add the demo campaign, articles, supporters and gifts (safe to run again)."""
    if if_empty and not demo.database_is_empty():
        click.echo("The database already has data; demo content not added.")
        return
    report = demo.seed()
    db.session.commit()
    click.echo(
        f"Demo content: {report.campaigns} campaign(s), {report.articles} article(s), "
        f"{report.supporters} supporter(s), {report.gifts} gift(s), {report.plans} recurring plan(s) added."
    )


@demo_cli.command("admin")
def demo_admin() -> None:
    """Create a demo admin when there is no staff account at all, and print its login once."""
    if db.session.execute(select(StaffUser.id).limit(1)).first():
        click.echo("Staff accounts exist; no demo admin created.")
        return
    password = secrets.token_urlsafe(12)
    _create_staff(DEMO_ADMIN_EMAIL, StaffRole.ADMIN, password)
    db.session.commit()
    click.secho("A demo admin was created. This login is shown only once:", bold=True)
    click.echo(f"  e-mail:   {DEMO_ADMIN_EMAIL}\n  password: {password}")


@staff_cli.command("create")
@click.argument("email")
@click.option("--role", type=click.Choice([role.value for role in StaffRole]), required=True)
def staff_create(email: str, role: str) -> None:
    """Create a staff account. The password comes from SUPPORTERS_STAFF_PASSWORD or a prompt."""
    try:
        email = validate_email(email, check_deliverability=False).normalized.lower()
    except EmailNotValidError as exc:
        raise click.BadParameter(str(exc), param_hint="EMAIL") from None
    if db.session.execute(select(StaffUser.id).filter_by(email=email)).first():
        raise click.ClickException(f"A staff account for {email} already exists.")
    password = os.environ.get("SUPPORTERS_STAFF_PASSWORD") or click.prompt(
        "Password", hide_input=True, confirmation_prompt=True
    )
    if len(password) < MIN_PASSWORD_LENGTH:
        raise click.ClickException(f"The password must have at least {MIN_PASSWORD_LENGTH} characters.")
    _create_staff(email, StaffRole(role), password)
    db.session.commit()
    click.echo(f"Created {role} account {email}.")


def _create_staff(email: str, role: StaffRole, password: str) -> StaffUser:
    user = StaffUser(email=email, role=role)
    user.set_password(password)
    db.session.add(user)
    db.session.flush()
    audit.record(None, "staff.create", "staff_user", user.id, actor_name="cli", email=email, role=role.value)
    return user


@stripe_cli.command("reconcile")
@click.option(
    "--since",
    "since",
    required=True,
    type=click.DateTime(formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S"]),
    help="Look at Stripe's events and payments from this date (UTC) on.",
)
def stripe_reconcile(since: datetime) -> None:
    """Replay Stripe's events that were never recorded, and settle pending payments Stripe knows the end of."""
    since = since.replace(tzinfo=UTC)
    try:
        events = list(gateway().events_since(since))
    except PaymentsUnavailable as exc:
        raise click.ClickException(f"Stripe could not be reached: {exc}") from None
    applied = skipped = failed = 0
    for event in events:
        try:
            outcome = process_event(event)
            db.session.commit()
        except DuplicateEvent:
            db.session.rollback()
            skipped += 1
            continue
        except Exception as exc:  # one broken event must not stop the rest
            db.session.rollback()
            failed += 1
            click.echo(f"  {event['id']} {event['type']}: FAILED ({exc})")
            continue
        applied += 1
        click.echo(f"  {event['id']} {event['type']}: {outcome}")
    woken, waiting, wake_failed = _apply_waiting_events()
    failed += wake_failed
    settled = _settle_pending_payments(since)
    click.echo(
        f"Events: {applied} applied, {skipped} already recorded, {failed} failed. "
        f"Waiting events applied: {woken}, still waiting: {waiting}. "
        f"Pending payments settled from Stripe: {settled}."
    )
    if failed:
        sys.exit(1)


def _apply_waiting_events() -> tuple[int, int, int]:
    """Try every event still waiting for an object again, each in its own transaction:
    (applied, still waiting, failed). Whatever their age: a waiting event is never dropped."""
    applied = still = failed = 0
    for event_id in stripe_events.waiting_event_ids():
        try:
            outcome = stripe_events.retry_waiting(event_id)
            db.session.commit()
        except Exception as exc:  # one broken event must not stop the rest
            db.session.rollback()
            failed += 1
            click.echo(f"  {event_id} (waiting): FAILED ({exc})")
            continue
        record = db.session.get(StripeEvent, event_id)
        if record is not None and record.waiting_for:
            still += 1
        elif outcome is not None:  # None: applied already, woken by an event tried before it
            applied += 1
            click.echo(f"  {event_id} (waiting): {outcome}")
    return applied, still, failed


def _settle_pending_payments(since: datetime) -> int:
    """Pending gifts whose payment Stripe already completed (the event may be too old to replay)."""
    pending = db.session.scalars(
        select(Gift).where(
            Gift.status.in_([GiftStatus.PENDING, GiftStatus.FAILED]),
            Gift.stripe_payment_intent_id.isnot(None),
            Gift.created_at >= since,
        )
    ).all()
    settled = 0
    for gift in pending:
        try:
            intent = gateway().retrieve_payment_intent(str(gift.stripe_payment_intent_id))
        except PaymentsUnavailable as exc:
            click.echo(f"  gift {gift.id}: could not ask Stripe ({exc})")
            continue
        if intent.get("status") == "succeeded" and (intent.get("metadata") or {}).get("gift_id") == str(gift.id):
            wrong = stripe_events.not_as_asked(
                intent.get("amount_received"), intent.get("currency"), gift.amount_minor, gift.currency
            )
            if wrong is not None:
                click.echo(f"  gift {gift.id}: not settled, payment {intent['id']} has {wrong}")
                continue
            charge = intent.get("latest_charge")
            lifecycle.mark_paid(
                gift, payment_intent_id=intent["id"], charge_id=charge.get("id") if isinstance(charge, dict) else charge
            )
            db.session.commit()
            settled += 1
            click.echo(f"  gift {gift.id}: succeeded (from payment {intent['id']})")
    return settled


@dev_cli.command("serve")
@click.option("--port", type=int, default=5000, show_default=True)
def dev_serve(port: int) -> None:
    """Serve the app on 127.0.0.1 with its worker and, without Stripe keys, localstripe."""

    app = current_app._get_current_object()  # type: ignore[attr-defined]
    if not os.environ.get("SUPPORTERS_PUBLIC_URL", "").strip():
        # links the app hands out point at this server, whatever port it was given
        app.config["SUPPORTERS_PUBLIC_URL"] = f"http://127.0.0.1:{port}"
    payments = gateway()
    localstripe = None
    if isinstance(payments, OfflineGateway):
        if not payments.is_up():
            ls_port = urlsplit(payments.base_url).port or 8420
            localstripe = subprocess.Popen(
                [sys.executable, "-m", "supporters.payments.localstripe_server", "--port", str(ls_port)]
            )
            for _ in range(100):
                if payments.is_up():
                    break
                if localstripe.poll() is not None:
                    raise click.ClickException(f"localstripe could not start on port {ls_port}.")
                time.sleep(0.1)
        payments.register_webhook(f"http://127.0.0.1:{port}/webhooks/stripe")
        click.echo(f"Offline payments: localstripe at {payments.base_url}, webhooks to this app.")
    else:
        click.echo(
            "Stripe keys are set: forward webhooks with `stripe listen --forward-to "
            f"http://127.0.0.1:{port}/webhooks/stripe`."
        )

    stop = threading.Event()

    def worker() -> None:
        while not stop.is_set():
            with app.app_context():
                try:
                    send_due()
                except Exception:
                    app.logger.exception("the e-mail worker failed; trying again")
            stop.wait(2)

    threading.Thread(target=worker, name="mail-worker", daemon=True).start()
    click.echo(f"Supporters is running on http://127.0.0.1:{port}/ (Ctrl+C to stop)")
    try:
        run_simple("127.0.0.1", port, app, threaded=True, use_reloader=False)
    finally:
        stop.set()
        if localstripe is not None:
            localstripe.terminate()
            localstripe.wait(timeout=10)
