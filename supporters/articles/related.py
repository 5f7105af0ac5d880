"""Related articles: the published ones that share the most tags with an article."""

from __future__ import annotations

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import lazyload, load_only

from supporters.extensions import db
from supporters.models import Article, ArticleTag

RELATED_LIMIT = 3

_shared = (
    select(ArticleTag.article_id, func.count().label("shared"))
    .where(ArticleTag.tag.in_(bindparam("tags", expanding=True)), ArticleTag.article_id != bindparam("article_id"))
    .group_by(ArticleTag.article_id)
    .subquery()
)
#: built once: only what a summary shows (articles/_summary.html), their tags only if asked for
_RELATED = (
    select(Article)
    .options(load_only(Article.slug, Article.title, Article.lead, Article.published_on), lazyload(Article.tags))
    .join(_shared, _shared.c.article_id == Article.id)
    .where(Article.published.is_(True))
    .order_by(_shared.c.shared.desc(), Article.published_on.desc(), Article.id.desc())
    .limit(bindparam("limit"))
)


def related_articles(article: Article, limit: int = RELATED_LIMIT) -> list[Article]:
    """Up to `limit` published articles sharing tags with `article`, never the article itself.

    Most shared tags first; among equals the newest (published date, then id).
    An article without tags has no related articles. The articles come with what
    a summary shows (date, slug, title, lead); their tags are not loaded.
    """
    tags = [row.tag for row in article.tags]
    if not tags:
        return []
    rows = db.session.execute(_RELATED, {"tags": tags, "article_id": article.id, "limit": limit})
    return list(rows.scalars())
