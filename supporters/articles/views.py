"""/articles: the list of published articles and each article's page with its Support Us widget.

Both are public pages (supporters/lib/caching.py): the same for every reader of an
address in a language, session-free, for a CDN to keep. An article's page is also
kept rendered in this process (supporters/articles/pages.py).
"""

from __future__ import annotations

from flask import Blueprint, Response, abort, current_app, render_template, request
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from markupsafe import Markup
from sqlalchemy import select

from supporters.articles import pages
from supporters.articles.importer import TAG_MAX
from supporters.articles.related import related_articles
from supporters.extensions import db
from supporters.lib.caching import has_flashes, public
from supporters.lib.forms import whole_number
from supporters.lib.i18n import current_locale, language_asked
from supporters.lib.paging import MAX_PAGE
from supporters.lib.web import public_url
from supporters.models import Article, ArticleTag, Campaign

bp = Blueprint("articles", __name__, url_prefix="/articles")

PER_PAGE = 10
DESCRIPTION_LENGTH = 160
#: the campaign a widget asks for when its article names none
DEFAULT_CAMPAIGN = "general"


@bp.get("/")
@public(max_age=60)
def index() -> ResponseReturnValue:
    """Published articles, newest first, ten a page; `?tag=` keeps those filed under one tag."""
    # No tag holds control characters (and PostgreSQL refuses NUL in a query): drop them.
    typed = "".join(ch for ch in request.args.get("tag", "") if ch.isprintable() or ch.isspace())
    tag = " ".join(typed.split())[:TAG_MAX] or None
    query = select(Article).where(Article.published.is_(True))
    if tag:
        query = query.where(Article.tags.any(ArticleTag.tag == tag))
    query = query.order_by(Article.published_on.desc(), Article.id.desc())
    # error_out: a page past the last one is a 404 (page 1 of nothing is an empty list)
    pagination = db.paginate(query, page=_page_number(), per_page=PER_PAGE, error_out=True)
    page = pagination.page if pagination.page > 1 else None
    return render_template(
        "articles/index.html",
        pagination=pagination,
        tag=tag,
        canonical_url=public_url("articles.index", tag=tag, page=page),
    )


@bp.get("/<slug>")
@public(max_age=60)
def show(slug: str) -> ResponseReturnValue:
    """One published article: text, Support Us widget, credit notice, tags and related articles."""
    if has_flashes():  # a message for this reader: a page of their own
        html = render_article(slug)
        if html is None:
            abort(404)
        return html
    page = pages.article_page(slug, current_locale(), language_asked() is not None, render_article)
    if page is None:
        abort(404)
    response = Response(page.body, mimetype="text/html")
    response.set_etag(page.etag)
    return response.make_conditional(request)


def render_article(slug: str) -> str | None:
    """The page of the published article `slug`, or None when there is none."""
    found = db.session.execute(
        select(Article, Campaign.slug)
        .outerjoin(Campaign, Campaign.id == Article.campaign_id)
        .filter(Article.slug == slug, Article.published.is_(True))
    ).one_or_none()
    if found is None:
        return None
    article, campaign = found
    return render_template(
        "articles/show.html",
        article=article,
        tags=sorted((row.tag for row in article.tags), key=str.casefold),
        related=related_articles(article),
        campaign_slug=campaign or DEFAULT_CAMPAIGN,
        credit_notice=credit_notice(article),
        description=summary(article.lead or Markup(article.body_html).striptags()),
        canonical_url=public_url("articles.show", slug=article.slug),
    )


def _page_number() -> int:
    """`?page=` as a number from 1 up; anything else is a page that does not exist."""
    page = whole_number(request.args.get("page", "1"), maximum=MAX_PAGE)
    if page is None or page < 1:
        abort(404)
    return page


def credit_notice(article: Article) -> str:
    """The article's own credit/licence notice, else the site-wide one, else the default wording."""
    return (
        (article.credit_notice or "").strip()
        or current_app.config.get("SUPPORTERS_CREDIT_NOTICE", "")
        or _(
            "You may republish our texts if you credit %(org)s and link to the original. "
            "Photos and other images may not be reused without permission.",
            org=current_app.config["SUPPORTERS_ORG_NAME"],
        )
    )


def summary(text: str, limit: int = DESCRIPTION_LENGTH) -> str:
    """`text` on one line, cut at a word boundary to at most `limit` characters (with "…")."""
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    cut = flat[: limit - 1]
    if " " in cut:
        cut = cut.rsplit(" ", 1)[0]
    return cut.rstrip(" ,;:.-–—") + "…"
