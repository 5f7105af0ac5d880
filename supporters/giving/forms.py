"""The donation form: what a donor may type, and every reason it may be refused."""

from __future__ import annotations

from typing import Any

from flask import current_app
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from wtforms import (
    BooleanField,
    EmailField,
    HiddenField,
    RadioField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, Email, Length, Optional

from supporters.giving import checkout
from supporters.lib import money
from supporters.lib.forms import Form, choices, country_choices, no_control_characters, strip, whole_number
from supporters.lib.i18n import current_locale
from supporters.models import Frequency

FREQUENCIES = choices(
    [
        (Frequency.ONE_TIME.value, _l("Once")),
        (Frequency.MONTHLY.value, _l("Monthly")),
        (Frequency.YEARLY.value, _l("Yearly")),
    ]
)
DEDICATIONS = choices([("", _l("No dedication")), ("honour", _l("In honour of")), ("memory", _l("In memory of"))])
OTHER = "other"
ONLINE, BANK_TRANSFER = "online", "bank_transfer"
#: the currencies a donor may pledge a bank transfer in (the QR codes read PLN and EUR)
TRANSFER_CURRENCIES = ("PLN", "EUR")
NEWSLETTER_WORDING = _l(
    "Yes, send me occasional e-mails about your work and how my gift helps. I can unsubscribe at any time."
)


def preset_label(amount_minor: int, currency: str, locale: str, note: str | None = None) -> str:
    """A suggested amount as its button says it: "20,00 zł", or "20,00 zł · a day of research"."""
    shown = money.format_amount(amount_minor, currency, locale)
    return f"{shown} · {note}" if note else shown


class DonationForm(Form):
    """A gift: how often, how much, in which currency, and who gives it."""

    frequency = RadioField(_l("How often"), choices=FREQUENCIES, default=Frequency.ONE_TIME.value)
    amount_choice = RadioField(_l("Amount"), choices=[], validators=[Optional()])
    custom_amount = StringField(
        _l("Your own amount"), filters=[strip], validators=[Length(max=40), no_control_characters]
    )
    currency = SelectField(_l("Currency"), choices=[])
    shown_currency = HiddenField()
    email = EmailField(
        _l("E-mail"),
        filters=[strip],
        validators=[
            DataRequired(_l("Enter your e-mail address, so we can send a receipt.")),
            Length(max=254),
            no_control_characters,
            Email(_l("Enter a valid e-mail address.")),
        ],
    )
    name = StringField(
        _l("Full name"),
        filters=[strip],
        validators=[DataRequired(_l("Enter your name.")), Length(max=200), no_control_characters],
    )
    country = SelectField(_l("Country"), choices=[], validators=[Optional()])
    address_line1 = StringField(
        _l("Street and number"), filters=[strip], validators=[Length(max=200), no_control_characters]
    )
    address_line2 = StringField(
        _l("Address, second line"), filters=[strip], validators=[Length(max=200), no_control_characters]
    )
    postal_code = StringField(_l("Postal code"), filters=[strip], validators=[Length(max=20), no_control_characters])
    city = StringField(_l("City"), filters=[strip], validators=[Length(max=100), no_control_characters])
    anonymous = BooleanField(_l("Make my gift anonymous"))
    dedication_kind = SelectField(_l("Dedicate this gift"), choices=DEDICATIONS, validators=[Optional()])
    dedication = StringField(
        _l("Name of the person"), filters=[strip], validators=[Length(max=200), no_control_characters]
    )
    comment = TextAreaField(
        _l("Comment (optional)"), filters=[strip], validators=[Length(max=500), no_control_characters]
    )
    newsletter = BooleanField(NEWSLETTER_WORDING)
    covers_fee = BooleanField(_l("I'll cover the processing fee"))
    payment = RadioField(_l("How you pay"), choices=[], default=ONLINE, validators=[Optional()])
    campaign = HiddenField()
    src = HiddenField()
    article = HiddenField()
    variant = HiddenField()
    utm_source = HiddenField()
    utm_medium = HiddenField()
    utm_campaign = HiddenField()
    submission_id = HiddenField()

    #: set by validate(): the gift in minor units, before any fee the donor adds
    amount_minor: int | None = None

    def setup(self, presets: list[int], notes: dict[int, str] | None = None) -> None:
        """Fill the choices that depend on the configuration and the campaign (`notes`: the
        few words beside a suggested amount, in the page's language)."""
        currencies = current_app.config["SUPPORTERS_CURRENCIES"]
        self.currency.choices = choices((code, code) for code in currencies)
        shown = self.shown_currency.data if self.shown_currency.data in currencies else self.currency.data
        if shown not in currencies:
            shown = currencies[0]
        locale = current_locale()
        self.amount_choice.choices = choices(
            [
                *((str(amount), preset_label(amount, shown, locale, (notes or {}).get(amount))) for amount in presets),
                (OTHER, str(_l("Other amount"))),
            ]
        )
        self.country.choices = choices(country_choices())
        ways = [(ONLINE, str(_l("Card, BLIK or online bank")))]
        if current_app.config.get("SUPPORTERS_ORG_IBAN"):
            ways.append((BANK_TRANSFER, str(_l("Bank transfer"))))
        self.payment.choices = choices(ways)

    @property
    def by_transfer(self) -> bool:
        """True when the donor chose to pay by a bank transfer of their own."""
        return self.payment.data == BANK_TRANSFER and len(self.payment.choices or []) > 1

    def validate(self, extra_validators: Any = None) -> bool:
        valid = super().validate(extra_validators)
        if self.currency.errors:
            return False
        currency = self.currency.data
        amount = self._amount(currency)
        if amount is not None:
            low, high = checkout.minimum_gift(currency), checkout.maximum_gift(currency)
            locale = current_locale()
            if amount < low:
                self._amount_error(
                    _(
                        "The smallest gift we can accept online is %(amount)s.",
                        amount=money.format_amount(low, currency, locale),
                    )
                )
                amount = None
            elif amount > high:
                self._amount_error(
                    _(
                        "The largest gift we can accept online is %(amount)s. "
                        "For a larger gift, please contact us about a bank transfer.",
                        amount=money.format_amount(high, currency, locale),
                    )
                )
                amount = None
        if self.dedication_kind.data and not self.dedication.data:
            self.dedication.errors = [
                *self.dedication.errors,
                _l("Enter the name of the person you dedicate the gift to."),
            ]
        if self.by_transfer:
            if self.frequency.data != Frequency.ONE_TIME.value:
                self.payment.errors = [
                    *self.payment.errors,
                    _l("A bank transfer is a gift made once. For a monthly or yearly gift, please pay online."),
                ]
            elif currency not in TRANSFER_CURRENCIES:
                self.payment.errors = [
                    *self.payment.errors,
                    _("A bank transfer can be made in %(currencies)s.", currencies=", ".join(TRANSFER_CURRENCIES)),
                ]
        self.amount_minor = amount
        return valid and amount is not None and not self.dedication.errors and not self.payment.errors

    def _amount(self, currency: str) -> int | None:
        if self.custom_amount.errors or self.amount_choice.errors:
            return None
        typed = self.custom_amount.data or ""
        if typed:
            try:
                return money.parse_amount(typed, currency)
            except money.MoneyError as exc:
                self._amount_error(_(exc.template, **exc.params))
                return None
        # Optional() lets a choice of whitespace only through as "no choice", unchecked
        # against the choices: only a preset's own digits are a preset.
        choice = self.amount_choice.data
        amount = whole_number(choice, maximum=money.MAX_AMOUNT_MINOR) if choice in self._presets() else None
        if amount is None:
            self._amount_error(_l("Choose an amount or enter your own."))
            return None
        if self.shown_currency.data and self.shown_currency.data != currency:
            self._amount_error(
                _(
                    "The suggested amounts were in %(shown)s. Please choose an amount in %(currency)s.",
                    shown=self.shown_currency.data,
                    currency=currency,
                )
            )
            return None
        return amount

    def _presets(self) -> set[str]:
        return {choice.value for choice in self.amount_choice.choices or [] if choice.value != OTHER}

    def _amount_error(self, message: Any) -> None:
        self.custom_amount.errors = [*self.custom_amount.errors, message]
