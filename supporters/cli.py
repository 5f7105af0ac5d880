"""Command-line tools: `flask --app wsgi demo …`, `staff …`, `stripe …`, `derived …`, `duplicates …`, `dev …`."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import threading
import time
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import click
from email_validator import EmailNotValidError, validate_email
from flask import current_app
from flask.cli import AppGroup
from sqlalchemy import select
from werkzeug.serving import run_simple

from supporters.demo import content as demo
from supporters.extensions import db
from supporters.giving import currency, reconcile, settlement
from supporters.lib import audit, nbp
from supporters.mail.outbox import send_due
from supporters.models import StaffRole, StaffUser, derived
from supporters.payments import gateway
from supporters.payments.offline import OfflineGateway
from supporters.people import duplicates

MIN_PASSWORD_LENGTH = 12
DEMO_ADMIN_EMAIL = "admin@example.org"

demo_cli = AppGroup("demo", help="Demo content for trying the app.")
staff_cli = AppGroup("staff", help="Staff accounts for the dashboard.")
stripe_cli = AppGroup("stripe", help="Payments: repair what missed webhooks left behind.")
dev_cli = AppGroup("dev", help="Local development: the app with its offline payment stack.")
rates_cli = AppGroup("rates", help="Exchange rates: the National Bank of Poland's table A.")
derived_cli = AppGroup("derived", help="What is kept from other rows (giving totals, search keys, newsletter flags).")
duplicates_cli = AppGroup("duplicates", help="Likely duplicate supporters, for staff to review.")


@duplicates_cli.command("scan")
def duplicates_scan() -> None:
    """Find likely duplicate supporters again (a cron, nightly): the dashboard's review
    list shows what this found. Pairs staff dismissed are left out."""
    started = time.perf_counter()
    found = duplicates.scan()
    db.session.commit()
    click.echo(f"{found} possible duplicate pairs ({time.perf_counter() - started:.1f} s).")


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


@rates_cli.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, readable=True))
def rates_import(path: str) -> None:
    """Load table A from a file the bank publishes (the API's JSON or the yearly archive CSV),
    then convert the gifts that were waiting for these rates."""
    with open(path, "rb") as handle:
        data = handle.read(nbp.MAX_FILE_BYTES + 1)
    _import_rates(data, path)


@rates_cli.command("fetch")
@click.option(
    "--last",
    type=click.IntRange(1, nbp.MOST_TABLES),
    default=10,
    show_default=True,
    help="How many of the latest tables to ask the bank for (a table a working day).",
)
def rates_fetch(last: int) -> None:
    """Ask the bank's API (SUPPORTERS_NBP_API_URL) for its latest tables A and load them."""
    url = nbp.tables_url(current_app.config["SUPPORTERS_NBP_API_URL"], last)
    try:
        data = nbp.download(url)
    except nbp.RatesFileError as exc:
        raise click.ClickException(str(exc)) from None
    _import_rates(data, url)


def _import_rates(data: bytes, source: str) -> None:
    try:
        report = currency.import_tables(nbp.read_tables(data))
    except (nbp.RatesFileError, currency.RatesConflict) as exc:
        db.session.rollback()
        raise click.ClickException(f"{source}: {exc}") from None
    audit.record(
        None,
        "rates.import",
        actor_name="cli",
        source=source[:200],
        tables=report.tables,
        new_rates=report.new_rates,
        converted=report.converted,
    )
    db.session.commit()
    span = f"{report.first.isoformat()} to {report.last.isoformat()}" if report.first and report.last else "none"
    click.echo(
        f"Tables: {report.tables} ({span}); rates new: {report.new_rates}, already loaded: {report.known_rates}. "
        f"Gifts converted now: {report.converted}; still waiting for a rate: {currency.waiting_count()}."
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


class Since(click.ParamType):
    """A date (UTC) or a span back from now: 2026-01-31, 2026-01-31T12:00:00, 2d, 12h, 30m."""

    name = "since"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> datetime:
        if isinstance(value, datetime):
            return value
        try:
            return reconcile.since_from(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


@stripe_cli.command("reconcile")
@click.option(
    "--since",
    "since",
    required=True,
    type=Since(),
    help="Look at Stripe's events and payments from this date (UTC) or this long ago (2d, 12h) on.",
)
@click.option("--dry-run", is_flag=True, help="Say what would change, and change nothing.")
def stripe_reconcile(since: datetime, dry_run: bool) -> None:
    """Replay Stripe's events that were never recorded, and settle pending payments Stripe knows the end of."""
    report = reconcile.reconcile(since, dry_run=dry_run, actor=None, actor_name="cli", after_each=db.session.commit)
    if dry_run:
        db.session.rollback()
    else:
        db.session.commit()
    for change in report.changes:
        if change.kind in ("event", "waiting"):
            said = f"FAILED ({change.outcome})" if change.failed else change.outcome
            click.echo(f"  {change.reference} {change.what}: {said}")
        else:
            click.echo(f"  gift {change.gift_id}: {change.outcome} (from payment {change.reference})")
    filled = "" if dry_run else f", filled in {report.balances_filled}, not settled yet {report.balances_unsettled}"
    verb = "would be applied" if dry_run else "applied"
    settled = "would be settled" if dry_run else "settled"
    click.echo(
        f"{'Dry run, nothing was changed. ' if dry_run else ''}"
        f"Events: {report.applied} {verb}, {report.already_recorded} already recorded, {report.failed} failed. "
        f"Waiting events {verb}: {report.woken}, still waiting: {report.still_waiting}. "
        f"Pending payments {settled} from Stripe: {report.settled}. "
        f"Paid gifts without their fee and net: {report.balances_missing}{filled}."
    )
    if report.stripe_error is not None:
        raise click.ClickException(f"Stripe could not be reached: {report.stripe_error}")
    if report.failed:
        sys.exit(1)


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
                    # the offline stack settles at once: staff see fee and net on the next page
                    settlement.settle_due(after_each=db.session.commit)
                    db.session.commit()
                except Exception:
                    db.session.rollback()
                    app.logger.exception("the worker failed; trying again")
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
