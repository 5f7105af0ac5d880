"""The donor's documents, under /my: a paid gift's receipt as a PDF, and the statement of
a year's (or chosen days') gifts, after the donor has added or corrected their name and
postal address.

The PDFs are made from the same Jinja templates as the pages and e-mails (the receipt's
body is templates/receipts/_receipt.html, shared with the receipt e-mail), in the page's
language, by lib/pdf.py. The rules and reads are donors/statements.py.
"""

from __future__ import annotations

from typing import Any

from babel import Locale
from flask import Blueprint, current_app, make_response, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import lazy_gettext as _l
from wtforms import RadioField, SelectField, StringField
from wtforms.fields import DateField
from wtforms.validators import DataRequired, Length, Optional

from supporters.donors import statements
from supporters.donors.views import METHOD_WORDS
from supporters.donors.web import current_donor, donor_required, page
from supporters.lib.dates import org_today
from supporters.lib.errors import Refused
from supporters.lib.forms import Form, choices, country_choices, no_control_characters, show_refusal, strip
from supporters.lib.i18n import current_locale
from supporters.lib.money import format_amount
from supporters.lib.pdf import pdf_headers, render_pdf
from supporters.mail.receipts import receipt_context
from supporters.models import Gift, GiftMethod, Supporter

bp = Blueprint("donor_documents", __name__, url_prefix="/my")


@bp.app_template_global("has_receipt_pdf")
def has_receipt_pdf(gift: Gift) -> bool:
    """The gift list's test: does this gift have a receipt to download?"""
    return statements.has_receipt(gift)


# --- The receipt --------------------------------------------------------------------------------


@bp.get("/gifts/<int:gift_id>/receipt.pdf")
@donor_required
def receipt_pdf(gift_id: int) -> ResponseReturnValue:
    """The receipt of one of the donor's paid gifts, as the e-mail says it, as a PDF."""
    supporter = current_donor()
    gift = statements.receipt_gift(supporter, gift_id)
    locale = current_locale()
    context = receipt_context(gift, supporter, locale, statements.replaced_receipt(gift))
    if gift.refunded_minor:
        context["refunded"] = format_amount(gift.refunded_minor, gift.currency, locale)
        context["kept"] = format_amount(statements.kept_minor(gift), gift.currency, locale)
    html = render_template("receipts/receipt_pdf.html", **context)
    return _pdf(html, f"receipt-{gift.receipt_number}.pdf")


# --- The statement ------------------------------------------------------------------------------


class StatementForm(Form):
    """The period, and the name and postal address the statement shows (saved on the record)."""

    period = RadioField(
        _l("Which gifts"),
        choices=choices([("year", _l("A calendar year")), ("days", _l("Chosen dates"))]),
        default="year",
        validators=[DataRequired(_l("Choose a year or dates."))],
    )
    #: any year the rules allow (the choices are the years given in): checked only when chosen
    year = SelectField(_l("Year"), choices=[], validate_choice=False)
    date_from = DateField(_l("From"), validators=[Optional()])
    date_to = DateField(_l("To"), validators=[Optional()])
    name = StringField(
        _l("Full name"),
        filters=[strip],
        validators=[
            DataRequired(_l("Enter your name as it should be on the statement.")),
            Length(max=200),
            no_control_characters,
        ],
    )
    address_line1 = StringField(
        _l("Street and number"), filters=[strip], validators=[Length(max=200), no_control_characters]
    )
    address_line2 = StringField(
        _l("Address, second line"), filters=[strip], validators=[Length(max=200), no_control_characters]
    )
    postal_code = StringField(_l("Postal code"), filters=[strip], validators=[Length(max=20), no_control_characters])
    city = StringField(_l("City"), filters=[strip], validators=[Length(max=100), no_control_characters])
    country = SelectField(_l("Country"), choices=[])

    def setup(self, supporter: Supporter) -> None:
        """The years the donor gave in (and last year, the usual one); the countries, with
        the one on the record."""
        years = sorted({statements.last_year(), *statements.years_given(supporter)}, reverse=True)
        self.year.choices = choices((str(year), str(year)) for year in years)
        countries = country_choices()
        if supporter.country and supporter.country not in dict(countries):
            countries.append((supporter.country, supporter.country))
        self.country.choices = choices(countries)

    def chosen_period(self) -> statements.Period:
        """The period chosen; refuses (on the field) a year or dates that cannot be."""
        if self.period.data == "days":
            if self.date_from.data is None or self.date_to.data is None:
                raise Refused(_l("Enter both dates, or choose a year."), field="date_from")
            return statements.days_period(self.date_from.data, self.date_to.data)
        year = str(self.year.data or "")
        if not year.isascii() or not year.isdigit() or len(year) != 4:
            raise Refused(_l("Choose a year."), field="year")
        return statements.year_period(int(year))

    def postal_details(self) -> dict[str, Any]:
        return {name: self[name].data or "" for name in statements.POSTAL_FIELDS}


def _statement_form(supporter: Supporter, *, submitted: bool) -> StatementForm:
    """The form as sent, or (not `submitted`) filled from the supporter's record, for last year."""
    if submitted:
        form = StatementForm()
    else:
        filled = {name: getattr(supporter, name) or "" for name in statements.POSTAL_FIELDS}
        form = StatementForm(formdata=None, year=str(statements.last_year()), **filled)
    form.setup(supporter)
    return form


def _statement_page(form: StatementForm, status: int = 200, message: str | None = None) -> ResponseReturnValue:
    return page("donors/statement.html", status, form=form, message=message)


@bp.get("/statement")
@donor_required
def statement_page() -> ResponseReturnValue:
    """The form: the period, and the name and address as the record has them."""
    return _statement_page(_statement_form(current_donor(), submitted=False))


@bp.post("/statement")
@donor_required
def save_statement_details() -> ResponseReturnValue:
    """Save the name and address as corrected (audited), then download the statement."""
    supporter = current_donor()
    form = _statement_form(supporter, submitted=True)
    if not form.validate():
        return _statement_page(form, 400)
    try:
        period = form.chosen_period()
        statements.correct_postal_details(supporter, **form.postal_details())
    except Refused as refused:
        return _statement_page(form, refused.status, show_refusal(form, refused))
    query: dict[str, Any] = period.query()
    return redirect(url_for("donor_documents.statement_pdf", **query), 303)


@bp.get("/statement.pdf")
@donor_required
def statement_pdf() -> ResponseReturnValue:
    """The statement of the period in the address (`?year=` or `?from=&to=`), as a PDF."""
    supporter = current_donor()
    period = statements.period_from_query(request.args)
    found = statements.statement(supporter, period)
    locale = current_locale()
    html = render_template(
        [f"donors/statement_pdf_{locale}.html", "donors/statement_pdf.html"],
        statement=found,
        supporter=supporter,
        postal_lines=_postal_lines(supporter, locale),
        period=period,
        method_words=METHOD_WORDS,
        issued_on=org_today(),
        test_mode=_test_mode(found),
        lang=locale,
    )
    return _pdf(html, f"statement-{period.slug}.pdf")


def _postal_lines(supporter: Supporter, locale: str) -> list[str]:
    """The donor's postal address as it is written on an envelope, the country by its name."""
    town = " ".join(part for part in (supporter.postal_code, supporter.city) if part)
    country = Locale.parse(locale).territories.get(supporter.country, supporter.country) if supporter.country else ""
    return [line for line in (supporter.address_line1, supporter.address_line2, town, country) if line]


def _test_mode(found: statements.Statement) -> bool:
    """True when a gift listed was paid through Stripe in test mode (no real money)."""
    return bool(current_app.config.get("PAYMENTS_TEST_MODE", True)) and any(
        line.gift.method is GiftMethod.STRIPE for line in found.lines
    )


def _pdf(html: str, filename: str) -> ResponseReturnValue:
    response = make_response(render_pdf(html))
    response.headers.update(pdf_headers(filename))
    return response
