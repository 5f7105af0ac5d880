"""Articles from Markdown files with YAML front matter: read, check, create or update.

A file is one article. Its slug is its identity: importing a file whose slug
exists updates that article in place, so running an import twice changes nothing.
Service functions here flush; the command that calls them commits.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import frontmatter
import yaml
from sqlalchemy import select
from sqlalchemy.exc import DataError, IntegrityError

from supporters.articles.markup import render_markdown
from supporters.extensions import db
from supporters.lib.forms import SLUG_PATTERN
from supporters.models import Article, ArticleTag, Campaign

#: the front matter an article file may have
KNOWN_FIELDS = {"title", "date", "lead", "tags", "slug", "campaign", "published", "credit"}

SLUG_MAX = 200
TITLE_MAX = 300
TAG_MAX = 80

#: letters that Unicode does not decompose into an ASCII letter plus accents
_TRANSLITERATION = str.maketrans(
    {
        "ł": "l",
        "Ł": "L",
        "đ": "d",
        "Đ": "D",
        "ø": "o",
        "Ø": "O",
        "ß": "ss",
        "æ": "ae",
        "Æ": "AE",
        "œ": "oe",
        "Œ": "OE",
        "þ": "th",
        "Þ": "Th",
        "ı": "i",
    }
)


class ArticleFileError(ValueError):
    """A file that cannot become an article; the message says why, for the person who wrote it."""


@dataclass(frozen=True)
class ArticleSource:
    """One article as its file describes it, checked and ready to store."""

    slug: str
    title: str
    published_on: date
    lead: str
    tags: tuple[str, ...]
    campaign_slug: str | None
    published: bool
    credit_notice: str | None
    body_markdown: str


@dataclass
class ImportReport:
    """What an import did, file by file (file names, not paths)."""

    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    #: (file name, reason) of every file that was skipped
    failed: list[tuple[str, str]] = field(default_factory=list)
    #: (file name, note) about files that were imported anyway, e.g. unknown fields
    warnings: list[tuple[str, str]] = field(default_factory=list)


def slugify(text: str) -> str:
    """A URL slug of `text`: lowercase ASCII letters and digits joined by single hyphens.

    Accents are dropped ("Żółć" → "zolc", "Łódź" → "lodz"); anything else that is
    not a letter or a digit separates words. Empty when nothing is left.
    """
    decomposed = unicodedata.normalize("NFKD", text.translate(_TRANSLITERATION))
    ascii_text = decomposed.encode("ascii", "ignore").decode("ascii").lower()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text).strip("-")
    if len(slug) > SLUG_MAX:
        slug = slug[:SLUG_MAX].rsplit("-", 1)[0] if "-" in slug[:SLUG_MAX] else slug[:SLUG_MAX]
    return slug


def read_article_file(path: Path) -> tuple[ArticleSource, list[str]]:
    """Parse and check one Markdown file; return the article and notes about ignored fields.

    Raises ArticleFileError saying what is wrong with the file.
    """
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ArticleFileError(f"not UTF-8 text (byte {exc.start} cannot be decoded)") from None
    except OSError as exc:
        raise ArticleFileError(f"cannot be read ({exc.strerror})") from None
    try:
        post = frontmatter.loads(text)
    except yaml.YAMLError as exc:
        raise ArticleFileError(f"the front matter is not valid YAML ({_yaml_problem(exc)})") from None
    except ValueError as exc:  # YAML that parses but names an impossible value, e.g. 2024-02-30
        raise ArticleFileError(f"the front matter cannot be read ({exc})") from None
    meta: dict[str, Any] = dict(post.metadata)

    title = _text(meta, "title", required=True)
    if len(title) > TITLE_MAX:
        raise ArticleFileError(f"the title is longer than {TITLE_MAX} characters")
    source = ArticleSource(
        slug=_slug(meta, title),
        title=title,
        published_on=_date(meta),
        lead=_text(meta, "lead"),
        tags=_tags(meta),
        campaign_slug=_text(meta, "campaign") or None,
        published=_flag(meta, "published", default=True),
        credit_notice=_text(meta, "credit") or None,
        body_markdown=post.content.strip(),
    )
    unknown = sorted(str(name) for name in meta if name not in KNOWN_FIELDS)
    notes = [f"ignored unknown front matter field(s): {', '.join(unknown)}"] if unknown else []
    return source, notes


def _text(meta: dict[str, Any], name: str, required: bool = False) -> str:
    value = meta.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise ArticleFileError(f"the front matter has no {name}")
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ArticleFileError(f"{name} must be text")
    return str(value).strip()


def _date(meta: dict[str, Any]) -> date:
    value = meta.get("date")
    if value is None or value == "":
        raise ArticleFileError("the front matter has no date")
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    text = str(value).strip()
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        try:
            return date.fromisoformat(text)
        except ValueError:
            pass
    raise ArticleFileError(f"the date {text!r} is not a date in the form YYYY-MM-DD")


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """The parser's complaint and the file line it is about (the front matter starts on line 2)."""
    problem = str(getattr(exc, "problem", None) or exc).strip()
    mark = getattr(exc, "problem_mark", None)
    return f"{problem}, line {mark.line + 2}" if mark is not None else problem


def _slug(meta: dict[str, Any], title: str) -> str:
    given = _text(meta, "slug")
    if not given:
        slug = slugify(title)
        if not slug:
            raise ArticleFileError("no slug can be made from the title; give one in the front matter")
        return slug
    if not SLUG_PATTERN.match(given) or len(given) > SLUG_MAX:
        raise ArticleFileError(
            f"the slug {given!r} must be lowercase letters a-z, digits and single hyphens, "
            f"at most {SLUG_MAX} characters (e.g. {slugify(given) or 'my-article'!r})"
        )
    return given


def _tags(meta: dict[str, Any]) -> tuple[str, ...]:
    value = meta.get("tags")
    if value is None or value == "":
        return ()
    items: list[object]
    if isinstance(value, str):
        items = list(value.split(","))
    elif isinstance(value, list):
        items = value
    else:
        raise ArticleFileError("tags must be a list or a comma-separated text")
    tags: dict[str, str] = {}
    for item in items:
        if isinstance(item, bool) or not isinstance(item, str | int | float):
            raise ArticleFileError("each tag must be a short text")
        tag = " ".join(str(item).split())
        if len(tag) > TAG_MAX:
            raise ArticleFileError(f"the tag {tag[:20]!r}… is longer than {TAG_MAX} characters")
        if tag:
            tags.setdefault(tag.casefold(), tag)  # "Energy" and "energy" are one tag
    return tuple(tags.values())


def _flag(meta: dict[str, Any], name: str, default: bool) -> bool:
    value = meta.get(name)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise ArticleFileError(f"{name} must be true or false")
    return value


def save_article(source: ArticleSource) -> str:
    """Create the article or update the one with the same slug; flush.

    Returns "created", "updated" or "unchanged". Raises ArticleFileError for a
    campaign that does not exist.
    """
    campaign_id = None
    if source.campaign_slug:
        campaign_id = db.session.execute(select(Campaign.id).filter_by(slug=source.campaign_slug)).scalar_one_or_none()
        if campaign_id is None:
            raise ArticleFileError(f"there is no campaign {source.campaign_slug!r}")

    values = {
        "title": source.title,
        "published_on": source.published_on,
        "lead": source.lead,
        "body_markdown": source.body_markdown,
        "body_html": render_markdown(source.body_markdown),
        "credit_notice": source.credit_notice,
        "campaign_id": campaign_id,
        "published": source.published,
    }
    article = db.session.execute(select(Article).filter_by(slug=source.slug)).scalar_one_or_none()
    if article is None:
        db.session.add(Article(slug=source.slug, tags=[ArticleTag(tag=tag) for tag in source.tags], **values))
        db.session.flush()
        return "created"

    changed = _replace_tags(article, source.tags)
    for name, value in values.items():
        if getattr(article, name) != value:
            setattr(article, name, value)
            changed = True
    db.session.flush()
    return "updated" if changed else "unchanged"


def _replace_tags(article: Article, tags: tuple[str, ...]) -> bool:
    """Make the article's tags exactly `tags`, keeping the rows of tags it already has."""
    wanted = set(tags)
    current = {row.tag for row in article.tags}
    if current == wanted:
        return False
    article.tags = [row for row in article.tags if row.tag in wanted] + [
        ArticleTag(tag=tag) for tag in tags if tag not in current
    ]
    return True


def import_directory(directory: Path) -> ImportReport:
    """Import every `*.md` file directly in `directory` (not its subfolders), in name order.

    A file that cannot be imported is reported with the reason and skipped; the
    others are still imported. Each file is saved in a savepoint of its own, so a
    failure never leaves half an article behind. Flushes; the caller commits.
    """
    report = ImportReport()
    seen: dict[str, str] = {}  # slug -> the file that claimed it in this run
    for path in sorted(p for p in directory.glob("*.md") if p.is_file()):
        name = path.name
        try:
            source, notes = read_article_file(path)
            if source.slug in seen:
                raise ArticleFileError(f"the slug {source.slug!r} is already used by {seen[source.slug]}")
            with db.session.begin_nested():
                outcome = save_article(source)
        except ArticleFileError as exc:
            report.failed.append((name, str(exc)))
            continue
        except (IntegrityError, DataError) as exc:
            # What checking the file could not foresee, e.g. another import saving the slug first.
            report.failed.append((name, f"the database refused it ({type(exc.orig).__name__})"))
            continue
        seen[source.slug] = name
        report.warnings.extend((name, note) for note in notes)
        getattr(report, outcome).append(name)
    return report
