"""Articles: the foundation's own pages that end with the Support Us widget."""

from __future__ import annotations

from datetime import date

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from supporters.models.base import Base, Timestamps


class Article(Timestamps, Base):
    """An analysis piece; its body is Markdown, stored with its sanitised HTML."""

    __tablename__ = "article"
    __table_args__ = (sa.Index("ix_article_published_on", "published", "published_on"),)

    id: Mapped[int] = mapped_column(primary_key=True, info={"personal": False})
    slug: Mapped[str] = mapped_column(sa.String(200), unique=True, info={"personal": False})
    title: Mapped[str] = mapped_column(sa.String(300), info={"personal": False})
    published_on: Mapped[date] = mapped_column(info={"personal": False})
    lead: Mapped[str] = mapped_column(sa.Text, default="", info={"personal": False})
    #: what the author wrote
    body_markdown: Mapped[str] = mapped_column(sa.Text, default="", info={"personal": False})
    #: the Markdown rendered and sanitised: safe to show as HTML
    body_html: Mapped[str] = mapped_column(sa.Text, default="", info={"personal": False})
    #: credit/licence notice; None: the site-wide notice
    credit_notice: Mapped[str | None] = mapped_column(sa.Text, info={"personal": False})
    #: the campaign its Support Us widget asks for
    campaign_id: Mapped[int | None] = mapped_column(sa.ForeignKey("campaign.id"), info={"personal": False})
    published: Mapped[bool] = mapped_column(default=False, info={"personal": False})
    is_demo: Mapped[bool] = mapped_column(default=False, info={"personal": False})

    tags: Mapped[list[ArticleTag]] = relationship(cascade="all, delete-orphan", lazy="selectin")


class ArticleTag(Base):
    """A topic an article is filed under; related articles share tags."""

    __tablename__ = "article_tag"
    __table_args__ = (sa.Index("ix_article_tag_tag", "tag"),)

    article_id: Mapped[int] = mapped_column(
        sa.ForeignKey("article.id", ondelete="CASCADE"), primary_key=True, info={"personal": False}
    )
    tag: Mapped[str] = mapped_column(sa.String(80), primary_key=True, info={"personal": False})
