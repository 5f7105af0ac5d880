"""`flask privacy purge` (a daily cron): what erasures kept for the books is removed once
the retention period is over (docs/privacy.md)."""

from __future__ import annotations

from datetime import date

import click
from flask.cli import AppGroup

from supporters.extensions import db
from supporters.lib.dates import org_today
from supporters.privacy import erasure

privacy_cli = AppGroup("privacy", help="Privacy requests: the purge after the retention period.")


@privacy_cli.command("purge")
@click.option("--today", "today", type=click.DateTime(formats=["%Y-%m-%d"]), default=None, hidden=True)
def purge_command(today: object) -> None:
    """Remove the gifts' remaining identifiers and the log entries of erased supporters whose
    retention period has ended, and who asked on requests closed over a year ago."""
    day = today.date() if today is not None else org_today()  # type: ignore[attr-defined]
    assert isinstance(day, date)
    done = erasure.purge(day)
    db.session.commit()
    for supporter_id, gifts in done.supporters.items():
        click.echo(f"Purged erased supporter #{supporter_id}: {gifts} gift(s) kept as anonymous figures.")
    click.echo(
        f"Purged {len(done.supporters)} erased supporter(s) past the retention period; "
        f"cleared who asked on {done.requests_cleared} closed request(s); "
        f"removed {done.uploads_removed} import upload(s) never imported."
    )
