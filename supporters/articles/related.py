"""Related articles: the published ones that share the most tags with an article."""

from __future__ import annotations

from sqlalchemy import func, select

from supporters.extensions import db
from supporters.models import Article, ArticleTag

RELATED_LIMIT = 3


def related_articles(article: Article, limit: int = RELATED_LIMIT) -> list[Article]:
    """Up to `limit` published articles sharing tags with `article`, never the article itself.

    Most shared tags first; among equals the newest (published date, then id).
    An article without tags has no related articles.
    """
    tags = [row.tag for row in article.tags]
    if not tags:
        return []
    shared = (
        select(ArticleTag.article_id, func.count().label("shared"))
        .where(ArticleTag.tag.in_(tags), ArticleTag.article_id != article.id)
        .group_by(ArticleTag.article_id)
        .subquery()
    )
    query = (
        select(Article)
        .join(shared, shared.c.article_id == Article.id)
        .where(Article.published.is_(True))
        .order_by(shared.c.shared.desc(), Article.published_on.desc(), Article.id.desc())
        .limit(limit)
    )
    return list(db.session.execute(query).scalars())
