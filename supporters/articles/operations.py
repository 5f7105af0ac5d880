"""Writing articles from the dashboard: each operation flushes and writes its own audit row."""

from __future__ import annotations

from typing import Any

from supporters.articles.markup import render_markdown
from supporters.extensions import db
from supporters.lib import audit
from supporters.lib.audit import Actor
from supporters.models import Article, ArticleTag


def create_article(actor: Actor | None, values: dict[str, Any], tags: list[str]) -> Article:
    """Add an article (its Markdown body rendered and sanitised) and audit it.

    A slug another article took since the form checked raises IntegrityError, leaving nothing behind.
    """
    article = Article(
        **values, body_html=render_markdown(values["body_markdown"]), tags=[ArticleTag(tag=tag) for tag in tags]
    )
    with db.session.begin_nested():
        db.session.add(article)
    audit.record(
        actor,
        "article.create",
        "article",
        article.id,
        slug=article.slug,
        title=article.title,
        published=article.published,
    )
    return article


def update_article(actor: Actor | None, article: Article, values: dict[str, Any], tags: list[str]) -> list[str]:
    """Apply `values` and `tags` to the article and audit the change (publishing and
    unpublishing as such); return the names of the fields that changed."""
    was_published = article.published
    wanted = {**values, "body_html": render_markdown(values["body_markdown"])}
    changed = []
    for name, value in wanted.items():
        if getattr(article, name) != value:
            setattr(article, name, value)
            changed.append(name)
    if {row.tag for row in article.tags} != set(tags):
        current = {row.tag for row in article.tags}
        article.tags = [row for row in article.tags if row.tag in tags] + [
            ArticleTag(tag=tag) for tag in tags if tag not in current
        ]
        changed.append("tags")
    db.session.flush()
    changed = [name for name in changed if name != "body_html"]
    other = [name for name in changed if name != "published"]
    if other:
        audit.record(actor, "article.update", "article", article.id, slug=article.slug, changed=other)
    if article.published != was_published:
        audit.record(
            actor,
            "article.publish" if article.published else "article.unpublish",
            "article",
            article.id,
            slug=article.slug,
        )
    return changed
