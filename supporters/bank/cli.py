"""`flask bank import FILE` (a cron applies the sure matches; the rest waits for staff) and
`flask bank close-stale-pledges` (daily: pledges nobody paid for are closed)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup

from supporters.bank import imports
from supporters.bank.formats import FORMATS, PRESETS, read_statement
from supporters.bank.matching import preview
from supporters.extensions import db
from supporters.giving import transfers
from supporters.lib.errors import Refused
from supporters.models import LineMatch

bank_cli = AppGroup("bank", help="Bank statements and bank-transfer pledges.")


def _format_for(path: Path, given: str | None) -> str:
    if given:
        return given
    return "csv" if path.suffix.lower() == ".csv" else "mt940"


@bank_cli.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--format", "file_format", type=click.Choice(FORMATS), help="The file's format (by default from its name)."
)
@click.option("--preset", default=None, help=f"The CSV layout: {', '.join(PRESETS)} or one configured.")
@click.option("--dry-run", is_flag=True, help="Say what would happen; write nothing.")
def import_command(file: Path, file_format: str | None, preset: str | None, dry_run: bool) -> None:
    """Import a bank statement: pay the pledges it names with their amount, leave the rest
    for staff. Importing the same bookings again changes nothing."""
    content = file.read_bytes()
    file_format = _format_for(file, file_format)
    if file_format == "csv" and not preset:
        preset = "generic"
    try:
        if dry_run:
            planned = preview(read_statement(content, file_format, preset))
            click.echo(
                f"Lines {len(planned.proposals)}: imported before {planned.count(known=True)}; "
                f"would pay their pledge {planned.count(LineMatch.PLEDGE, known=False)}; "
                f"would wait for staff or be skipped "
                f"{planned.count(known=False) - planned.count(LineMatch.PLEDGE, known=False)}. Nothing written."
            )
            return
        statement = imports.upload_statement(
            content, file_name=file.name, file_format=file_format, preset=preset, actor=None
        )
        imports.import_statement(statement, actor=None)
    except Refused as refused:
        db.session.rollback()
        raise click.ClickException(refused.message()) from None
    db.session.commit()
    click.echo(
        f"Statement {statement.id}: lines {statement.line_count}, new {statement.new_count}; "
        f"pledges paid {statement.paid_count}, waiting for staff {statement.open_count}, "
        f"skipped {statement.skipped_count}."
    )


@bank_cli.command("close-stale-pledges")
@click.option("--days", type=click.IntRange(min=1), default=None, help="Default: SUPPORTERS_PLEDGE_DAYS.")
def close_stale_pledges_command(days: int | None) -> None:
    """Close bank-transfer pledges unmatched for SUPPORTERS_PLEDGE_DAYS as not received
    (no message to the donor). For a daily cron."""
    days = days or int(current_app.config["SUPPORTERS_PLEDGE_DAYS"])
    closed = transfers.close_stale_pledges(datetime.now(UTC), days)
    db.session.commit()
    click.echo(f"Pledges unmatched for {days} days closed as not received: {closed}.")
