"""Dashboard: campaigns (goal, suggested amounts, appeal) and their appeal variants."""

from __future__ import annotations

import re
from typing import Any

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from wtforms import (
    BooleanField,
    DateField,
    IntegerField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import (
    DataRequired,
    InputRequired,
    Length,
    NumberRange,
    Optional,
    ValidationError,
)

from supporters.campaigns import operations as service
from supporters.campaigns.presets import suggested_amounts
from supporters.dashboard.access import acting_staff, can, fetch, requires
from supporters.giving import checkout
from supporters.giving.forms import FREQUENCIES
from supporters.lib import money
from supporters.lib.errors import Refused
from supporters.lib.forms import Form, no_control_characters, slug_shaped, strip, whole_number
from supporters.lib.i18n import current_locale
from supporters.models import AppealVariant, Campaign, Frequency

bp = Blueprint("campaigns", __name__, url_prefix="/campaigns")

SLUG_MAX = 64
NAME_MAX = 200
HEADING_MAX = 200
#: the card has room for a few sentences, not an essay
APPEAL_TEXT_MAX = 1000
PRESETS_MAX = 8
WEIGHT_MAX = 100
#: amounts are separated by ";", a line break, or "," followed by a space: "25,50" stays one amount
PRESET_SEPARATOR = re.compile(r";|\n|,(?=\s)")


def parse_presets(text: str, currency: str) -> list[int]:
    """The suggested amounts typed for `currency`, in minor units, in the order given.

    Empty means "the widget's default amounts". Raises ValidationError with a
    sentence for staff: too many amounts, one that is not an amount, or one
    outside what can be given online.
    """
    pieces = [piece.strip() for piece in PRESET_SEPARATOR.split((text or "").strip().strip(",;"))]
    pieces = [piece for piece in pieces if piece]
    if len(pieces) > PRESETS_MAX:
        raise ValidationError(_("Give at most %(count)d amounts.", count=PRESETS_MAX))
    low, high = checkout.minimum_gift(currency), checkout.maximum_gift(currency)
    amounts: list[int] = []
    for piece in pieces:
        try:
            amount = money.parse_amount(piece, currency)
        except money.MoneyError as exc:
            raise ValidationError(
                _("“%(amount)s”: %(reason)s", amount=piece, reason=_(exc.template, **exc.params))
            ) from None
        if not low <= amount <= high:
            raise ValidationError(
                _(
                    "Each amount must be between %(low)s and %(high)s.",
                    low=money.format_amount(low, currency, current_locale()),
                    high=money.format_amount(high, currency, current_locale()),
                )
            )
        if amount not in amounts:
            amounts.append(amount)
    return amounts


#: the campaign's fields written again in each other language
TRANSLATED = ("name", "appeal_heading", "appeal_text")
#: the longest words beside one suggested amount
NOTE_MAX = 60


def all_locales() -> list[str]:
    locales: list[str] = current_app.config["SUPPORTERS_LOCALES"]
    return list(locales)


def other_locales() -> list[str]:
    """The languages besides the default one (the campaign's own fields are written in that)."""
    default = current_app.config["BABEL_DEFAULT_LOCALE"]
    return [locale for locale in all_locales() if locale != default]


def parse_notes(text: str, currency: str, presets: list[int]) -> dict[str, str]:
    """Lines "20 = a day of fact-checking" into {"2000": "a day of fact-checking"}: each amount
    one of the campaign's suggested amounts in `currency`. Raises ValidationError, saying which line."""
    notes: dict[str, str] = {}
    offered = presets or suggested_amounts(None, currency)
    for number, line in enumerate(text.replace("\r\n", "\n").split("\n"), start=1):
        if not line.strip():
            continue
        amount_text, sign, words = line.partition("=")
        words = words.strip()
        try:
            amount = money.parse_amount(amount_text.strip(), currency) if sign else None
        except money.MoneyError:
            amount = None
        if amount is None or not words:
            raise ValidationError(
                _("Line %(line)d: write an amount, “=”, and the words, e.g. 20 = a day of research.", line=number)
            )
        if amount not in offered:
            raise ValidationError(
                _(
                    "Line %(line)d: %(amount)s is not one of the suggested amounts.",
                    line=number,
                    amount=amount_text.strip(),
                )
            )
        if len(words) > NOTE_MAX:
            raise ValidationError(_("Line %(line)d: at most %(max)d characters of words.", line=number, max=NOTE_MAX))
        notes[str(amount)] = words
    return notes


def notes_text(notes: dict[str, str], currency: str) -> str:
    """The words beside the amounts as staff type them, so that parse_notes reads them back."""
    return "\n".join(f"{presets_text([int(amount)], currency)} = {words}" for amount, words in notes.items())


def presets_text(amounts: list[int], currency: str) -> str:
    """Suggested amounts as staff type them, so that parse_presets reads them back."""
    exponent = money.minor_unit_exponent(currency)
    return ", ".join(
        str(amount // 10**exponent)
        if amount % 10**exponent == 0
        else money.format_amount_plain(amount, currency, current_locale()).replace("\u00a0", "").replace(" ", "")
        for amount in amounts
    )


class CampaignForm(Form):
    """A campaign's goal, suggested amounts and appeal; the preset fields are added per currency."""

    name = StringField(
        _l("Name"),
        filters=[strip],
        validators=[DataRequired(_l("Enter the campaign's name.")), Length(max=NAME_MAX), no_control_characters],
    )
    goal_amount = StringField(_l("Goal"), filters=[strip], validators=[Length(max=40), no_control_characters])
    goal_currency = SelectField(_l("Goal currency"), choices=[])
    default_frequency = SelectField(
        _l("Frequency chosen at first"), choices=FREQUENCIES, default=Frequency.ONE_TIME.value
    )
    appeal_heading = StringField(
        _l("Appeal heading"), filters=[strip], validators=[Length(max=HEADING_MAX), no_control_characters]
    )
    appeal_text = TextAreaField(
        _l("Appeal text"), filters=[strip], validators=[Length(max=APPEAL_TEXT_MAX), no_control_characters]
    )
    starts_on = DateField(_l("Starts on"), validators=[Optional()])
    ends_on = DateField(_l("Ends on"), validators=[Optional()])
    active = BooleanField(_l("Active: the widget and the donation form offer it"), default=True)

    #: set by validate()
    goal_minor: int | None = None
    presets: dict[str, list[int]]
    texts: dict[str, Any]

    def preset_fields(self) -> list[tuple[str, Any]]:
        """(currency, field) of every suggested-amounts field, in the configured order."""
        return [(code, self[f"presets_{code}"]) for code in service.configured_currencies()]

    def language_fields(self) -> list[tuple[str, list[Any]]]:
        """(locale, [name, heading, text fields]) for every language besides the default one."""
        return [(locale, [self[f"{name}_{locale}"] for name in TRANSLATED]) for locale in other_locales()]

    def note_fields(self) -> list[tuple[str, str, Any]]:
        """(locale, currency, field) of the words beside the suggested amounts."""
        return [
            (locale, code, self[f"notes_{locale}_{code}"])
            for locale in all_locales()
            for code in service.configured_currencies()
        ]

    def validate(self, extra_validators: Any = None) -> bool:
        valid = super().validate(extra_validators)
        self.goal_minor = None
        if self.goal_amount.data and not self.goal_amount.errors and not self.goal_currency.errors:
            try:
                self.goal_minor = money.parse_amount(self.goal_amount.data, self.goal_currency.data)
            except money.MoneyError as exc:
                self.goal_amount.errors = [*self.goal_amount.errors, _(exc.template, **exc.params)]
                valid = False
        self.presets = {}
        for currency, field in self.preset_fields():
            if field.errors:
                continue
            try:
                self.presets[currency] = parse_presets(field.data or "", currency)
            except ValidationError as exc:
                field.errors = [*field.errors, str(exc)]
                valid = False
        self.texts = {}
        for locale, fields in self.language_fields():
            for name, language_field in zip(TRANSLATED, fields, strict=True):
                if language_field.data:
                    self.texts.setdefault(locale, {})[name] = language_field.data.replace("\r\n", "\n")
        for locale, code, note_field in self.note_fields():
            if note_field.errors or not note_field.data:
                continue
            try:
                notes = parse_notes(note_field.data, code, self.presets.get(code) or [])
            except ValidationError as exc:
                note_field.errors = [*note_field.errors, str(exc)]
                valid = False
                continue
            if notes:
                self.texts.setdefault(locale, {}).setdefault("notes", {})[code] = notes
        if self.starts_on.data and self.ends_on.data and self.ends_on.data < self.starts_on.data:
            self.ends_on.errors = [*self.ends_on.errors, _("The end date cannot be before the start date.")]
            valid = False
        return valid

    def values(self) -> service.CampaignValues:
        """The checked values, for the service."""
        return service.CampaignValues(
            name=self.name.data or "",
            goal_minor=self.goal_minor,
            goal_currency=self.goal_currency.data,
            preset_amounts=self.presets,
            default_frequency=Frequency(self.default_frequency.data),
            appeal_heading=self.appeal_heading.data or "",
            appeal_text=(self.appeal_text.data or "").replace("\r\n", "\n"),
            starts_on=self.starts_on.data,
            ends_on=self.ends_on.data,
            active=bool(self.active.data),
            texts=self.texts,
        )


class NewCampaignForm(CampaignForm):
    """A campaign's address name is chosen once: embeds and links carry it."""

    slug = StringField(
        _l("Address name (slug)"),
        filters=[strip],
        validators=[DataRequired(_l("Enter the campaign's address name.")), Length(max=SLUG_MAX), slug_shaped],
    )


def campaign_form(base: type[CampaignForm], campaign: Campaign | None = None, **kwargs: Any) -> CampaignForm:
    """The form with one suggested-amounts field per configured currency, filled from `campaign`."""
    fields = {
        f"presets_{code}": StringField(
            _l("Suggested amounts in %(currency)s", currency=code),
            filters=[strip],
            validators=[Length(max=300), no_control_characters],
        )
        for code in service.configured_currencies()
    }
    for locale in other_locales():
        fields[f"name_{locale}"] = StringField(
            _l("Name (%(language)s)", language=locale.upper()),
            filters=[strip],
            validators=[Length(max=NAME_MAX), no_control_characters],
        )
        fields[f"appeal_heading_{locale}"] = StringField(
            _l("Appeal heading (%(language)s)", language=locale.upper()),
            filters=[strip],
            validators=[Length(max=HEADING_MAX), no_control_characters],
        )
        fields[f"appeal_text_{locale}"] = TextAreaField(
            _l("Appeal text (%(language)s)", language=locale.upper()),
            filters=[strip],
            validators=[Length(max=APPEAL_TEXT_MAX), no_control_characters],
        )
    for locale in all_locales():
        for code in service.configured_currencies():
            fields[f"notes_{locale}_{code}"] = TextAreaField(
                _l("Words beside the amounts in %(currency)s (%(language)s)", currency=code, language=locale.upper()),
                filters=[strip],
                validators=[Length(max=1000), no_control_characters],
            )
    form_class = type(base.__name__, (base,), fields)
    if campaign is not None:
        kwargs["data"] = {
            "name": campaign.name,
            "goal_amount": presets_text([campaign.goal_minor], campaign.goal_currency) if campaign.goal_minor else "",
            "goal_currency": campaign.goal_currency,
            "default_frequency": campaign.default_frequency.value,
            "appeal_heading": campaign.appeal_heading,
            "appeal_text": campaign.appeal_text,
            "starts_on": campaign.starts_on,
            "ends_on": campaign.ends_on,
            "active": campaign.active,
            **{
                f"presets_{code}": presets_text(list((campaign.preset_amounts or {}).get(code) or []), code)
                for code in service.configured_currencies()
            },
            **{
                f"{name}_{locale}": ((campaign.texts or {}).get(locale) or {}).get(name, "")
                for locale in other_locales()
                for name in TRANSLATED
            },
            **{
                f"notes_{locale}_{code}": notes_text(
                    (((campaign.texts or {}).get(locale) or {}).get("notes") or {}).get(code) or {}, code
                )
                for locale in all_locales()
                for code in service.configured_currencies()
            },
        }
    form = form_class(**kwargs)
    currencies = [current_app.config["SUPPORTERS_BASE_CURRENCY"], *service.configured_currencies()]
    if campaign is not None:
        currencies.append(campaign.goal_currency)
    form.goal_currency.choices = [SelectChoice(code) for code in dict.fromkeys(currencies)]
    if form.goal_currency.data is None:
        form.goal_currency.data = currencies[0]
    return form


class VariantForm(Form):
    """One wording of the appeal."""

    heading = StringField(
        _l("Heading"),
        filters=[strip],
        validators=[DataRequired(_l("Enter the heading.")), Length(max=HEADING_MAX), no_control_characters],
    )
    text = TextAreaField(_l("Text"), filters=[strip], validators=[Length(max=APPEAL_TEXT_MAX), no_control_characters])
    weight = IntegerField(
        _l("Weight"),
        default=1,
        validators=[
            InputRequired(_l("Enter a whole number from 1 to 100.")),
            NumberRange(1, WEIGHT_MAX, _l("Enter a whole number from 1 to 100.")),
        ],
    )
    active = BooleanField(_l("Shown"), default=True)

    def values(self) -> service.VariantValues:
        return service.VariantValues(
            heading=self.heading.data or "",
            text=(self.text.data or "").replace("\r\n", "\n"),
            weight=int(self.weight.data or 1),
            active=bool(self.active.data),
        )


class NewVariantForm(VariantForm):
    """A variant's key names its counters, so it is chosen once."""

    key = StringField(
        _l("Key"),
        filters=[strip],
        validators=[
            DataRequired(_l("Enter a key, e.g. %(example)s.", example="urgent")),
            Length(max=SLUG_MAX),
            slug_shaped,
        ],
    )


def _variant_form(variant: AppealVariant, **kwargs: Any) -> VariantForm:
    if "formdata" not in kwargs:
        kwargs["formdata"] = None
    return VariantForm(prefix=f"variant-{variant.id}", obj=variant, **kwargs)


def _detail(
    campaign: Campaign,
    status: int = 200,
    form: CampaignForm | None = None,
    variant_forms: dict[int, VariantForm] | None = None,
    new_variant: NewVariantForm | None = None,
    error: str | None = None,
) -> ResponseReturnValue:
    """The campaign page: its totals, its form (read-only without the right to change it), its variants."""
    forms = {variant.id: _variant_form(variant) for variant in campaign.variants}
    forms.update(variant_forms or {})
    totals = service.campaign_totals([campaign.id]).get(campaign.id, service.CampaignTotals(0, 0))
    return render_template(
        "dashboard/campaigns/detail.html",
        campaign=campaign,
        totals=totals,
        error=error,
        form=form or campaign_form(CampaignForm, campaign, formdata=None),
        variant_forms=forms,
        new_variant=new_variant or NewVariantForm(prefix="new-variant", formdata=None),
        read_only=not can("write"),
        percent=_percent(campaign, totals),
        base_currency=current_app.config["SUPPORTERS_BASE_CURRENCY"],
    ), status


def _percent(campaign: Campaign, totals: service.CampaignTotals) -> int | None:
    """How much of the goal is raised, when the goal is in the reporting currency (as on the widget)."""
    if campaign.goal_minor and campaign.goal_currency == current_app.config["SUPPORTERS_BASE_CURRENCY"]:
        return min(100, round(100 * totals.raised_minor / campaign.goal_minor))
    return None


def _saved(campaign: Campaign) -> ResponseReturnValue:
    return redirect(url_for(".detail", campaign_id=campaign.id), 303)


@bp.get("/")
@requires("view")
def index() -> ResponseReturnValue:
    """Every campaign with its goal, what it has raised and from how many supporters."""
    totals = service.campaign_totals()
    rows = []
    for campaign in service.list_campaigns():
        raised = totals.get(campaign.id, service.CampaignTotals(0, 0))
        rows.append((campaign, raised, _percent(campaign, raised)))
    return render_template(
        "dashboard/campaigns/index.html", rows=rows, base_currency=current_app.config["SUPPORTERS_BASE_CURRENCY"]
    )


@bp.route("/new", methods=["GET", "POST"])
@requires("write")
def new() -> ResponseReturnValue:
    """Start a campaign."""
    form = campaign_form(NewCampaignForm)
    if request.method == "GET":
        return render_template("dashboard/campaigns/new.html", form=form)
    valid = form.validate()
    if valid and service.slug_taken(form.slug.data):
        form.slug.errors = [
            *form.slug.errors,
            _("There is already a campaign with the address %(slug)s.", slug=form.slug.data),
        ]
        valid = False
    if not valid:
        return render_template("dashboard/campaigns/new.html", form=form), 400
    try:
        campaign = service.create_campaign(acting_staff(), form.slug.data, form.values())
    except Refused as exc:
        return render_template("dashboard/campaigns/new.html", form=form, error=str(exc.message())), 400
    flash(_("The campaign was created."), "success")
    return _saved(campaign)


@bp.get("/<int:campaign_id>")
@requires("view")
def detail(campaign_id: int) -> ResponseReturnValue:
    """One campaign: totals, settings and appeal variants."""
    return _detail(fetch(Campaign, campaign_id))


@bp.post("/<int:campaign_id>/edit")
@requires("write")
def update(campaign_id: int) -> ResponseReturnValue:
    """Save the campaign's settings."""
    campaign = fetch(Campaign, campaign_id)
    form = campaign_form(CampaignForm, campaign)
    if not form.validate():
        return _detail(campaign, 400, form=form)
    try:
        changes = service.update_campaign(acting_staff(), campaign, form.values())
    except Refused as exc:
        return _detail(campaign, 400, form=form, error=str(exc.message()))
    if not changes:
        flash(_("Nothing was changed."), "info")
        return redirect(url_for(".detail", campaign_id=campaign.id), 303)
    flash(_("The campaign was saved."), "success")
    return _saved(campaign)


def _variant_of(campaign: Campaign) -> AppealVariant:
    """The variant named by the form's variant_id, which must belong to this campaign."""
    variant_id = whole_number(request.form.get("variant_id"))
    if variant_id is None:
        abort(400, _("Choose a variant."))
    variant = next((v for v in campaign.variants if v.id == variant_id), None)
    if variant is None:
        abort(404)
    return variant


@bp.post("/<int:campaign_id>/variants")
@requires("write")
def add_variant(campaign_id: int) -> ResponseReturnValue:
    """Add an appeal variant."""
    campaign = fetch(Campaign, campaign_id)
    form = NewVariantForm(prefix="new-variant")
    valid = form.validate()
    if valid and any(v.key == form.key.data for v in campaign.variants):
        form.key.errors = [*form.key.errors, _("This campaign already has a variant %(key)s.", key=form.key.data)]
        valid = False
    if not valid:
        return _detail(campaign, 400, new_variant=form)
    try:
        service.add_variant(acting_staff(), campaign, form.key.data, form.values())
    except Refused as exc:
        form.key.errors = [*form.key.errors, str(exc.message())]
        return _detail(campaign, 400, new_variant=form)
    flash(_("The variant was added."), "success")
    return _saved(campaign)


@bp.post("/<int:campaign_id>/variants/update")
@requires("write")
def update_variant(campaign_id: int) -> ResponseReturnValue:
    """Save one appeal variant (its id comes in the form)."""
    campaign = fetch(Campaign, campaign_id)
    variant = _variant_of(campaign)
    form = _variant_form(variant, formdata=request.form)
    if not form.validate():
        return _detail(campaign, 400, variant_forms={variant.id: form})
    changes = service.update_variant(acting_staff(), variant, form.values())
    if not changes:
        flash(_("Nothing was changed."), "info")
        return redirect(url_for(".detail", campaign_id=campaign.id), 303)
    flash(_("The variant was saved."), "success")
    return _saved(campaign)


@bp.post("/<int:campaign_id>/variants/remove")
@requires("write")
def remove_variant(campaign_id: int) -> ResponseReturnValue:
    """Delete one appeal variant (its id comes in the form); its past counts stay."""
    campaign = fetch(Campaign, campaign_id)
    variant = _variant_of(campaign)
    service.remove_variant(acting_staff(), variant)
    flash(_("The variant was removed."), "success")
    return _saved(campaign)
