"""Dashboard: articles, written and published by staff, and how their Support Us cards do.

The widget counts per article slug (`widget_stat.article`), so an article's figures
are the counters kept under its current slug.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from babel.numbers import format_decimal, format_percent
from flask import (
    Blueprint,
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
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from wtforms import BooleanField, DateField, SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import (
    DataRequired,
    InputRequired,
    Length,
    Optional,
    ValidationError,
)

from supporters.articles import operations
from supporters.articles.importer import SLUG_MAX, TAG_MAX, TITLE_MAX, slugify
from supporters.dashboard.access import acting_staff, can, fetch, requires
from supporters.extensions import db
from supporters.lib.dates import in_order, org_today, swapped_note
from supporters.lib.forms import Form, no_control_characters, slug_shaped, strip
from supporters.lib.i18n import current_locale
from supporters.lib.tags import split_tags
from supporters.models import Article, Campaign, WidgetStat, utcnow

bp = Blueprint("articles", __name__, url_prefix="/articles")

#: the period shown when none is asked for: the last 30 days, today included
DEFAULT_DAYS = 30
LEAD_MAX = 1000
BODY_MAX = 200_000
CREDIT_MAX = 2000
TAGS_MAX = 20


# --- figures -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Counts:
    """What the widget counted: impressions, clicks, gifts and their amount in the reporting currency."""

    impressions: int = 0
    clicks: int = 0
    gifts: int = 0
    amount_minor: int = 0

    def __add__(self, other: Counts) -> Counts:
        return Counts(
            self.impressions + other.impressions,
            self.clicks + other.clicks,
            self.gifts + other.gifts,
            self.amount_minor + other.amount_minor,
        )

    @property
    def gift_rate(self) -> Decimal | None:
        """Gifts per impression; None without impressions."""
        return Decimal(self.gifts) / Decimal(self.impressions) if self.impressions else None

    @property
    def click_rate(self) -> Decimal | None:
        """Clicks per impression; None without impressions."""
        return Decimal(self.clicks) / Decimal(self.impressions) if self.impressions else None


def _sums() -> tuple[Any, ...]:
    return (
        func.coalesce(func.sum(WidgetStat.impressions), 0),
        func.coalesce(func.sum(WidgetStat.clicks), 0),
        func.coalesce(func.sum(WidgetStat.gifts), 0),
        func.coalesce(func.sum(WidgetStat.amount_base_minor), 0),
    )


def _counts(row: Any) -> Counts:
    return Counts(*(int(value or 0) for value in row))


def counts_by_article(start: date, end: date) -> dict[str, Counts]:
    """The widget's counts per article slug ("" off articles) from `start` to `end`, both included."""
    query = select(WidgetStat.article, *_sums()).where(WidgetStat.day.between(start, end)).group_by(WidgetStat.article)
    return {article: _counts(rest) for article, *rest in db.session.execute(query)}


def counts_by_variant(slug: str, start: date, end: date) -> list[tuple[str, str, Counts]]:
    """(campaign name, variant key, counts) of one article's cards, most impressions first."""
    query = (
        select(Campaign.name, WidgetStat.variant, *_sums())
        .join(Campaign, Campaign.id == WidgetStat.campaign_id)
        .where(WidgetStat.article == slug, WidgetStat.day.between(start, end))
        .group_by(Campaign.name, WidgetStat.variant)
    )
    rows = [(name, variant, _counts(rest)) for name, variant, *rest in db.session.execute(query)]
    return sorted(rows, key=lambda row: (-row[2].impressions, row[0], row[1]))


def counts_by_day(slug: str, start: date, end: date) -> list[tuple[date, Counts]]:
    """(day, counts) of one article's cards, for the days with any count, newest first."""
    query = (
        select(WidgetStat.day, *_sums())
        .where(WidgetStat.article == slug, WidgetStat.day.between(start, end))
        .group_by(WidgetStat.day)
        .order_by(WidgetStat.day.desc())
    )
    return [(day, _counts(rest)) for day, *rest in db.session.execute(query)]


def format_rate(rate: Decimal | None) -> str:
    """A rate as a percentage with one decimal in the page's language; "—" when there is none."""
    if rate is None:
        return "—"
    return format_percent(rate, "#,##0.0%", locale=current_locale())


def format_number(value: int) -> str:
    """A count with the page language's digit grouping."""
    return format_decimal(value, locale=current_locale())


def _period() -> tuple[date, date, str | None, str | None]:
    """The period asked for with ?from=&to= (ISO dates), else the last DEFAULT_DAYS days.

    Returns (start, end, error, note): with an error the default period is used; a
    period typed the wrong way round is swapped, and the note says so.
    """
    today = utcnow().date()
    default = (today - timedelta(days=DEFAULT_DAYS - 1), today)
    raw_from, raw_to = request.args.get("from", "").strip(), request.args.get("to", "").strip()
    try:
        end = date.fromisoformat(raw_to) if raw_to else today
        start = date.fromisoformat(raw_from) if raw_from else end - timedelta(days=DEFAULT_DAYS - 1)
    except ValueError:
        return *default, _("Enter dates as YYYY-MM-DD, e.g. %(example)s.", example=today.isoformat()), None
    first, last, swapped = in_order(start, end)
    assert first is not None and last is not None
    return first, last, None, swapped_note() if swapped else None


# --- writing articles --------------------------------------------------------------------------------------------


def parse_tags(text: str) -> list[str]:
    """Comma-separated tags, spaces tidied, repeats dropped ("Gas" and "gas" are one tag).

    Raises ValidationError for a tag that is too long or too many tags.
    """
    tags = split_tags(text)
    if any(len(tag) > TAG_MAX for tag in tags):
        raise ValidationError(_("Each tag can have at most %(count)d characters.", count=TAG_MAX))
    if len(tags) > TAGS_MAX:
        raise ValidationError(_("Give at most %(count)d tags.", count=TAGS_MAX))
    return tags


class ArticleForm(Form):
    """An article as staff write it: the body is Markdown, sanitised when saved."""

    title = StringField(
        _l("Title"),
        filters=[strip],
        validators=[DataRequired(_l("Enter the title.")), Length(max=TITLE_MAX), no_control_characters],
    )
    slug = StringField(
        _l("Address (slug)"), filters=[strip], validators=[Optional(), Length(max=SLUG_MAX), slug_shaped]
    )
    published_on = DateField(_l("Publication date"), validators=[InputRequired(_l("Enter the publication date."))])
    lead = TextAreaField(_l("Lead"), filters=[strip], validators=[Length(max=LEAD_MAX), no_control_characters])
    body = TextAreaField(_l("Text (Markdown)"), validators=[Length(max=BODY_MAX), no_control_characters])
    tags = StringField(_l("Tags"), validators=[Length(max=2000), no_control_characters])
    campaign = SelectField(_l("Campaign of its Support Us card"), choices=[])
    credit_notice = TextAreaField(
        _l("Credit/licence notice"), filters=[strip], validators=[Length(max=CREDIT_MAX), no_control_characters]
    )
    published = BooleanField(_l("Published: shown on the site"))

    #: set by validate()
    tag_list: list[str]

    def validate(self, extra_validators: Any = None) -> bool:
        valid = super().validate(extra_validators)
        self.tag_list = []
        if not self.tags.errors:
            try:
                self.tag_list = parse_tags(self.tags.data or "")
            except ValidationError as exc:
                self.tags.errors = [*self.tags.errors, str(exc)]
                valid = False
        if not self.slug.data and self.title.data and not self.title.errors and not slugify(self.title.data):
            self.slug.errors = [*self.slug.errors, _("No address can be made from this title: enter one.")]
            valid = False
        return valid

    @property
    def chosen_slug(self) -> str:
        return self.slug.data or slugify(self.title.data or "")


def article_form(article: Article | None = None, **kwargs: Any) -> ArticleForm:
    """The form, its campaigns listed, filled from `article` (or today's date for a new one)."""
    if article is not None:
        kwargs.setdefault(
            "data",
            {
                "title": article.title,
                "slug": article.slug,
                "published_on": article.published_on,
                "lead": article.lead,
                "body": article.body_markdown,
                "tags": ", ".join(sorted((row.tag for row in article.tags), key=str.casefold)),
                "campaign": str(article.campaign_id or ""),
                "credit_notice": article.credit_notice or "",
                "published": article.published,
            },
        )
    else:
        kwargs.setdefault("data", {"published_on": org_today()})
    form = ArticleForm(**kwargs)
    campaigns = db.session.execute(select(Campaign.id, Campaign.name, Campaign.slug).order_by(Campaign.name)).all()
    form.campaign.choices = [SelectChoice("", str(_l("None: the general campaign")))] + [
        SelectChoice(str(cid), f"{name} ({slug})") for cid, name, slug in campaigns
    ]
    return form


def slug_in_use(slug: str, article: Article | None = None) -> bool:
    """True when another article has this slug."""
    query = select(Article.id).filter_by(slug=slug)
    if article is not None:
        query = query.where(Article.id != article.id)
    return db.session.execute(query).first() is not None


def article_values(form: ArticleForm) -> dict[str, Any]:
    """The article the form describes, field by field (the body as typed; operations render it)."""
    body = (form.body.data or "").replace("\r\n", "\n")
    return {
        "title": form.title.data or "",
        "slug": form.chosen_slug,
        "published_on": form.published_on.data,
        "lead": (form.lead.data or "").replace("\r\n", "\n"),
        "body_markdown": body,
        "credit_notice": (form.credit_notice.data or "").replace("\r\n", "\n") or None,
        "campaign_id": int(form.campaign.data) if form.campaign.data else None,
        "published": bool(form.published.data),
    }


# --- pages -------------------------------------------------------------------------------------------------------


def _page(template: str, status: int = 200, **context: Any) -> ResponseReturnValue:
    return render_template(
        template,
        rate=format_rate,
        number=format_number,
        base_currency=current_app.config["SUPPORTERS_BASE_CURRENCY"],
        **context,
    ), status


@bp.get("/")
@requires("view")
def index() -> ResponseReturnValue:
    """Every article, published or not, with what its Support Us card did in the period."""
    start, end, error, note = _period()
    counts = counts_by_article(start, end)
    articles = list(db.session.scalars(select(Article).order_by(Article.published_on.desc(), Article.id.desc())))
    rows = [(article, counts.get(article.slug, Counts())) for article in articles]
    known = {article.slug for article in articles}
    elsewhere = sum((c for slug, c in counts.items() if slug not in known), Counts())
    total = sum((c for _slug, c in rows), elsewhere)
    return _page(
        "dashboard/articles/index.html",
        400 if error else 200,
        rows=rows,
        elsewhere=elsewhere,
        total=total,
        start=start,
        end=end,
        error=error,
        note=note,
    )


@bp.route("/new", methods=["GET", "POST"])
@requires("write")
def new() -> ResponseReturnValue:
    """Write an article."""
    form = article_form()
    if request.method == "GET":
        return _page("dashboard/articles/new.html", form=form)
    valid = form.validate()
    if valid and slug_in_use(form.chosen_slug):
        form.slug.errors = [*form.slug.errors, _("There is already an article at %(slug)s.", slug=form.chosen_slug)]
        valid = False
    if not valid:
        return _page("dashboard/articles/new.html", 400, form=form)
    try:
        article = operations.create_article(acting_staff(), article_values(form), form.tag_list)
    except IntegrityError:
        form.slug.errors = [*form.slug.errors, _("There is already an article at %(slug)s.", slug=form.chosen_slug)]
        return _page("dashboard/articles/new.html", 400, form=form)
    flash(_("The article was saved."), "success")
    return redirect(url_for(".detail", article_id=article.id), 303)


def _detail(article: Article, form: ArticleForm | None = None, status: int = 200) -> ResponseReturnValue:
    start, end, error, note = _period()
    by_day = counts_by_day(article.slug, start, end)
    return _page(
        "dashboard/articles/detail.html",
        400 if error and status == 200 else status,
        article=article,
        form=form or article_form(article, formdata=None),
        read_only=not can("write"),
        by_variant=counts_by_variant(article.slug, start, end),
        by_day=by_day,
        total=sum((counts for _day, counts in by_day), Counts()),
        start=start,
        end=end,
        error=error,
        note=note,
    )


@bp.get("/<int:article_id>")
@requires("view")
def detail(article_id: int) -> ResponseReturnValue:
    """One article: its card's figures per variant and per day, a preview, and its form."""
    return _detail(fetch(Article, article_id))


@bp.post("/<int:article_id>/edit")
@requires("write")
def update(article_id: int) -> ResponseReturnValue:
    """Save an article; publishing and unpublishing are logged as such."""
    article = fetch(Article, article_id)
    form = article_form(article)
    valid = form.validate()
    if valid and slug_in_use(form.chosen_slug, article):
        form.slug.errors = [*form.slug.errors, _("There is already an article at %(slug)s.", slug=form.chosen_slug)]
        valid = False
    if not valid:
        return _detail(article, form, 400)
    changed = operations.update_article(acting_staff(), article, article_values(form), form.tag_list)
    if not changed:
        flash(_("Nothing was changed."), "info")
        return redirect(url_for(".detail", article_id=article.id), 303)
    flash(_("The article was saved."), "success")
    return redirect(url_for(".detail", article_id=article.id), 303)
