"""Command-line tools: `flask --app wsgi demo …` and `flask --app wsgi staff …`."""

from __future__ import annotations

import os
import secrets

import click
from email_validator import EmailNotValidError, validate_email
from flask.cli import AppGroup
from sqlalchemy import select

from . import demo
from .extensions import db
from .models import AuditEvent, StaffRole, StaffUser

MIN_PASSWORD_LENGTH = 12
DEMO_ADMIN_EMAIL = "admin@example.org"

demo_cli = AppGroup("demo", help="Demo content for trying the app.")
staff_cli = AppGroup("staff", help="Staff accounts for the dashboard.")


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
    db.session.add(
        AuditEvent(actor="cli", action="staff.create", target_type="staff_user", target_id=str(user.id),
                   details={"email": email, "role": role.value})
    )
    return user
