"""`flask --app wsgi articles …`: bring articles in from Markdown files."""

from __future__ import annotations

from pathlib import Path

import click
from flask.cli import AppGroup

from supporters.articles import importer
from supporters.extensions import db

articles_cli = AppGroup("articles", help="Articles: import them from Markdown files.")


@articles_cli.command("import")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
def import_articles(directory: Path) -> None:
    """Create or update an article from every *.md file in DIRECTORY (not its subfolders).

    Safe to run again: an article is found by its slug and updated in place. A file
    that cannot be imported is named with the reason and skipped; the exit code is
    then 1. The imported files are committed together at the end.
    """
    report = importer.import_directory(directory)
    db.session.commit()
    for outcome in ("created", "updated", "unchanged"):
        for name in getattr(report, outcome):
            click.echo(f"{outcome:<9}  {name}")
    for name, note in report.warnings:
        click.echo(f"warning    {name}: {note}", err=True)
    for name, reason in report.failed:
        click.secho(f"failed     {name}: {reason}", fg="red", err=True)
    total = len(report.created) + len(report.updated) + len(report.unchanged) + len(report.failed)
    if total == 0:
        click.echo(f"No .md files in {directory}.")
    click.echo(
        f"{len(report.created)} created, {len(report.unchanged)} unchanged, "
        f"{len(report.updated)} updated, {len(report.failed)} failed."
    )
    if report.failed:
        click.get_current_context().exit(1)
