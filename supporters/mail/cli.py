"""`flask worker`: send what the outbox holds, as it comes due; once a minute, fetch the
fee and net of Stripe payments just made (giving/settlement.py); every few minutes, queue
the renewal e-mails that are due (mail/reminders.py). `flask reminders` queues those once."""

from __future__ import annotations

import logging
import time

import click
from flask.cli import with_appcontext

from supporters.extensions import db
from supporters.giving import settlement
from supporters.mail import reminders
from supporters.mail.outbox import Backend, SendReport, get_backend, send_due

log = logging.getLogger(__name__)


@click.command("worker")
@click.option(
    "--interval", type=click.FloatRange(min=0.1), default=2.0, show_default=True, help="Seconds to wait between rounds."
)
@click.option("--once", is_flag=True, help="Send what is due now (and fetch due fees), then exit.")
@with_appcontext
def worker_cli(interval: float, once: bool) -> None:
    """Send queued e-mails and fetch new payments' fees: for ever (stop with Ctrl-C), or
    with --once what is due now."""
    limit = 50
    try:
        backend = get_backend()
    except ValueError as exc:  # misconfigured: stop at once rather than fail every round
        raise click.ClickException(str(exc)) from None
    try:
        if once:
            _reminders_round()
            sent = failed = 0
            while True:
                report = send_due(limit=limit, backend=backend)
                sent, failed = sent + report.sent, failed + report.failed
                # Failed messages are rescheduled into the future, so a full round means more are due.
                if report.sent + report.failed < limit:
                    break
            click.echo(f"Sent {sent} e-mail(s), {failed} failed.")
            _settle_round()
            return
        click.echo(f"Sending queued e-mails every {interval:g} s (Ctrl-C stops).")
        settled_at = reminded_at = -float("inf")
        while True:
            if time.monotonic() - settled_at >= SETTLE_EVERY:
                _settle_round()
                settled_at = time.monotonic()
            if time.monotonic() - reminded_at >= REMIND_EVERY:
                _reminders_round()
                reminded_at = time.monotonic()
            report = _worker_round(limit, backend)
            if report.sent or report.failed:
                click.echo(f"Sent {report.sent} e-mail(s), {report.failed} failed.")
            if report.sent + report.failed < limit:
                time.sleep(interval)
    except KeyboardInterrupt:
        db.session.rollback()
        click.echo("Worker stopped.")


#: seconds between two rounds of asking Stripe for new payments' balance transactions
SETTLE_EVERY = 60.0
#: seconds between two rounds of looking for renewal e-mails due (they are due by the day)
REMIND_EVERY = 300.0


def _reminders_round() -> reminders.ReminderReport:
    """Queue the renewal reminders and last notices due now, and commit; a failure is logged."""
    try:
        report = reminders.run_round()
        db.session.commit()
    except Exception:
        db.session.rollback()
        log.exception("queueing renewal e-mails failed")
        return reminders.ReminderReport()
    if report.reminders or report.last_notices:
        click.echo(f"Queued {report.reminders} renewal reminder(s), {report.last_notices} last notice(s).")
    return report


@click.command("reminders")
@with_appcontext
def reminders_cli() -> None:
    """Queue the renewal e-mails due now (yearly reminders, last notices of failed renewals),
    once; the worker sends them. The worker does this every few minutes by itself."""
    report = _reminders_round()
    click.echo(f"Queued {report.reminders} renewal reminder(s), {report.last_notices} last notice(s).")


def _settle_round() -> settlement.SettleReport:
    """Record the fee and net of payments made lately; Stripe out of reach is logged, not fatal."""
    try:
        report = settlement.settle_due(after_each=db.session.commit)
        db.session.commit()
    except Exception:
        db.session.rollback()
        log.exception("fetching Stripe's fees failed")
        return settlement.SettleReport()
    if report.settled or report.waiting:
        click.echo(f"Fees recorded for {report.settled} payment(s); {report.waiting} not settled by Stripe yet.")
    if report.error is not None:
        log.warning("Stripe could not be asked for fees: %s", report.error)
    return report


def _worker_round(limit: int, backend: Backend) -> SendReport:
    # The long-running worker outlives a database restart: log, and try again next round.
    try:
        return send_due(limit=limit, backend=backend)
    except Exception:
        db.session.rollback()
        log.exception("e-mail worker round failed")
        return SendReport()
