"""`flask import supporters FILE --mapping NAME [--gifts FILE2] [--dry-run]`: the preview's
counts and errors, then the import in one transaction (an edge: it commits)."""

from __future__ import annotations

from pathlib import Path

import click
from flask.cli import AppGroup

from supporters.extensions import db
from supporters.imports import mapping as mappings
from supporters.imports import operations
from supporters.imports.preview import Preview, preview
from supporters.imports.reading import path_opener, read_table
from supporters.imports.rows import ERROR, KNOWN, MATCH, NEW, Source
from supporters.lib.errors import Refused

import_cli = AppGroup("import", help="Import supporters and their gifts from another system.")

#: errors printed before "… and N more"
ERRORS_SHOWN = 50


def _counts(planned: Preview, with_gifts: bool) -> str:
    text = (
        f"Supporters: new {planned.supporters[NEW]}, matching a supporter by e-mail {planned.supporters[MATCH]}, "
        f"imported before {planned.supporters[KNOWN]}, with errors {planned.supporters[ERROR]}; "
        f"newsletter consents {planned.consents}."
    )
    if with_gifts:
        text += (
            f"\nGifts: new {planned.gifts[NEW]}, imported before {planned.gifts[KNOWN]}, "
            f"with errors {planned.gifts[ERROR]}."
        )
    return text


@import_cli.command("supporters")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--mapping", "mapping_name", required=True, help="The source's saved column mapping.")
@click.option(
    "--gifts", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="Their gifts, a second file."
)
@click.option("--dry-run", is_flag=True, help="Print the preview; write nothing.")
@click.option(
    "--save-guessed", is_flag=True, help="No mapping of that name yet: save the one guessed from the headers."
)
def supporters_command(file: Path, mapping_name: str, gifts: Path | None, dry_run: bool, save_guessed: bool) -> None:
    """Import a CSV or XLSX file of supporters (and of their gifts) with a saved mapping.
    Prints what each kind of row will do and the errors; imports unless --dry-run, all or
    nothing. Importing the same file again changes nothing. Exits 1 when a row has an error."""
    supporters_opener = path_opener(str(file))
    gifts_opener = path_opener(str(gifts)) if gifts else None
    try:
        chosen = mappings.mapping_named(mapping_name)
        if chosen is None and save_guessed:
            supporters_table = read_table(supporters_opener, file.name)
            gifts_table = read_table(gifts_opener, gifts.name) if gifts_opener and gifts else None
            chosen = mappings.save_mapping(
                mapping_name,
                supporter_columns=mappings.guess_supporters(supporters_table.headers),
                gift_columns=mappings.guess_gifts(gifts_table.headers) if gifts_table else {},
                gifts_by="source_id" if "source_id" in mappings.guess_supporters(supporters_table.headers) else "email",
                actor=None,
            )
            # kept even on a dry run: staff can correct it in the dashboard before importing
            db.session.commit()
            click.echo(f"Mapping {chosen.name!r} saved as guessed: {chosen.supporter_columns} {chosen.gift_columns}")
        if chosen is None:
            raise click.ClickException(
                f"No mapping is called {mapping_name!r}: save one in the dashboard, or pass --save-guessed."
            )
        run, source = operations.run_for_files(
            supporters_opener, file.name, gifts_opener, gifts.name if gifts else None, chosen
        )
        planned = preview(Source(source.mapping, source.supporters, source.gifts), show="errors", limit=ERRORS_SHOWN)
    except Refused as refused:
        db.session.rollback()
        raise click.ClickException(refused.message()) from None
    click.echo(_counts(planned, gifts is not None))
    for row in planned.rows:
        name = file.name if row.kind == "supporter" else gifts.name if gifts else ""
        click.echo(f"  {name} row {row.number}: {'; '.join(row.messages)}")
    if planned.errors > len(planned.rows):
        click.echo(f"  … and {planned.errors - len(planned.rows)} more rows with errors.")
    if planned.errors:
        click.echo("Nothing imported: correct the rows with errors and run it again.", err=True)
        raise SystemExit(1)
    if dry_run:
        click.echo("Dry run: nothing written.")
        return
    try:
        operations.import_run(run, source, actor=None)
    except Refused as refused:
        db.session.rollback()
        raise click.ClickException(refused.message()) from None
    db.session.commit()
    click.echo(f"Imported (import {run.id}).")
